"""Download new monthly publications from the publishers' own pages into the landing folder (``collab-benefits
pull`` and the Dagster pull assets, SPEC §2 and §10).

No publisher keeps its files at addresses that can be predicted, so every pull starts from the page that lists
them and follows the links, as a person would:

- **RTT** (NHS England): the RTT area page links one page per financial year (``…/rtt-data-2026-27/``); each year
  page links its months' "Full CSV data file" zips, uploaded into dated folders and named with the month, a size
  tag and often a random suffix, in no fixed order (``…/uploads/sites/2/2026/06/Full-CSV-data-file-Apr26-ZIP-3M-
  Dc1i9U.zip``, ``Full-CSV-data-file-Mar26-ZIP-3M-revised.zip``). A file lands under the name the RTT loader
  reads, ``20260430-RTT-April-2026-full-extract.zip`` (``-revised`` for a revision, landed beside the original).
- **Out-of-area placements** (NHS England's MHSDS monthly statistics): the publication index links each month's
  publication page (``…/mental-health-services-monthly-statistics/performance-april-2026``), which links the
  month's data files; the out-of-area placements file is ``MHSDS Data_OAPs_AprPerf_2026.zip`` (``Prov``,
  ``Final``, sometimes ``_v2``). It lands under its published name.
- **ODS**: ``etr.zip`` and ``succ.zip``, from their stable addresses or from the links of a page that lists them.

Which pages are read and how many months are kept current is configured once, in
:class:`orchestration.resources.PublishersResource` (the real pages by default, ``COLLAB_PULL_*`` or
``--index-url`` for a mirror). What a page must look like is written here, in :func:`rtt_data_file`,
:func:`oap_data_file` and the ``find_*`` functions; a page that no longer matches (no year pages, no data file
links) is a ``failed`` result naming the page and what was expected, never a silent empty pull. Links that are not
data files (PDFs, spreadsheets, other CSVs) are passed over.

What a download guarantees, because a half-written or wrong file in the landing folder would otherwise reach the
file contracts and be quarantined (or, worse, look like a month's data):

- retries with back-off for transient failures (urllib3 ``Retry`` on 429/500/502/503/504, ``Retry-After``
  respected up to :data:`MAX_RETRY_AFTER` seconds; connection errors and read timeouts are retried too);
- conditional requests: each landed file has a sidecar ``<file>.source.json`` with the URL it came from, the page
  that linked it, its published name, ``ETag``, ``Last-Modified``, SHA-256 and size; they are sent back as
  ``If-None-Match`` / ``If-Modified-Since`` while the file and its URL are unchanged, so an unchanged publication
  is not downloaded again (``not_modified``; the local file is not touched), and a file sent again with the same
  bytes is not rewritten;
- the body goes to a temporary file in the same folder and is moved into place with ``os.replace`` only once it
  has been checked, so the real name never holds a partial file;
- checks: not an HTML page served in place of the data, as many bytes as ``Content-Length`` announced, and a
  ``.zip`` that opens, passes ``testzip()`` and holds exactly one CSV (as the loaders require).

One file's failure never stops the others and is never raised: it is reported in its :class:`PullResult`.
"""

from __future__ import annotations

import calendar
import email.utils
import hashlib
import json
import os
import re
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from orchestration.resources import PublishersResource
from orchestration.sources import rtt_layout

#: What pulling one file (or reading one page) did.
STATUSES: tuple[str, ...] = ("downloaded", "not_modified", "not_published", "failed")
#: The sources with a public publisher, in the order they are pulled.
SOURCES: tuple[str, ...] = ("rtt", "oap", "ods")
LABELS = {"rtt": "RTT", "oap": "Out-of-area placements", "ods": "ODS"}

SIDECAR_SUFFIX = ".source.json"
RETRY_STATUSES: tuple[int, ...] = (429, 500, 502, 503, 504)
#: A server asking to wait longer than this (``Retry-After``) is waited for this long at most.
MAX_RETRY_AFTER = 60.0
#: An index page larger than this is not an index page.
MAX_PAGE_BYTES = 10 * 1024 * 1024
USER_AGENT = "collab-benefits-pull/0.2 (NHS provider collaborative benefits warehouse)"
_CHUNK = 1 << 16
_SNIFF = 512

