"""Download new monthly publications into the landing folder (``collab-benefits pull``, SPEC §2 and §10).

Every source is configured once, in :data:`PULL_SOURCES`: where its files are published (a base URL that can be
overridden per source by ``COLLAB_PULL_BASE_URL_<SOURCE>`` or by argument), the URL of one month's file and the
name it is saved under in the landing layout ``DIR/<source>/<file>`` that ``collab-benefits run`` reads.

What a download guarantees, because a half-written or wrong file in the landing folder would otherwise reach the
file contracts and be quarantined (or, worse, look like a month's data):

- retries with back-off for transient failures (urllib3 ``Retry`` on 429/500/502/503/504, ``Retry-After``
  respected up to :data:`MAX_RETRY_AFTER` seconds; connection errors and read timeouts are retried too);
- conditional requests: the ``ETag`` and ``Last-Modified`` of each URL are remembered in
  ``DIR/.pull_state.json`` and sent back as ``If-None-Match`` / ``If-Modified-Since``, so an unchanged
  publication is not downloaded again (``not_modified``; the local file is not touched);
- the body goes to a temporary file in the same folder and is moved into place with ``os.replace`` only once it
  has been checked, so the real name never holds a partial file;
- checks: not an HTML page served in place of the data, as many bytes as ``Content-Length`` announced, and a
  ``.zip`` that opens, passes ``testzip()`` and holds exactly one CSV;
- revisions: a publication republished under the same URL (new ``ETag``) is downloaded again over the earlier
  copy; for RTT the ``-revised`` variant of a month's file is also tried and saved under its ``-revised`` name,
  which is how the loader recognises a revision.

One file's failure never stops the others and is never raised: it is reported in its :class:`PullResult`.
"""

from __future__ import annotations

import calendar
import email.utils
import hashlib
import json
import os
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from orchestration.sources import oap_layout, rtt_layout

#: What pulling one file did.
STATUSES: tuple[str, ...] = ("downloaded", "not_modified", "not_published", "failed")

STATE_FILE = ".pull_state.json"
ENV_BASE_URL = "COLLAB_PULL_BASE_URL_{source}"
RETRY_STATUSES: tuple[int, ...] = (429, 500, 502, 503, 504)
#: A server asking to wait longer than this (``Retry-After``) is waited for this long at most.
MAX_RETRY_AFTER = 60.0
USER_AGENT = "collab-benefits-pull/0.1 (+https://github.com/; NHS provider collaborative benefits warehouse)"
_CHUNK = 1 << 16
_SNIFF = 512


# --------------------------------------------------------------------------------------------------------------
# The sources, configured in one place


@dataclass(frozen=True)
class PullSource:
    """Where one source's files are published and what they are called once landed.

    ``url_template`` is formatted with ``base_url`` and ``file`` (the published file name, which is also the name
    the file is saved under, so that a landed file can be traced back to its URL). ``file_names`` gives, for a
    month (``None`` for a source that is not monthly), the files to fetch; ``variant_names`` the other editions
    to try as well (a ``-revised`` file, a provisional edition), which are passed over silently while not
    published.
    ``default_base_url`` is ``None`` for sources that are not published openly (patient-level extracts): those
    are pulled only once a base URL is set.
    """

    name: str
    label: str
    default_base_url: str | None
    url_template: str
    file_names: Callable[[date | None], tuple[str, ...]]
    variant_names: Callable[[date | None], tuple[str, ...]] = lambda _month: ()
    monthly: bool = True

    def env_var(self) -> str:
        return ENV_BASE_URL.format(source=self.name.upper())

    def resolve_base_url(self, base_url: str | None = None) -> str | None:
        """The argument, else ``COLLAB_PULL_BASE_URL_<SOURCE>``, else the default (trailing ``/`` removed)."""
        chosen = base_url or os.environ.get(self.env_var()) or self.default_base_url
        return chosen.rstrip("/") if chosen else None

    def url(self, base_url: str, file: str) -> str:
        """The file's address: its name percent-encoded (``MHSDS%20Data_OAPs_AprPerf_2026.zip``)."""
        return self.url_template.format(base_url=base_url, file=quote(file))


def _rtt_files(month: date | None) -> tuple[str, ...]:
    """``20240430-RTT-April-2024-full-extract.zip``: the published extract is the layout's CSV, zipped."""
    assert month is not None
    return (rtt_layout.file_name(month).removesuffix(".csv") + ".zip",)


def _rtt_revisions(month: date | None) -> tuple[str, ...]:
    """``…-full-extract-revised.zip``: saved under this name, the loader treats it as the month's revision."""
    assert month is not None
    return (rtt_layout.file_name(month, revised=True).removesuffix(".csv") + ".zip",)


