"""A publisher on 127.0.0.1 whose pages are laid out as the real ones, and real-looking files for it to serve.

The pages follow what was checked against the live sites and public scrapers of them:

- RTT: NHS England's area page links one page per financial year (``…/rtt-waiting-times/rtt-data-2026-27/``);
  a year page links each month's files in dated upload folders (``/statistics/wp-content/uploads/sites/2/2026/06/
  Full-CSV-data-file-Apr26-ZIP-3M-Dc1i9U.zip``) among the press notice PDFs, provider and commissioner
  spreadsheets and time series; a revision is a second link (``…-revised.zip``) in a later upload folder.
- Out-of-area placements: the MHSDS monthly statistics publication lists its monthly pages (the latest under
  ``latest-statistics``, the others as ``cta__button`` links under ``past-publications``); a monthly page lists
  its files, hosted on files.digital.nhs.uk under ``/<2 hex>/<6 hex>/`` with spaces percent-encoded.
- ODS: ``etr.zip`` (with ``etr.csv`` and ``etr.pdf`` in it) and ``succ.zip``.
"""

from __future__ import annotations

import io
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from tests.rtt_files import rtt_row, write_rtt_file

AREA = "/statistics/statistical-work-areas/rtt-waiting-times/"
UPLOADS = "/statistics/wp-content/uploads/sites/2"
MHSDS = "/data-and-information/publications/statistical/mental-health-services-monthly-statistics"
OAP_HEADER = (
    "REPORTING_PERIOD_START,REPORTING_PERIOD_END,STATUS,BREAKDOWN,PRIMARY_LEVEL,PRIMARY_LEVEL_DESCRIPTION,"
    "SECONDARY_LEVEL,SECONDARY_LEVEL_DESCRIPTION,MEASURE_ID,MEASURE_NAME,MEASURE_VALUE"
)


# --------------------------------------------------------------------------------------------------------------
# A publisher on 127.0.0.1