# --------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PullResult:
    """What pulling one file (or reading one page) did: ``status`` is one of :data:`STATUSES`; ``message`` says it
    to a person; ``page`` is the page the file was linked from, or the page that could not be used."""

    source: str
    url: str
    path: Path
    status: str
    message: str = ""
    page: str = ""
    month: date | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown pull status {self.status!r}; expected one of {STATUSES}")

    @property
    def ok(self) -> bool:
        return self.status != "failed"


# --------------------------------------------------------------------------------------------------------------
# Links on a page


@dataclass(frozen=True)
class Link:
    url: str  # absolute
    text: str


class _Anchors(HTMLParser):
    """Every ``<a href>`` of a page with its text (entities decoded, whitespace collapsed)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[str]]] = []
        self._open: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                anchor = (href.strip(), [])
                self.found.append(anchor)
                self._open.append(anchor)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for _, text in self._open:
            text.append(data)


def page_links(html: str, page_url: str) -> list[Link]:
    """The links of a page, made absolute against ``page_url``, each URL once (in page order)."""
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    links: dict[str, Link] = {}
    for href, text in parser.found:
        if href.startswith(("#", "mailto:", "javascript:", "tel:")):
            continue
        url = urljoin(page_url, href).split("#", 1)[0]
        if url not in links:
            links[url] = Link(url, " ".join("".join(text).split()))
    return list(links.values())


def file_name_of(url: str) -> str:
    """The last segment of a URL's path, percent-decoded (``MHSDS%20Data_OAPs…`` → ``MHSDS Data_OAPs…``)."""
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])


def _path_of(url: str) -> str:
    return unquote(urlsplit(url).path).rstrip("/")


# --------------------------------------------------------------------------------------------------------------
# The publishers' file names


@dataclass(frozen=True)
class DataFile:
    """One data file a publisher's page links to: its month, its edition, and the name it lands under.

    ``edition`` is ``original`` or ``revised`` (RTT), ``Provisional``, ``Performance`` or ``Final`` (out-of-area
    placements) or ``reference`` (ODS); ``version`` is the publisher's re-issue number (``_v2`` → 2).
    ``uploaded`` is the ``(year, month)`` of the dated upload folder in the URL, when it has one.
    """

    source: str
    url: str
    published_name: str
    landing_name: str
    month: date | None
    edition: str
    version: int = 1
    page: str = ""
    uploaded: tuple[int, int] | None = None


_MONTH_NAMES = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTH_ABBRS = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_MONTHS_ANY = {**_MONTH_ABBRS, **_MONTH_NAMES, "sept": 9}
#: Month names as they appear in names and slugs, longest first so that ``june`` is not read as ``jun`` + ``e``.
_MONTH_PATTERN = "|".join(sorted(_MONTHS_ANY, key=len, reverse=True))

_RTT_PREFIX = "full-csv-data-file"
_RTT_MONTH_TOKEN = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)(\d{2})$", re.IGNORECASE)
_UPLOAD_FOLDER = re.compile(r"/uploads/(?:sites/\d+/)?(\d{4})/(\d{2})/")
_RTT_YEAR_PAGE = re.compile(r"/rtt-data-(\d{4})-(\d{2})$", re.IGNORECASE)


def _uploaded(url: str) -> tuple[int, int] | None:
    match = _UPLOAD_FOLDER.search(urlsplit(url).path)
    return (int(match.group(1)), int(match.group(2))) if match else None


def rtt_data_file(url: str, page: str = "") -> DataFile | None:
    """An RTT "Full CSV data file" link, or ``None`` for any other link.

    The published name starts ``Full-CSV-data-file-`` and ends ``.zip``; after the prefix come, in no fixed order,
    the month (``Apr26``), the size tag (``ZIP-3M``, ``ZIP-3832K``), ``revised`` for a revision and often a random
    suffix (``Dc1i9U``, ``57873-1``). Only the month and ``revised`` matter. Other files on the pages (the
    commissioner and provider spreadsheets, ``Incomplete-Provider-…``, time series, PDFs) are not this.
    """
    name = file_name_of(url)
    stem, dot, extension = name.rpartition(".")
    if not dot or extension.lower() != "zip" or not stem.lower().startswith(_RTT_PREFIX + "-"):
        return None
    tokens = [token for token in re.split(r"[-_ ]+", stem[len(_RTT_PREFIX) + 1 :]) if token]
    month_tokens = [match for token in tokens if (match := _RTT_MONTH_TOKEN.match(token))]
    if not month_tokens:
        return None
    abbr, yy = month_tokens[0].groups()
    month = date(2000 + int(yy), _MONTH_ABBRS[abbr.lower()], 1)
    revised = any(token.lower() == "revised" for token in tokens)
    landing = rtt_layout.file_name(month, revised=revised).removesuffix(".csv") + ".zip"
    return DataFile(
        source="rtt",
        url=url,
        published_name=name,
        landing_name=landing,
        month=month,
        edition="revised" if revised else "original",
        page=page,
        uploaded=_uploaded(url),
    )