def _monthly(*patterns: str) -> Callable[[date | None], tuple[str, ...]]:
    """File names from patterns with ``{yyyy}`` and ``{mm}`` (``MHS501_{yyyy}-{mm}.zip`` → ``MHS501_2024-04.zip``)."""

    def names(month: date | None) -> tuple[str, ...]:
        assert month is not None
        return tuple(pattern.format(yyyy=f"{month.year:04d}", mm=f"{month.month:02d}") for pattern in patterns)

    return names


def _oap_files(month: date | None) -> tuple[str, ...]:
    """``MHSDS Data_OAPs_AprPerf_2026.zip``: the month's Performance file, zipped as NHS England publishes it."""
    assert month is not None
    return (oap_layout.file_name(month, "Performance", suffix=".zip"),)


def _oap_editions(month: date | None) -> tuple[str, ...]:
    """The month's other editions: a ``_v2`` re-publication, the Final file after the year-end refresh, and (for
    the newest month, before its Performance file) the Provisional one. The loader decides which stands."""
    assert month is not None
    return (
        oap_layout.file_name(month, "Performance", version=2, suffix=".zip"),
        oap_layout.file_name(month, "Final", suffix=".zip"),
        oap_layout.file_name(month, "Provisional", suffix=".zip"),
    )


# The names below are the landing names the loaders recognise (orchestration.sources.oap_layout.file_name, the
# publisher's own names, and orchestration.sources.los.file_name; tests/test_pull.py checks they agree). The layout
# modules are imported, the file contracts are not, so that pulling does not load GX.
PULL_SOURCES: dict[str, PullSource] = {
    source.name: source
    for source in (
        PullSource(
            name="rtt",
            label="RTT",
            # NHS England's statistics site publishes the monthly full extracts under this area. The uploaded
            # files' real paths carry an upload folder and a size tag that cannot be predicted, so production
            # use normally points COLLAB_PULL_BASE_URL_RTT at a mirror holding the files under these names.
            default_base_url="https://www.england.nhs.uk/statistics/statistical-work-areas/rtt-waiting-times",
            url_template="{base_url}/{file}",
            file_names=_rtt_files,
            variant_names=_rtt_revisions,
        ),
        PullSource(
            name="oap",
            label="Out-of-area placements",
            default_base_url=(
                "https://digital.nhs.uk/data-and-information/publications/statistical/"
                "out-of-area-placements-in-mental-health-services"
            ),
            url_template="{base_url}/{file}",
            file_names=_oap_files,
            variant_names=_oap_editions,
        ),
        PullSource(
            name="los_mh",
            label="Mental health spells",
            default_base_url=None,  # MHSDS MHS501 extracts come from a data access agreement, not a public site
            url_template="{base_url}/{file}",
            file_names=_monthly("MHS501_{yyyy}-{mm}.zip"),
            variant_names=_monthly("MHS501_{yyyy}-{mm}-revised.zip"),
        ),
        PullSource(
            name="los_acute",
            label="Acute spells",
            default_base_url=None,  # HES/SUS extracts come from a data access agreement, not a public site
            url_template="{base_url}/{file}",
            file_names=_monthly("HES_APC_{yyyy}-{mm}.zip"),
            variant_names=_monthly("HES_APC_{yyyy}-{mm}-revised.zip"),
        ),
        PullSource(
            name="ods",
            label="ODS",
            default_base_url="https://files.digital.nhs.uk/assets/ods/current",
            url_template="{base_url}/{file}",
            file_names=lambda _month: ("etr.zip", "succ.zip"),
            monthly=False,
        ),
    )
}


# --------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PullResult:
    """What pulling one file did: ``status`` is one of :data:`STATUSES`; ``message`` says it to a person."""

    source: str
    url: str
    path: Path
    status: str
    message: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown pull status {self.status!r}; expected one of {STATUSES}")

    @property
    def ok(self) -> bool:
        return self.status != "failed"


