"""Pulling publications over HTTP, against a real local server that misbehaves on purpose."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from orchestration import pull
from orchestration.pull import PULL_SOURCES, pull_all, pull_source

APRIL = date(2024, 4, 1)
RTT_NAME = "20240430-RTT-April-2024-full-extract.zip"
RTT_REVISED = "20240430-RTT-April-2024-full-extract-revised.zip"
OAP_NAME = "MHSDS Data_OAPs_AprPerf_2024.zip"
FAST = {"timeout": 2.0, "retries": 2, "backoff": 0.01}


def rtt_zip(total: int = 10) -> bytes:
    """A small RTT-like extract, zipped as NHS England publishes it (enough for the downloader's checks)."""
    csv = (
        "Period,Provider Org Code,RTT Part Type,Treatment Function Code,Total All\n"
        f"RTT-April-2024,RCF,Part_2,C_999,{total}\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(RTT_NAME.replace(".zip", ".csv"), csv)
    return buffer.getvalue()


def oap_zip(member: str = OAP_NAME.replace(".zip", ".csv")) -> bytes:
    """A small out-of-area placements file, zipped as NHS England publishes it (a space in its name)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, "REPORTING_PERIOD_START,REPORTING_PERIOD_END\n01/04/2024,30/04/2024\n")
    return buffer.getvalue()


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

    def route(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def hits(self, path: str) -> list[dict[str, str]]:
        return [headers for seen, headers in self.requests if seen == path]

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
            path = unquote(self.path)  # routes are file names as published (with spaces), requests are quoted
            with publisher.lock:
                publisher.requests.append((path, dict(self.headers)))
            reply = publisher.next_reply(path)
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


@pytest.fixture
def publisher() -> Iterator[tuple[FakePublisher, str]]:
    fake = FakePublisher()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/rtt"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def pull_rtt(dest: Path, base: str, **kw) -> list[pull.PullResult]:
    options = {**FAST, **kw}
    return pull_source("rtt", dest, [APRIL], base_url=base, **options)


def only(results: list[pull.PullResult]) -> pull.PullResult:
    assert len(results) == 1, [r.message for r in results]
    return results[0]


def landed(dest: Path) -> list[str]:
    """Every file in the landing folder (temporary files included: none may be left behind)."""
    folder = dest / "rtt"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_configuration_covers_every_source_and_base_urls_are_overridable(monkeypatch) -> None:
    assert set(PULL_SOURCES) == {"rtt", "oap", "los_mh", "los_acute", "ods"}
    rtt = PULL_SOURCES["rtt"]
    assert rtt.resolve_base_url().startswith("https://www.england.nhs.uk/statistics/")
    assert rtt.file_names(APRIL) == (RTT_NAME,) and rtt.variant_names(APRIL) == (RTT_REVISED,)
    monkeypatch.setenv("COLLAB_PULL_BASE_URL_RTT", "http://mirror.example/rtt/")
    assert rtt.resolve_base_url() == "http://mirror.example/rtt"
    assert rtt.resolve_base_url("http://arg.example") == "http://arg.example"
    assert PULL_SOURCES["ods"].file_names(None) == ("etr.zip", "succ.zip")


def test_download_saved_then_not_modified_by_etag(publisher, tmp_path) -> None:
    fake, base = publisher
    body = rtt_zip()
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=body, etag='"v1"'))

    first = only(pull_rtt(tmp_path, base))
    assert first.status == "downloaded", first.message
    assert first.path == tmp_path / "rtt" / RTT_NAME
    assert first.path.read_bytes() == body
    assert first.message.startswith("RTT April 2024: downloaded")
    assert (tmp_path / ".pull_state.json").exists()
    mtime = first.path.stat().st_mtime_ns

    second = only(pull_rtt(tmp_path, base))
    assert second.status == "not_modified", second.message
    assert fake.hits(f"/rtt/{RTT_NAME}")[-1]["If-None-Match"] == '"v1"'
    assert first.path.stat().st_mtime_ns == mtime
    assert landed(tmp_path) == [RTT_NAME]


def test_not_modified_by_last_modified(publisher, tmp_path) -> None:
    fake, base = publisher
    stamp = "Tue, 14 May 2024 09:30:00 GMT"
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=rtt_zip(), last_modified=stamp))
    assert only(pull_rtt(tmp_path, base)).status == "downloaded"
    again = only(pull_rtt(tmp_path, base))
    assert again.status == "not_modified", again.message
    assert fake.hits(f"/rtt/{RTT_NAME}")[-1]["If-Modified-Since"] == stamp
    assert "Last-Modified" in again.message


def test_validators_not_sent_when_the_local_file_has_gone(publisher, tmp_path) -> None:
    fake, base = publisher
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=rtt_zip(), etag='"v1"'))
    first = only(pull_rtt(tmp_path, base))
    first.path.unlink()
    assert only(pull_rtt(tmp_path, base)).status == "downloaded"
    assert "If-None-Match" not in fake.hits(f"/rtt/{RTT_NAME}")[-1]


def test_server_error_then_success_is_retried(publisher, tmp_path) -> None:
    fake, base = publisher
    fake.route(f"/rtt/{RTT_NAME}", Reply(500, b"oops", {"Content-Type": "text/plain"}), Reply(body=rtt_zip()))
    result = only(pull_rtt(tmp_path, base))
    assert result.status == "downloaded", result.message
    assert len(fake.hits(f"/rtt/{RTT_NAME}")) == 2


def test_persistent_server_error_fails_with_a_clear_message(publisher, tmp_path) -> None:
    fake, base = publisher
    fake.route(f"/rtt/{RTT_NAME}", Reply(503, b"down", {"Content-Type": "text/plain", "Retry-After": "0"}))
    result = only(pull_rtt(tmp_path, base, retries=2))
    assert result.status == "failed"
    assert result.message.startswith("RTT April 2024: the server returned HTTP 503")
    assert "after 3 attempts" in result.message and base in result.message and "not saved" in result.message
    assert len(fake.hits(f"/rtt/{RTT_NAME}")) == 3
    assert landed(tmp_path) == []


def test_slow_server_beyond_the_read_timeout_fails_naming_the_timeout(publisher, tmp_path) -> None:
    fake, base = publisher
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=rtt_zip(), delay=2.0))
    started = time.monotonic()
    result = only(pull_rtt(tmp_path, base, timeout=0.3, retries=1))
    assert time.monotonic() - started < 1.9
    assert result.status == "failed"
    assert "read timeout of 0.3 s" in result.message and "after 2 attempts" in result.message
    assert landed(tmp_path) == []


def test_truncated_zip_fails_and_nothing_is_saved(publisher, tmp_path) -> None:
    fake, base = publisher
    body = rtt_zip()
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=body[: len(body) // 2]))
    result = only(pull_rtt(tmp_path, base))
    assert result.status == "failed"
    assert "truncated or corrupt zip" in result.message
    assert landed(tmp_path) == []


def test_zip_without_exactly_one_csv_fails(publisher, tmp_path) -> None:
    fake, base = publisher
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n2\n")
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=buffer.getvalue()))
    result = only(pull_rtt(tmp_path, base))
    assert result.status == "failed" and "exactly one .csv" in result.message
    assert landed(tmp_path) == []


@pytest.mark.parametrize(
    "headers, body",
    [
        ({"Content-Type": "text/html; charset=utf-8"}, b"<html><body>Sorry</body></html>"),
        ({"Content-Type": "application/octet-stream"}, b"\n  <!DOCTYPE html>\n<html><body>Maintenance</body></html>"),
    ],
    ids=["content-type", "sniffed"],
)
def test_html_page_served_with_200_fails(publisher, tmp_path, headers, body) -> None:
    fake, base = publisher
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=body, headers=headers))
    result = only(pull_rtt(tmp_path, base))
    assert result.status == "failed"
    assert result.message.startswith("RTT April 2024: the server returned an HTML page, not a data file (http://")
    assert result.message.endswith(": not saved")
    assert landed(tmp_path) == []


def test_content_length_larger_than_body_fails(publisher, tmp_path) -> None:
    fake, base = publisher
    body = rtt_zip()
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=body, length=len(body) + 500))
    result = only(pull_rtt(tmp_path, base, retries=1))
    assert result.status == "failed"
    assert "truncated download" in result.message and f"{len(body) + 500}" in result.message
    assert landed(tmp_path) == []


def test_failed_download_keeps_the_previous_good_file(publisher, tmp_path) -> None:
    fake, base = publisher
    good = rtt_zip()
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=good, etag='"v1"'))
    only(pull_rtt(tmp_path, base))
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=good[:40], etag='"v2"'))
    assert only(pull_rtt(tmp_path, base)).status == "failed"
    assert (tmp_path / "rtt" / RTT_NAME).read_bytes() == good
    assert landed(tmp_path) == [RTT_NAME]


def test_not_published_404(publisher, tmp_path) -> None:
    _fake, base = publisher
    result = only(pull_rtt(tmp_path, base))
    assert result.status == "not_published"
    assert result.message.startswith("RTT April 2024: not published yet (HTTP 404")
    assert result.ok
    assert landed(tmp_path) == []


def test_republished_with_a_new_etag_is_downloaded_again(publisher, tmp_path) -> None:
    fake, base = publisher
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=rtt_zip(10), etag='"v1"'))
    only(pull_rtt(tmp_path, base))
    revised = rtt_zip(12)
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=revised, etag='"v2"'))
    result = only(pull_rtt(tmp_path, base))
    assert result.status == "downloaded", result.message
    assert "republished" in result.message
    assert fake.hits(f"/rtt/{RTT_NAME}")[-1]["If-None-Match"] == '"v1"'
    assert result.path.read_bytes() == revised


def test_rtt_revised_variant_saved_under_its_revised_name(publisher, tmp_path) -> None:
    fake, base = publisher
    original, revised = rtt_zip(10), rtt_zip(11)
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=original, etag='"o"'))
    assert [r.status for r in pull_rtt(tmp_path, base)] == ["downloaded"]  # no revision yet: no extra line

    fake.route(f"/rtt/{RTT_REVISED}", Reply(body=revised, etag='"r"'))
    results = pull_rtt(tmp_path, base)
    assert [(r.path.name, r.status) for r in results] == [(RTT_NAME, "not_modified"), (RTT_REVISED, "downloaded")]
    assert results[1].message.startswith("RTT April 2024 (revised): downloaded")
    assert (tmp_path / "rtt" / RTT_REVISED).read_bytes() == revised
    assert (tmp_path / "rtt" / RTT_NAME).read_bytes() == original
    assert landed(tmp_path) == sorted([RTT_NAME, RTT_REVISED])


def test_month_published_only_as_a_revision(publisher, tmp_path) -> None:
    fake, base = publisher
    fake.route(f"/rtt/{RTT_REVISED}", Reply(body=rtt_zip(11)))
    results = pull_rtt(tmp_path, base)
    assert [(r.path.name, r.status) for r in results] == [(RTT_REVISED, "downloaded")]


def test_one_failure_does_not_stop_the_other_months(publisher, tmp_path) -> None:
    fake, base = publisher
    may = "20240531-RTT-May-2024-full-extract.zip"
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=b"<html>error</html>", headers={"Content-Type": "text/html"}))
    fake.route(f"/rtt/{may}", Reply(body=rtt_zip()))
    results = pull_source("rtt", tmp_path, [APRIL, date(2024, 5, 1)], base_url=base, **FAST)
    assert [(r.path.name, r.status) for r in results] == [(RTT_NAME, "failed"), (may, "downloaded")]


def test_pull_all_uses_the_environment_and_skips_unconfigured_sources(publisher, tmp_path, monkeypatch) -> None:
    fake, base = publisher
    root = base.removesuffix("/rtt")
    for source in PULL_SOURCES:
        monkeypatch.delenv(f"COLLAB_PULL_BASE_URL_{source.upper()}", raising=False)
    monkeypatch.setenv("COLLAB_PULL_BASE_URL_RTT", base)
    monkeypatch.setenv("COLLAB_PULL_BASE_URL_OAP", f"{root}/oap")
    monkeypatch.setenv("COLLAB_PULL_BASE_URL_ODS", "http://127.0.0.1:9/wrong")  # overridden by base_urls
    fake.route(f"/rtt/{RTT_NAME}", Reply(body=rtt_zip()))
    fake.route(
        f"/oap/{OAP_NAME}",
        Reply(body=oap_zip(), headers={"Content-Type": "application/zip"}),
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("etr.csv", '"RCF","AIREDALE NHS FOUNDATION TRUST"\n')
    fake.route("/ods/etr.zip", Reply(body=buffer.getvalue()))

    results = pull_all(tmp_path, [APRIL], base_urls={"ods": f"{root}/ods"}, **FAST)
    assert results["los_mh"] == [] and results["los_acute"] == []
    assert [r.status for r in results["rtt"]] == ["downloaded"]
    assert [r.status for r in results["oap"]] == ["downloaded"]
    assert [(r.path.name, r.status) for r in results["ods"]] == [
        ("etr.zip", "downloaded"),
        ("succ.zip", "not_published"),
    ]
    assert (tmp_path / "oap" / OAP_NAME).exists() and (tmp_path / "ods" / "etr.zip").exists()

    explicit = pull_source("los_mh", tmp_path, [APRIL])
    assert [r.status for r in explicit] == ["failed"]
    assert "COLLAB_PULL_BASE_URL_LOS_MH" in explicit[0].message


def test_unreachable_server_fails_without_raising(tmp_path) -> None:
    result = only(pull_source("rtt", tmp_path, [APRIL], base_url="http://127.0.0.1:9", timeout=0.5, retries=0))
    assert result.status == "failed" and "could not reach the server after 1 attempt" in result.message


def test_landing_names_are_those_the_loaders_recognise() -> None:
    """The pulled files must be found by the loaders: the names agree with each loader's own file_name()."""
    oap = pytest.importorskip("orchestration.sources.oap")
    los = pytest.importorskip("orchestration.sources.los")
    assert PULL_SOURCES["oap"].file_names(APRIL) == (oap.file_name(APRIL, "Performance", suffix=".zip"),)
    assert PULL_SOURCES["oap"].variant_names(APRIL) == (
        oap.file_name(APRIL, "Performance", version=2, suffix=".zip"),
        oap.file_name(APRIL, "Final", suffix=".zip"),
        oap.file_name(APRIL, "Provisional", suffix=".zip"),
    )
    assert oap.month_in_file_name(Path(OAP_NAME)) == APRIL
    for source in ("los_mh", "los_acute"):
        stem = los.file_name(source, APRIL).removesuffix(".csv")
        revised = los.file_name(source, APRIL, revised=True).removesuffix(".csv")
        assert PULL_SOURCES[source].file_names(APRIL) == (stem + ".zip",)
        assert PULL_SOURCES[source].variant_names(APRIL) == (revised + ".zip",)


def test_oap_month_with_only_a_provisional_edition(publisher, tmp_path) -> None:
    fake, base = publisher
    root = base.removesuffix("/rtt")
    fake.route("/oap/MHSDS Data_OAPs_AprProv_2024.zip", Reply(body=oap_zip("MHSDS Data_OAPs_AprProv_2024.csv")))
    results = pull_source("oap", tmp_path, [APRIL], base_url=f"{root}/oap", **FAST)
    assert [(r.path.name, r.status) for r in results] == [("MHSDS Data_OAPs_AprProv_2024.zip", "downloaded")]
    assert results[0].message.startswith("Out-of-area placements April 2024 (provisional): downloaded")