_OAP_STATUS = {
    "perf": "Performance",
    "prf": "Performance",
    "performance": "Performance",
    "prov": "Provisional",
    "provisional": "Provisional",
    "p": "Provisional",
    "final": "Final",
}
_OAP_SHORT = re.compile(
    rf"^MHSDS[ _]Data_OAPs?_({_MONTH_PATTERN})(Performance|Perf|Prf|Provisional|Prov|Final|P)_+(\d{{4}})"
    r"(?:[ _-]?v(\d+))?\.(zip|csv)$",
    re.IGNORECASE,
)
_OAP_LONG = re.compile(
    rf"^MHSDS Monthly:? (Performance|Provisional|Final) ({_MONTH_PATTERN}) (\d{{4}}) Out of Area Placements"
    r"(?:[ _-]?v(\d+))?\.(zip|csv)$",
    re.IGNORECASE,
)


def oap_data_file(url: str, page: str = "") -> DataFile | None:
    """An MHSDS out-of-area placements data file link, or ``None`` for any other link.

    The monthly file is ``MHSDS Data_OAPs_<Mon><Perf|Prov|Final>_<YYYY>.zip`` (``Prf`` and ``Final__`` also seen,
    ``_v2`` or `` v2`` for a re-issue, sometimes a ``.csv``), or in the long form ``MHSDS Monthly Performance
    July 2025 Out of Area Placements.zip``. The publication's other files (the main ``MHSDS Data_…`` file,
    restrictive interventions, the OAPs time series, data quality, ASCOF, PDFs) are not this. It lands under its
    published name.
    """
    name = file_name_of(url)
    match = _OAP_SHORT.match(name)
    if match:
        month_name, status, year, version, _ext = match.groups()
    else:
        match = _OAP_LONG.match(name)
        if not match:
            return None
        status, month_name, year, version, _ext = match.groups()
    return DataFile(
        source="oap",
        url=url,
        published_name=name,
        landing_name=name,
        month=date(int(year), _MONTHS_ANY[month_name.lower()], 1),
        edition=_OAP_STATUS[status.lower()],
        version=int(version) if version else 1,
        page=page,
        uploaded=_uploaded(url),
    )


ODS_FILES: tuple[str, ...] = ("etr.zip", "succ.zip")


def ods_data_file(url: str, page: str = "") -> DataFile | None:
    """ODS's NHS trusts (``etr.zip``) or successions (``succ.zip``) file, or ``None``."""
    name = file_name_of(url)
    if name.lower() not in ODS_FILES:
        return None
    return DataFile("ods", url, name, name.lower(), None, "reference", page=page)


#: The slug of an MHSDS monthly publication page: ``performance-april-2026``, ``final-february-provisional-march-2019``.
_PUBLICATION_SLUG = re.compile(rf"^(?:performance|final|provisional)-(?:{_MONTH_PATTERN})-", re.IGNORECASE)


def publication_month(slug: str) -> date | None:
    """The month an MHSDS monthly publication page is for, from its slug.

    ``performance-april-2026`` → April 2026; the form used before October 2023 names the next month's provisional
    figures too: ``performance-december-provisional-january-2023`` → December 2022 (the year is the later
    month's), ``final-february-provisional-march-2019`` → February 2019.
    """
    words = slug.lower().split("-")
    months = [_MONTHS_ANY[word] for word in words if word in _MONTHS_ANY]
    years = [int(word) for word in words if re.fullmatch(r"\d{4}", word)]
    if not months or not years:
        return None
    year = years[0]
    if len(months) > 1 and len(years) == 1 and months[0] > months[1]:
        year -= 1  # December's page, provisional January: the one year is January's
    return date(year, months[0], 1)


# --------------------------------------------------------------------------------------------------------------
# HTTP


class _CappedRetry(Retry):
    """urllib3 ``Retry`` that honours ``Retry-After`` but never sleeps longer than :data:`MAX_RETRY_AFTER`."""

    def get_retry_after(self, response):  # type: ignore[no-untyped-def]
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER)