@dataclass
class Reply:
    """One canned response: ``length`` overrides Content-Length; ``delay`` sleeps before the status line."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None
    delay: float = 0.0
    etag: str | None = None
    last_modified: str | None = None


class FakePublisher:
    """Routes path → list of replies; the last reply repeats. Records every request's path and headers."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.root = ""

    def route(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def page(self, path: str, body: str) -> None:
        self.route(path, Reply(body=body.encode("utf-8"), headers={"Content-Type": "text/html; charset=UTF-8"}))

    def hits(self, path: str) -> list[dict[str, str]]:
        return [headers for seen, headers in self.requests if seen == path]

    def paths(self) -> list[str]:
        return [seen for seen, _ in self.requests]

    def next_reply(self, path: str) -> Reply:
        with self.lock:
            replies = self.routes.get(path)
            if not replies:
                return Reply(404, b"not found", {"Content-Type": "text/plain"})
            return replies.pop(0) if len(replies) > 1 else replies[0]


def make_handler(publisher: FakePublisher) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            with publisher.lock:
                publisher.requests.append((self.path, dict(self.headers)))
            reply = publisher.next_reply(self.path)
            if reply.delay:
                time.sleep(reply.delay)
            # Conditional request handling, as a real server does it.
            if reply.status == 200 and reply.etag and self.headers.get("If-None-Match") == reply.etag:
                self._send(Reply(304, etag=reply.etag))
                return
            if (
                reply.status == 200
                and reply.last_modified
                and not reply.etag
                and self.headers.get("If-Modified-Since") == reply.last_modified
            ):
                self._send(Reply(304, last_modified=reply.last_modified))
                return
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            try:
                self.send_response(reply.status)
                headers = {"Content-Type": "application/zip", **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                if reply.etag:
                    self.send_header("ETag", reply.etag)
                if reply.last_modified:
                    self.send_header("Last-Modified", reply.last_modified)
                if reply.status != 304:
                    self.send_header("Content-Length", str(reply.length or len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if reply.status != 304:
                    self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to do

    return Handler


@contextmanager
def running_publisher() -> Iterator[FakePublisher]:
    """A :class:`FakePublisher` serving on a random port of 127.0.0.1 until the block ends."""
    fake = FakePublisher()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.root = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------------------------------------------
# Real-looking files


def rtt_zip(month: date, *, bump: int = 0, revised: bool = False) -> bytes:
    """A small RTT full extract in the published 121-column layout (consistent C_999 rows), zipped as published."""
    rows = [
        rtt_row(provider, "15N", part, function, {0: 5 + bump, 3: 7, 20: 2})
        for provider in ("RCF", "RR8")
        for part in ("Part_1A", "Part_1B", "Part_2", "Part_2A", "Part_3")
        for function in ("C_100", "C_110")
    ]
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as scratch, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        path = write_rtt_file(Path(scratch), month, rows, revised=revised, zipped=False)
        archive.writestr(path.name, path.read_bytes())
    return buffer.getvalue()


def oap_zip(month: date, status: str = "Performance", value: int = 35) -> bytes:
    """A small MHSDS out-of-area placements file in the 11-column long layout, zipped."""
    start, end = month, month.replace(day=28)
    lines = [OAP_HEADER]
    for code, name in (("RX4", "CUMBRIA, NORTHUMBERLAND, TYNE AND WEAR NHS FOUNDATION TRUST"), ("RHA", "NOTTS")):
        for measure, label in (("OAP01a", "Inappropriate OAPs started"), ("OAP02a", "Bed days")):
            lines.append(f"{start},{end},{status},Sending Provider,{code},{name},NONE,NONE,{measure},{label},{value}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"MHSDS Data_OAPs_{month:%b}{status[:4]}_{month.year}.csv", "\r\n".join(lines) + "\r\n")
    return buffer.getvalue()


def ods_zip(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}.csv", '"RCF","AIREDALE NHS FOUNDATION TRUST","Y63","QWO"\r\n')
        archive.writestr(f"{name}.pdf", b"%PDF-1.4 the field descriptions")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------------------
# Pages laid out as the publishers' are


def year_path(start_year: int) -> str:
    return f"{AREA}rtt-data-{start_year}-{(start_year + 1) % 100:02d}/"


def rtt_area_page(years: list[int]) -> str:
    items = "".join(
        f'<li><a href="{year_path(year)}">{year}-{(year + 1) % 100:02d} RTT waiting times data</a></li>'
        for year in sorted(years, reverse=True)
    )
    return f"""<!DOCTYPE html><html lang="en-GB"><head><title>Statistics » Consultant-led Referral to Treatment
    Waiting Times</title></head><body><nav><a href="/statistics/">Statistics</a> <a href="#content">Skip</a>
    <a href="/statistics/statistical-work-areas/">Statistical work areas</a></nav><main id="content">
    <h1>Consultant-led Referral to Treatment Waiting Times</h1>
    <p>Monthly RTT waiting times data has been published since March 2007.</p>
    <h2>Latest data</h2><ul>{items}</ul>
    <p><a href="{AREA}rtt-data-prior-to-2011-12/">Data prior to 2011-12</a></p>
    <h2>Annual Statistical Report</h2>
    <p><a href="{UPLOADS}/2025/06/RTT-Annual-Report-2024-25-PDF-1M-a8d7c.pdf">Download 2024-25 RTT Annual Report
    (PDF, 1M)</a></p>
    <p><a href="{AREA}rtt-guidance/">RTT waiting times clock rules and FAQ</a>
    <a href="https://www.nhs.uk/nhs-services/hospitals/guide-to-nhs-waiting-times-in-england/">Guide</a>
    <a href="mailto:england.rtt@nhs.net">Contact us</a></p></main></body></html>"""


@dataclass(frozen=True)
class RttUpload:
    """One Full CSV data file on a year page: its month, upload folder, size tag and random suffix."""

    month: date
    uploaded: tuple[int, int]
    tag: str
    revised: bool = False
    size: str = "ZIP-3M"

    @property
    def name(self) -> str:
        parts = ["Full-CSV-data-file", f"{self.month:%b%y}", self.size]
        parts += ["revised"] if self.revised else []
        parts += [self.tag] if self.tag else []
        return "-".join(parts) + ".zip"

    @property
    def path(self) -> str:
        return f"{UPLOADS}/{self.uploaded[0]}/{self.uploaded[1]:02d}/{self.name}"

    @property
    def etag(self) -> str:
        return f'"{self.month:%b%y}-{"revised" if self.revised else "original"}-{self.tag}"'


def rtt_year_page(start_year: int, uploads: list[RttUpload]) -> str:
    """A financial-year page: per month the press notice, spreadsheets, other CSVs and the Full CSV data file."""
    sections = []
    for upload in sorted(uploads, key=lambda u: (u.month, u.revised), reverse=True):
        mon = f"{upload.month:%b%y}"
        folder = f"{UPLOADS}/{upload.uploaded[0]}/{upload.uploaded[1]:02d}"
        label = f"{upload.month:%B %Y}" + (" (revised)" if upload.revised else "")
        sections.append(
            f"""<h3>{label}</h3><p>
            <a href="{folder}/{mon}-RTT-SPN-Publication-PDF-442K-61260.pdf">Statistical press notice (PDF, 442K)</a>
            <a href="{folder}/Commissioner-{mon}-XLSX-9M-ab12c.xlsx">Commissioner (XLSX, 9M)</a>
            <a href="{folder}/Incomplete-Provider-{mon}-XLSX-7M-x1y2.xlsx">Incomplete Provider (XLSX, 7M)</a>
            <a href="{folder}/Commissioner-{mon}-CSV-3M-k2j3.csv">Commissioner CSV (CSV, 3M)</a>
            <a href="{folder}/RTT-Overview-Timeseries-Including-Estimates-{mon}-XLS-116K.xlsx">Overview timeseries</a>
            <a href="{upload.path}">Full CSV data file {mon} (ZIP, 3M)</a>
            <a href="{upload.path}">{mon} full extract</a></p>"""
        )
    return f"""<!DOCTYPE html><html><head><title>Statistics » RTT Data {start_year}-{(start_year + 1) % 100:02d}
    </title></head><body><main><h1>RTT Data {start_year}-{(start_year + 1) % 100:02d}</h1>
    <p><a href="{AREA}">Back to Consultant-led Referral to Treatment Waiting Times</a></p>
    {"".join(sections)}<p><a href="{UPLOADS}/2026/06/RTT-Guidance-v5-PDF-1M.pdf">Recording and reporting guidance
    </a></p></main></body></html>"""


def financial_year(month: date) -> int:
    return month.year if month.month >= 4 else month.year - 1


def serve_rtt(fake: FakePublisher, uploads: list[RttUpload], *, years: list[int] | None = None) -> str:
    """Serve the area page, the year pages and each upload's zip (ETag per file); returns the area page's URL."""
    by_year: dict[int, list[RttUpload]] = {}
    for upload in uploads:
        by_year.setdefault(financial_year(upload.month), []).append(upload)
    for year in years or []:
        by_year.setdefault(year, [])
    fake.page(AREA, rtt_area_page(list(by_year)))
    for year, listed in by_year.items():
        fake.page(year_path(year), rtt_year_page(year, listed))
    for upload in uploads:
        fake.route(upload.path, Reply(body=rtt_zip(upload.month, revised=upload.revised), etag=upload.etag))
    return fake.root + AREA


def mhsds_index_page(slugs: list[str]) -> str:
    """The MHSDS monthly statistics publication: the latest page, then past publications (newest first)."""
    latest, *past = slugs
    past_items = "".join(
        f'<li><a class="cta__button" href="{MHSDS}/{slug}" title="{slug}">{slug.replace("-", " ").title()}</a></li>'
        for slug in past
    )
    return f"""<!DOCTYPE html><html><head><title>Mental Health Services Monthly Statistics - NHS England Digital
    </title></head><body><main><h1>Mental Health Services Monthly Statistics</h1>
    <div id="latest-statistics"><h2>Latest statistics</h2><a href="{MHSDS}/{latest}">{latest.title()}</a></div>
    <div id="upcoming-publications"><a href="{MHSDS}/upcoming">Upcoming</a></div>
    <div id="past-publications"><h2>Past publications</h2><ul>{past_items}</ul>
    <a href="{MHSDS}/{latest}/data-quality">Data quality of the latest release</a></div>
    <a href="/data-and-information/publications/statistical/mental-health-bulletin">Mental Health Bulletin</a>
    </main></body></html>"""


def files_url(name: str, folder: str) -> str:
    return f"/{folder}/{quote(name)}"


def mhsds_month_page(title: str, files: list[tuple[str, str]]) -> str:
    """A monthly publication page: its resources, each a files.digital.nhs.uk link (spaces encoded)."""
    items = "".join(
        f'<li><a href="{files_url(name, folder)}" class="nhsd-a-link">{name}</a></li>' for name, folder in files
    )
    return f"""<!DOCTYPE html><html><body><main><h1>Mental Health Services Monthly Statistics, {title}</h1>
    <p><a href="{MHSDS}">Part of Mental Health Services Monthly Statistics</a></p>
    <div id="resources"><h2>Resources</h2><ul>{items}</ul></div></main></body></html>"""