class _Failed(Exception):
    """One file could not be pulled; the message completes '<what>: …'.

    ``transient``: the body stopped arriving (timeout, connection closed early), worth asking for again.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


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


# --------------------------------------------------------------------------------------------------------------
# Remembered validators


def _load_state(dest_dir: Path) -> dict[str, dict]:
    path = dest_dir / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _save_state(dest_dir: Path, state: dict[str, dict]) -> None:
    dest_dir.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=dest_dir, prefix=".pull_state.", suffix=".part")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(state, out, indent=2, sort_keys=True)
    os.replace(temp, dest_dir / STATE_FILE)


# --------------------------------------------------------------------------------------------------------------
# Pulling


def pull_source(
    source: str,
    dest_dir: Path,
    months: Sequence[date],
    *,
    base_url: str | None = None,
    timeout: float | tuple[float, float] = 30,
    retries: int = 3,
    backoff: float = 0.5,
    session: requests.Session | None = None,
) -> list[PullResult]:
    """Download ``source``'s files for ``months`` into ``dest_dir/<source>/``; one result per file.

    ``timeout`` is the connect and read timeout in seconds (or a ``(connect, read)`` pair); ``retries`` and
    ``backoff`` configure the retries of a session made here (a ``session`` passed in is used as it is). A source
    that is not monthly (ODS) ignores ``months``. Raises ``ValueError`` only for an unknown source; every
    failure to pull a file is a ``failed`` result.
    """
    if source not in PULL_SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(PULL_SOURCES)}")
    spec = PULL_SOURCES[source]
    dest_dir = Path(dest_dir)
    folder = dest_dir / source
    periods: list[date | None] = (
        sorted({m.replace(day=1) for m in months}) if spec.monthly else [None]  # type: ignore[list-item]
    )
    resolved = spec.resolve_base_url(base_url)
    if resolved is None:
        return [
            PullResult(
                source,
                "",
                folder / spec.file_names(period)[0],
                "failed",
                f"{_what(spec, period)}: no download address is configured (this source is not published openly); "
                f"set {spec.env_var()} to the address that serves its files",
            )
            for period in periods
        ]

    own_session = session is None
    http = make_session(retries, backoff) if own_session else session
    timeouts = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    state = _load_state(dest_dir)
    results: list[PullResult] = []
    try:
        for period in periods:
            originals: list[PullResult] = []
            unreachable = False
            for name in spec.file_names(period):
                result, unreachable_now = _pull_file(
                    http, spec, period, name, resolved, folder, dest_dir, state, timeouts, retries, backoff
                )
                originals.append(result)
                unreachable = unreachable or unreachable_now
            revisions: list[PullResult] = []
            # A server that cannot be reached (or does not answer in time) is not asked again for the revision.
            for name in () if unreachable else spec.variant_names(period):
                result, _ = _pull_file(
                    http, spec, period, name, resolved, folder, dest_dir, state, timeouts, retries, backoff
                )
                if result.status != "not_published":  # no revision published: the normal case, not worth a line
                    revisions.append(result)
            if revisions:  # a month published only as a revision: its original's 404 is not news
                originals = [r for r in originals if r.status != "not_published"]
            results.extend(originals + revisions)
            _save_state(dest_dir, state)
    finally:
        if own_session:
            http.close()
    return results


def pull_all(
    dest_dir: Path,
    months: Sequence[date],
    *,
    sources: Sequence[str] | None = None,
    base_urls: Mapping[str, str] | None = None,
    **kw,
) -> dict[str, list[PullResult]]:
    """Pull every source (or ``sources``) into ``dest_dir``; other keyword arguments as for :func:`pull_source`.

    ``base_urls`` overrides the base URL per source (``{"rtt": "http://mirror/rtt"}``), ahead of the environment.
    When ``sources`` is not given, a source with no download address configured (a patient-level extract whose
    ``COLLAB_PULL_BASE_URL_<SOURCE>`` is unset) is skipped with an empty list rather than reported as failed.
    """
    base_urls = dict(base_urls or {})
    chosen = list(sources) if sources is not None else list(PULL_SOURCES)
    results: dict[str, list[PullResult]] = {}
    for name in chosen:
        spec = PULL_SOURCES.get(name)
        base_url = base_urls.get(name)
        if sources is None and spec is not None and spec.resolve_base_url(base_url) is None:
            results[name] = []
            continue
        results[name] = pull_source(name, dest_dir, months, base_url=base_url, **kw)
    return results


def _what(spec: PullSource, period: date | None, name: str | None = None) -> str:
    """How a message names a file: ``RTT April 2024``, ``RTT April 2024 (revised)``, ``ODS etr.zip``."""
    if period is None:
        return f"{spec.label} {name}" if name else spec.label
    what = f"{spec.label} {calendar.month_name[period.month]} {period.year}"
    if name and "-revised" in name:
        return what + " (revised)"
    publication = oap_layout.parse_file_name(name) if name else None
    if publication is not None:
        edition = {"Provisional": " (provisional)", "Final": " (final)", "Adhoc": " (ad hoc)"}.get(
            publication.status, ""
        )
        return what + edition + (f" (v{publication.version})" if publication.version > 1 else "")
    return what


def _pull_file(
    http: requests.Session,
    spec: PullSource,
    period: date | None,
    name: str,
    base_url: str,
    folder: Path,
    dest_dir: Path,
    state: dict[str, dict],
    timeouts: tuple[float, float],
    retries: int,
    backoff: float,
) -> tuple[PullResult, bool]:
    """Pull one file; also say whether the server could not be reached at all (connection failure, timeout)."""
    url = spec.url(base_url, name)
    target = folder / name
    what = _what(spec, period, name)
    remembered = state.get(url, {})
    headers: dict[str, str] = {}
    # Validators are only worth sending while the file they describe is still there.
    if target.exists():
        if remembered.get("etag"):
            headers["If-None-Match"] = remembered["etag"]
        if remembered.get("last_modified"):
            headers["If-Modified-Since"] = remembered["last_modified"]

    def result(status: str, message: str) -> PullResult:
        return PullResult(spec.name, url, target, status, f"{what}: {message}")

    # urllib3 retries failures before the body starts; a body that stops arriving is asked for again here.
    for attempt in range(retries + 1):
        try:
            response = http.get(url, headers=headers, timeout=timeouts, stream=True, allow_redirects=True)
        except requests.RequestException as error:
            return result("failed", f"{_describe_error(error, timeouts, retries)} ({url}): not saved"), True
        try:
            outcome = _handle_response(response, target, headers, retries, timeouts)
        except _Failed as failure:
            if failure.transient and attempt < retries:
                time.sleep(backoff * (2**attempt))
                continue
            tries = f" (tried {attempt + 1} times)" if failure.transient and attempt else ""
            return result("failed", f"{failure}{tries} ({url}): not saved"), False
        finally:
            response.close()
        break
    if isinstance(outcome, tuple):
        status, message = outcome
        if status == "not_modified":
            remembered["checked_at"] = _now()
            state[url] = remembered
        return result(status, message.replace("{url}", url)), False
    size, sha256 = outcome.size, outcome.sha256
    previous = remembered.get("sha256")
    state[url] = {
        "etag": response.headers.get("ETag"),
        "last_modified": response.headers.get("Last-Modified"),
        "path": str(target.relative_to(dest_dir)),
        "sha256": sha256,
        "bytes": size,
        "downloaded_at": _now(),
    }
    if previous is None:
        note = ""
    elif previous == sha256:
        note = " (republished with the same content)"
    else:
        note = " (republished: replaces the earlier download)"
    return result("downloaded", f"downloaded {_human_size(size)} to {target}{note}"), False


@dataclass(frozen=True)
class _Saved:
    size: int
    sha256: str


def _handle_response(
    response: requests.Response,
    target: Path,
    sent: dict[str, str],
    retries: int,
    timeouts: tuple[float, float],
) -> tuple[str, str] | _Saved:
    """Turn one response into ``(status, message)`` or a checked file saved under ``target``."""
    if response.status_code == 304:
        if not target.exists():
            raise _Failed(f"the server answered 'not modified' but {target} is missing")
        if "If-None-Match" in sent:
            validator = f"ETag {sent['If-None-Match']}"
        else:
            validator = f"Last-Modified {sent.get('If-Modified-Since', '?')}"
        return "not_modified", f"unchanged since the last download ({validator}); {target.name} left as it was"
    if response.status_code in (404, 410):
        return "not_published", f"not published yet (HTTP {response.status_code} at {{url}})"
    if response.status_code != 200:
        after = f" after {_attempts(retries)}" if response.status_code in RETRY_STATUSES else ""
        reason = f" {response.reason}" if response.reason else ""
        raise _Failed(f"the server returned HTTP {response.status_code}{reason}{after}")
    size, sha256 = _save_checked(response, target, timeouts, retries)
    return _Saved(size, sha256)


def _save_checked(
    response: requests.Response, target: Path, timeouts: tuple[float, float], retries: int
) -> tuple[int, str]:
    """Stream the body to a temporary file beside ``target``, check it, then move it into place."""
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
                    message = _describe_error(error, timeouts, retries, during_body=True)
                raise _Failed(message, transient=True) from error
        if size == 0:
            raise _Failed("the server returned an empty file")
        if expected is not None and not encoded and expected.isdigit() and int(expected) != size:
            raise _Failed(f"truncated download: received {size} of the {expected} bytes announced", transient=True)
        if target.suffix.lower() == ".zip":
            _check_zip(temp)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return size, digest.hexdigest()


def _looks_like_html(head: bytes) -> bool:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return text.startswith((b"<!doctype", b"<html"))


def _check_zip(path: Path) -> None:
    """A downloaded zip must open, pass its CRC checks and hold exactly one CSV (as the loader expects)."""
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