def make_session(retries: int = 3, backoff: float = 0.5) -> requests.Session:
    """A session whose adapters retry transient failures (status codes, connection errors, read timeouts)."""
    retry = _CappedRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclass(frozen=True)
class _Http:
    """One pull's session and patience, passed around together."""

    session: requests.Session
    timeouts: tuple[float, float]
    retries: int
    backoff: float


class _PageError(Exception):
    """A page could not be read; the message completes 'the page …: '."""


def _read_page(http: _Http, url: str) -> list[Link]:
    """The links of the HTML page at ``url``; :class:`_PageError` when it cannot be read as one."""
    try:
        response = http.session.get(url, timeout=http.timeouts, stream=True, allow_redirects=True)
    except requests.RequestException as error:
        raise _PageError(_describe_error(error, http.timeouts, http.retries)) from error
    try:
        if response.status_code != 200:
            after = f" after {_attempts(http.retries)}" if response.status_code in RETRY_STATUSES else ""
            raise _PageError(f"the server answered HTTP {response.status_code}{after}")
        body = b""
        try:
            for chunk in response.iter_content(_CHUNK):
                body += chunk
                if len(body) > MAX_PAGE_BYTES:
                    raise _PageError(f"it is larger than {MAX_PAGE_BYTES // (1024 * 1024)} MB: not an index page")
        except requests.RequestException as error:
            raise _PageError(_describe_error(error, http.timeouts, http.retries, during_body=True)) from error
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in ("text/html", "application/xhtml+xml") and not _looks_like_html(body[:_SNIFF]):
            raise _PageError(f"it is not an HTML page (Content-Type {content_type or 'missing'})")
        text = body.decode(response.encoding or "utf-8", errors="replace")
    finally:
        response.close()
    return page_links(text, response.url or url)


# --------------------------------------------------------------------------------------------------------------
# Finding each month's files


@dataclass
class _Found:
    """What reading a publisher's pages found: the data files, and a result for each page that could not be used."""

    files: list[DataFile] = field(default_factory=list)
    problems: list[PullResult] = field(default_factory=list)


Window = tuple[date, date]  # [start, end) months, as a Dagster partition window


def _in_window(month: date | None, within: Window | None) -> bool:
    return month is None or within is None or within[0] <= month < within[1]


def _layout_changed(source: str, page: str, folder: Path, expected: str) -> PullResult:
    return PullResult(
        source,
        page,
        folder,
        "failed",
        f"{LABELS[source]}: the page {page} has no {expected}. The publisher may have changed the page's layout; "
        "nothing was downloaded from it (check the page, then the link patterns in orchestration/pull.py)",
        page=page,
    )


def _unreadable(source: str, page: str, folder: Path, error: _PageError) -> PullResult:
    return PullResult(
        source, page, folder, "failed", f"{LABELS[source]}: the page {page} could not be read: {error}", page=page
    )


def find_rtt_files(http: _Http, area_page: str, folder: Path, months: int, within: Window | None) -> _Found:
    """The Full CSV data files of the newest ``months`` months: area page → year pages (newest first) → links."""
    found = _Found()
    try:
        links = _read_page(http, area_page)
    except _PageError as error:
        found.problems.append(_unreadable("rtt", area_page, folder, error))
        return found
    years: dict[int, str] = {}
    for link in links:
        match = _RTT_YEAR_PAGE.search(_path_of(link.url))
        if match and int(match.group(2)) == (int(match.group(1)) + 1) % 100:
            years.setdefault(int(match.group(1)), link.url)
    if not years:
        found.problems.append(
            _layout_changed(
                "rtt",
                area_page,
                folder,
                "links to the financial-year pages (expected links like …/rtt-waiting-times/rtt-data-2026-27/)",
            )
        )
        return found
    seen_months: set[date] = set()
    newest = max(years)
    for start_year in sorted(years, reverse=True):
        if len(seen_months) >= months:
            break
        year_start, year_end = date(start_year, 4, 1), date(start_year + 1, 4, 1)
        if within is not None and (year_end <= within[0] or year_start >= within[1]):
            continue
        year_page = years[start_year]
        try:
            year_links = _read_page(http, year_page)
        except _PageError as error:
            found.problems.append(_unreadable("rtt", year_page, folder, error))
            continue
        files = [data for link in year_links if (data := rtt_data_file(link.url, year_page))]
        if not files:
            if start_year == newest:
                # A new financial year's page can be up before its first month is published.
                found.problems.append(
                    PullResult(
                        "rtt",
                        year_page,
                        folder,
                        "not_published",
                        f"RTT: the newest financial-year page {year_page} links no Full CSV data file yet",
                        page=year_page,
                    )
                )
                continue
            found.problems.append(
                _layout_changed(
                    "rtt",
                    year_page,
                    folder,
                    "links to a Full CSV data file (expected links like …/wp-content/uploads/sites/2/2026/06/"
                    "Full-CSV-data-file-Apr26-ZIP-3M-<tag>.zip)",
                )
            )
            continue
        files = [data for data in files if _in_window(data.month, within)]
        found.files += files
        seen_months |= {data.month for data in files if data.month}
    return found


def find_oap_files(http: _Http, index_page: str, folder: Path, months: int, within: Window | None) -> _Found:
    """The out-of-area placements files of the newest ``months`` months: index → monthly pages → links."""
    found = _Found()
    try:
        links = _read_page(http, index_page)
    except _PageError as error:
        found.problems.append(_unreadable("oap", index_page, folder, error))
        return found
    pages: dict[date, str] = {}
    for link in links:
        # a monthly page by its slug, wherever it is served (the publisher, or a mirror of the index page);
        # sub-pages of one (…/performance-april-2026/data-quality) and other publications are passed over
        slug = _path_of(link.url).rsplit("/", 1)[-1].lower()
        month = publication_month(slug) if _PUBLICATION_SLUG.match(slug) else None
        if month is not None:
            pages.setdefault(month, link.url)
    if not pages:
        found.problems.append(
            _layout_changed(
                "oap",
                index_page,
                folder,
                "links to the monthly publication pages (expected links like "
                "…/mental-health-services-monthly-statistics/performance-april-2026)",
            )
        )
        return found
    ordered = [month for month in sorted(pages, reverse=True) if within is None or month < within[1]]
    seen_months: set[date] = set()
    empty: list[PullResult] = []
    for position, page_month in enumerate(ordered):
        if len(seen_months) >= months or (within is not None and page_month < within[0]):
            break
        page = pages[page_month]
        try:
            page_links_found = _read_page(http, page)
        except _PageError as error:
            found.problems.append(_unreadable("oap", page, folder, error))
            continue
        files = [data for link in page_links_found if (data := oap_data_file(link.url, page))]
        if not files:
            expected = (
                "link to an out-of-area placements data file (expected a link like "
                f"'MHSDS Data_OAPs_{calendar.month_abbr[page_month.month]}Perf_{page_month.year}.zip')"
            )
            if position == 0:
                found.problems.append(_layout_changed("oap", page, folder, expected))
            else:
                message = f"Out-of-area placements: the page {page} has no {expected}"
                empty.append(PullResult("oap", page, folder, "not_published", message, page=page))
            continue
        files = [data for data in files if _in_window(data.month, within)]
        found.files += files
        seen_months |= {data.month for data in files if data.month}
    if not found.files and not found.problems:
        found.problems.append(
            _layout_changed("oap", index_page, folder, "monthly page that links an out-of-area placements data file")
        )
    found.problems += empty
    return found


def find_ods_files(http: _Http, index_page: str | None, files_url: str, folder: Path) -> _Found:
    """``etr.zip`` and ``succ.zip``: from a page's links when one is configured, else at their stable addresses."""
    found = _Found()
    if index_page is None:
        base = files_url.rstrip("/")
        found.files = [DataFile("ods", f"{base}/{name}", name, name, None, "reference") for name in ODS_FILES]
        return found
    try:
        links = _read_page(http, index_page)
    except _PageError as error:
        found.problems.append(_unreadable("ods", index_page, folder, error))
        return found
    by_name: dict[str, DataFile] = {}
    for link in links:
        data = ods_data_file(link.url, index_page)
        if data:
            by_name.setdefault(data.landing_name, data)
    missing = [name for name in ODS_FILES if name not in by_name]
    if missing:
        found.problems.append(
            _layout_changed("ods", index_page, folder, "link to " + " or ".join(missing) + " (ODS's trust files)")
        )
    found.files = [by_name[name] for name in ODS_FILES if name in by_name]
    return found


def _newest(files: Iterable[DataFile]) -> DataFile:
    """Of several links to one edition, the one uploaded last (then the one the page lists last)."""
    files = list(files)
    return max(enumerate(files), key=lambda item: (item[1].version, item[1].uploaded or (0, 0), item[0]))[1]


def choose_files(files: Sequence[DataFile], months: int) -> list[DataFile]:
    """The files to land: for each of the newest ``months`` months, one file per edition, oldest month first.

    RTT: the original and, when published, the revision (both land; the loader lets the revision replace). Out-of-
    area placements: each status published (Provisional, Performance, Final), its highest ``_vN`` re-issue. Of two
    links to the same edition the one uploaded last wins. Files without a month (ODS) are all kept.
    """
    dated = sorted({data.month for data in files if data.month is not None}, reverse=True)[:months]
    keep = set(dated)
    editions: dict[tuple[date | None, str], list[DataFile]] = {}
    for data in files:
        if data.month is None or data.month in keep:
            editions.setdefault((data.month, data.edition if data.month else data.landing_name), []).append(data)
    order = {"original": 0, "Provisional": 0, "Performance": 1, "revised": 2, "Final": 2, "reference": 0}
    chosen = [_newest(group) for group in editions.values()]
    return sorted(chosen, key=lambda d: (d.month or date.min, order.get(d.edition, 3), d.landing_name))


# --------------------------------------------------------------------------------------------------------------
# Pulling


def pull_source(
    source: str,
    dest_dir: Path,
    *,
    publishers: PublishersResource | None = None,
    index_url: str | None = None,
    months: int | None = None,
    within: Window | None = None,
    landed_by_run: str | None = None,
    timeout: float | tuple[float, float] | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    session: requests.Session | None = None,
) -> list[PullResult]:
    """Read ``source``'s publisher pages and download its newest ``months`` months into ``dest_dir/<source>/``.

    ``publishers`` gives the pages and defaults (the environment's when not given); ``index_url`` overrides the
    page to start from (a mirror); ``months`` overrides how many of the newest published months to keep current;
    ``within`` limits them to ``[start, end)`` months (a Dagster partition window). ``timeout`` (seconds, or a
    ``(connect, read)`` pair), ``retries`` and ``backoff`` override the publishers' settings for a session made
    here; a ``session`` passed in is used as it is. ``landed_by_run`` is recorded in each sidecar (a Dagster run
    that ingests what it lands, so the landing-folder sensor need not).

    Returns one result per file landed, unchanged or refused, and one per page that could not be used (a layout
    the patterns no longer match is ``failed`` and names the page). Raises ``ValueError`` only for an unknown
    source or a ``months`` below 1.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    publishers = publishers or PublishersResource()
    months = publishers.months if months is None else months
    if months < 1:
        raise ValueError(f"months must be at least 1, not {months}")
    timeout = publishers.timeout_seconds if timeout is None else timeout
    timeouts = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    retries = publishers.retries if retries is None else retries
    backoff = publishers.backoff_seconds if backoff is None else backoff
    dest_dir = Path(dest_dir)
    folder = dest_dir / source
    page = index_url or publishers.index_url(source)

    own_session = session is None
    http = _Http(session or make_session(retries, backoff), timeouts, retries, backoff)
    try:
        if source == "rtt":
            assert page is not None
            found = find_rtt_files(http, page, folder, months, within)
        elif source == "oap":
            assert page is not None
            found = find_oap_files(http, page, folder, months, within)
        else:
            found = find_ods_files(http, page, publishers.ods_files_url, folder)
        results = [
            _pull_file(http, data, folder / data.landing_name, landed_by_run)
            for data in choose_files(found.files, months)
        ]
    finally:
        if own_session:
            http.session.close()
    return found.problems + results


def pull_all(dest_dir: Path, *, sources: Sequence[str] | None = None, **kw) -> dict[str, list[PullResult]]:
    """Pull every source with a public publisher (or ``sources``) into ``dest_dir``; keyword arguments as for
    :func:`pull_source`."""
    return {source: pull_source(source, dest_dir, **kw) for source in (sources or SOURCES)}


def _what(data: DataFile) -> str:
    """How a message names a file: ``RTT April 2026``, ``RTT April 2026 (revised)``, ``ODS etr.zip``."""
    label = LABELS[data.source]
    if data.month is None:
        return f"{label} {data.landing_name}"
    what = f"{label} {calendar.month_name[data.month.month]} {data.month.year}"
    if data.edition in ("original", "reference"):
        return what
    version = f" v{data.version}" if data.version > 1 else ""
    return f"{what} ({data.edition.lower() if data.source == 'rtt' else data.edition}{version})"


def sidecar_path(target: Path) -> Path:
    """Where what is known about a landed file's origin is kept: ``<file>.source.json`` beside it."""
    return target.with_name(target.name + SIDECAR_SUFFIX)


def read_sidecar(target: Path) -> dict:
    try:
        recorded = json.loads(sidecar_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def _write_sidecar(target: Path, recorded: dict) -> None:
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".json.part")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(recorded, out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(temp, sidecar_path(target))


def landed_by_run(path: Path) -> str | None:
    """The Dagster run that landed ``path`` (and ingests it), if the file is still exactly as that run left it."""
    recorded = read_sidecar(path)
    run = recorded.get("landed_by_run")
    if not run:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    if recorded.get("landed_bytes") == stat.st_size and recorded.get("landed_mtime_ns") == stat.st_mtime_ns:
        return str(run)
    return None


def _pull_file(http: _Http, data: DataFile, target: Path, run_id: str | None) -> PullResult:
    """Download one linked file to ``target`` unless it is unchanged; record where it came from beside it."""
    what = _what(data)
    recorded = read_sidecar(target)
    headers: dict[str, str] = {}
    # Validators are only worth sending while the file they describe is still there, from the same address.
    same_address = recorded.get("url") == data.url
    if target.exists() and same_address:
        if recorded.get("etag"):
            headers["If-None-Match"] = recorded["etag"]
        if recorded.get("last_modified"):
            headers["If-Modified-Since"] = recorded["last_modified"]

    def result(status: str, message: str) -> PullResult:
        return PullResult(data.source, data.url, target, status, f"{what}: {message}", data.page, data.month)

    # urllib3 retries failures before the body starts; a body that stops arriving is asked for again here.
    for attempt in range(http.retries + 1):
        try:
            response = http.session.get(data.url, headers=headers, timeout=http.timeouts, stream=True)
        except requests.RequestException as error:
            return result("failed", f"{_describe_error(error, http.timeouts, http.retries)} ({data.url}): not saved")
        try:
            outcome = _handle_response(response, target, headers, http)
        except _Failed as failure:
            if failure.transient and attempt < http.retries:
                time.sleep(http.backoff * (2**attempt))
                continue
            tries = f" (tried {attempt + 1} times)" if failure.transient and attempt else ""
            linked = f", linked from {data.page}" if data.page else ""
            return result("failed", f"{failure}{tries} ({data.url}{linked}): not saved")
        finally:
            response.close()
        break
    if isinstance(outcome, str):  # not modified
        return result("not_modified", outcome)
    previous_sha = recorded.get("sha256") if target.exists() else None
    if previous_sha == outcome.sha256:
        outcome.temp.unlink(missing_ok=True)
        note = "sent again with the same content" + ("" if same_address else f" from a new address, {data.url}")
        kept = "not_modified"
    else:
        os.replace(outcome.temp, target)
        note = ""
        kept = "downloaded"
    stat = target.stat()
    _write_sidecar(
        target,
        {
            "url": data.url,
            "page": data.page,
            "published_name": data.published_name,
            "month": data.month.isoformat() if data.month else None,
            "edition": data.edition,
            "version": data.version,
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
            "sha256": outcome.sha256,
            "bytes": outcome.size,
            "downloaded_at": _now() if kept == "downloaded" else recorded.get("downloaded_at", _now()),
            "checked_at": _now(),
            "landed_bytes": stat.st_size,
            "landed_mtime_ns": stat.st_mtime_ns,
            "landed_by_run": run_id if kept == "downloaded" else recorded.get("landed_by_run"),
        },
    )
    if kept == "not_modified":
        return result("not_modified", f"{note} (SHA-256 {outcome.sha256[:12]}…); {target.name} left as it was")
    if previous_sha is None:
        replaced = ""
    elif same_address:
        replaced = " (republished: replaces the earlier download)"
    else:
        replaced = f" (republished at a new address: replaces the download from {recorded.get('url')})"
    return result("downloaded", f"downloaded {_human_size(outcome.size)} from {data.url} to {target}{replaced}")


class _Failed(Exception):
    """One file could not be pulled; the message completes '<what>: …'.

    ``transient``: the body stopped arriving (timeout, connection closed early), worth asking for again.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class _Saved:
    """A checked download, still under its temporary name beside the target."""

    temp: Path
    size: int
    sha256: str


def _handle_response(response: requests.Response, target: Path, sent: dict[str, str], http: _Http) -> str | _Saved:
    """Turn one response into a 'not modified' message or a checked file saved beside ``target``."""
    if response.status_code == 304:
        if not target.exists():
            raise _Failed(f"the server answered 'not modified' but {target} is missing")
        if "If-None-Match" in sent:
            validator = f"ETag {sent['If-None-Match']}"
        else:
            validator = f"Last-Modified {sent.get('If-Modified-Since', '?')}"
        return f"unchanged since the last download ({validator}); {target.name} left as it was"
    if response.status_code != 200:
        after = f" after {_attempts(http.retries)}" if response.status_code in RETRY_STATUSES else ""
        reason = f" {response.reason}" if response.reason else ""
        raise _Failed(f"the server returned HTTP {response.status_code}{reason}{after}")
    return _save_checked(response, target, http)


def _save_checked(response: requests.Response, target: Path, http: _Http) -> _Saved:
    """Stream the body to a temporary file beside ``target`` and check it; the caller moves it into place."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type in ("text/html", "application/xhtml+xml"):
        raise _Failed("the server returned an HTML page, not a data file")
    expected = response.headers.get("Content-Length")
    encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp = Path(temp_name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            head = b""
            try:
                for chunk in response.iter_content(_CHUNK):
                    if len(head) < _SNIFF:
                        head += chunk[: _SNIFF - len(head)]
                        if _looks_like_html(head):
                            raise _Failed("the server returned an HTML page, not a data file")
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            except requests.RequestException as error:
                if expected is not None and expected.isdigit() and not _is_timeout(error):
                    message = f"truncated download: the connection closed before the {expected} bytes announced arrived"
                else:
                    message = _describe_error(error, http.timeouts, http.retries, during_body=True)
                raise _Failed(message, transient=True) from error
        if size == 0:
            raise _Failed("the server returned an empty file")
        if expected is not None and not encoded and expected.isdigit() and int(expected) != size:
            raise _Failed(f"truncated download: received {size} of the {expected} bytes announced", transient=True)
        if target.suffix.lower() == ".zip":
            _check_zip(temp)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return _Saved(temp, size, digest.hexdigest())


def _looks_like_html(head: bytes) -> bool:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return text.startswith((b"<!doctype", b"<html"))


def _check_zip(path: Path) -> None:
    """A downloaded zip must open, pass its CRC checks and hold exactly one CSV (as the loaders expect)."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise _Failed(f"truncated or corrupt zip: {bad} fails its CRC check")
            members = [
                info.filename
                for info in archive.infolist()
                if not info.is_dir()
                and info.filename.lower().endswith(".csv")
                and not info.filename.startswith("__MACOSX/")
            ]
    except _Failed:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as error:
        raise _Failed(f"truncated or corrupt zip: {error}") from error
    if len(members) != 1:
        raise _Failed(f"the zip must hold exactly one .csv file; found {', '.join(members) or 'none'}")


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what it wraps (requests wraps urllib3's ``MaxRetryError``, which carries the reason)."""
    causes: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in causes and len(causes) < 10:
        causes.append(seen)
        if isinstance(seen, MaxRetryError) and seen.reason is not None:
            seen = seen.reason
        elif seen.args and isinstance(seen.args[0], BaseException):
            seen = seen.args[0]
        else:
            seen = seen.__cause__ or seen.__context__
    return causes


def _is_timeout(error: BaseException) -> bool:
    return any(isinstance(c, (requests.Timeout, ReadTimeoutError, TimeoutError)) for c in _causes(error)) or (
        "timed out" in str(error)
    )


def _describe_error(
    error: BaseException, timeouts: tuple[float, float], retries: int, *, during_body: bool = False
) -> str:
    """A transport failure in words: which timeout ran out, or what broke, and how often it was tried."""
    causes = _causes(error)
    attempts = "" if during_body else f" after {_attempts(retries)}"
    if any(isinstance(c, requests.ConnectTimeout) for c in causes):
        return f"could not connect within the connect timeout of {timeouts[0]:g} s{attempts}"
    if _is_timeout(error):
        return f"no data within the read timeout of {timeouts[1]:g} s{attempts}"
    if isinstance(error, requests.exceptions.ChunkedEncodingError) or any(isinstance(c, ProtocolError) for c in causes):
        return f"the connection broke during the download (truncated download: {causes[-1]})"
    if isinstance(error, requests.ConnectionError):
        return f"could not reach the server{attempts}: {causes[-1]}"
    return f"the request failed: {error}"


def _attempts(retries: int) -> str:
    return "1 attempt" if retries == 0 else f"{retries + 1} attempts"


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024**2:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024**2:.1f} MB"


def _now() -> str:
    return email.utils.format_datetime(datetime.now(UTC), usegmt=True)
