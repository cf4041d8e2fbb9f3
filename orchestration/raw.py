"""The raw layer's shared machinery: reading delivered files, auditing loads, quarantining rejects.

Every monthly source (RTT, out-of-area placements, lengths of stay) arrives the same way: a CSV, sometimes zipped,
that must pass a file contract before anything from it enters the warehouse, and that is loaded idempotently as
one month's partition. What differs per source is the layout and the rules, which live in
``orchestration/sources/<source>.py`` and ``expectations/``; what is the same lives here, so that a loaded, replaced
or rejected file means the same thing for every source and the audit trail has one shape.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import ctypes.util
import gc
import io
import logging
import os
import shutil
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from orchestration import progress
from orchestration.hashing import file_sha256

log = logging.getLogger(__name__)

#: What a load attempt did. ``loaded``: first file for its month; ``replaced``: a revision replaced its month;
#: ``unchanged``: these figures are already current; ``superseded``: an older file whose month has since been
#: replaced; ``rejected``: the file broke its contract (or conflicts with what is loaded) and was quarantined.
#: ``known_rejected``: the same bytes were quarantined by an earlier run and are still in the sources folder (a
#: folder the warehouse does not own keeps its files): not read again.
ACTIONS: tuple[str, ...] = ("loaded", "replaced", "unchanged", "superseded", "rejected", "known_rejected")

#: A rule's severity (SPEC §8, README "Severity policy"): ``error`` quarantines the file, ``warn`` loads it and
#: flags the rows. Suites say ``"severity": "critical"`` or ``"warning"`` (GX's names) on each expectation.
SEVERITIES: tuple[str, ...] = ("error", "warn")

#: At most this many offending rows are listed per rule; the rest are counted, so a reason file stays readable.
MAX_ROWS_PER_RULE = 20

#: The first month the warehouse can hold (its first monthly partition): NHS England's RTT full extracts go back to
#: April 2010 in this layout family, and the other feeds start later. Nothing before it can reach the warehouse.
FIRST_MONTH = date(2010, 4, 1)


# --------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class ContractViolation:
    """One broken rule, located so that a person can open the file and find it.

    ``row`` is the line number in the CSV (the header is line 1); ``None`` when the rule concerns the whole file.
    ``column`` is the column as the file names it; ``None`` when the rule concerns a whole row or file.
    ``severity`` is the rule's (see :data:`SEVERITIES`): an ``error`` means the file is not what it claims to be
    and is quarantined; a ``warn`` is a row-level inconsistency inside a genuine publication, which is loaded,
    flagged and counted. ``count`` is how many rows the violation stands for (more than 1 only for the
    "… and N more rows" line that closes a long list).
    """

    file: str
    row: int | None
    column: str | None
    rule: str
    message: str
    severity: str = "error"
    count: int = 1

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}; expected one of {SEVERITIES}")

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        row = "-" if self.row is None else self.row
        column = "-" if self.column is None else self.column
        tag = " (warning)" if self.severity == "warn" else ""
        return f"file: {self.file}, row: {row}, column: {column}, rule: {self.rule}{tag}: {self.message}"


def errors_of(violations: Iterable[ContractViolation]) -> list[ContractViolation]:
    """The violations that stop a file (severity ``error``)."""
    return [violation for violation in violations if violation.is_error]


def warnings_of(violations: Iterable[ContractViolation]) -> list[ContractViolation]:
    """The row-level warnings of a file that is loaded all the same (severity ``warn``)."""
    return [violation for violation in violations if not violation.is_error]


class ContractError(Exception):
    """A file that cannot be read as its source's CSV at all (empty, HTML, corrupt zip, not UTF-8, …).

    Carries its violations so that the caller can quarantine the file with the same kind of reason file as a
    file that was read but broke its rules.
    """

    def __init__(
        self,
        file: str,
        message: str,
        *,
        rule: str = "readable_csv",
        row: int | None = None,
        violations: Sequence[ContractViolation] | None = None,
    ) -> None:
        self.file = file
        self.violations: tuple[ContractViolation, ...] = tuple(
            violations if violations else (ContractViolation(file, row, None, rule, message),)
        )
        super().__init__(f"{file}: {message}")


@dataclass(frozen=True)
class LoadOutcome:
    """What loading one file into the raw layer did (``action`` is one of :data:`ACTIONS`)."""

    action: str
    file: str
    period_month: date | None
    rows: int
    sha256: str
    violations: tuple[ContractViolation, ...] = ()
    message: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown load action {self.action!r}; expected one of {ACTIONS}")


@dataclass(frozen=True)
class IngestResult(LoadOutcome):
    """One file's way through read → contract → load, and where it went if it was rejected."""

    quarantined_to: Path | None = None

    @classmethod
    def from_outcome(cls, outcome: LoadOutcome, quarantined_to: Path | None = None) -> IngestResult:
        return cls(
            outcome.action,
            outcome.file,
            outcome.period_month,
            outcome.rows,
            outcome.sha256,
            outcome.violations,
            outcome.message,
            quarantined_to,
        )


# --------------------------------------------------------------------------------------------------------------
# Reading delivered files


def open_source_file(path: Path) -> tuple[str, bytes]:
    """The CSV bytes of a delivered ``.csv``, or of the single CSV inside a ``.zip``.

    Returns ``(source_file, data)`` where ``source_file`` names the file as the audit and violations do:
    ``name.csv``, or ``name.zip/member.csv`` for a zipped file. Raises :class:`ContractError` when the file
    cannot be opened as either.
    """
    path = Path(path)
    if path.suffix.lower() != ".zip":
        try:
            return path.name, path.read_bytes()
        except OSError as error:
            raise ContractError(path.name, f"cannot be read: {error.strerror or error}") from error
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                info
                for info in archive.infolist()
                if not info.is_dir()
                and info.filename.lower().endswith(".csv")
                and not info.filename.startswith("__MACOSX/")
            ]
            if len(members) != 1:
                found = ", ".join(info.filename for info in members) or "none"
                raise ContractError(
                    path.name,
                    f"a zipped delivery must hold exactly one .csv file; found {found}",
                    rule="readable_zip",
                )
            member = members[0]
            data = archive.read(member)
    except ContractError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as error:
        raise ContractError(
            path.name,
            f"is not a readable zip archive (truncated or corrupt download?): {error}",
            rule="readable_zip",
        ) from error
    return f"{path.name}/{Path(member.filename).name}", data


def read_csv_as_strings(source_file: str, data: bytes) -> pd.DataFrame:
    """Parse CSV bytes with every cell kept as the text it is (blank cells as ``""``, never NaN).

    Keeping text lets a contract say *which* cell is not a number instead of failing on the first one. The
    frame's columns are the header exactly as written (a UTF-8 byte-order mark is dropped) and its index is the
    line number of each row in the file (the header is line 1), so every check can report where a problem is.

    Raises :class:`ContractError` for input that is not a CSV data file at all: empty, a header and no rows,
    an HTML page saved under a .csv name, bytes that are not UTF-8, or rows with the wrong number of fields.
    """
    header, table = read_csv_as_arrow(source_file, data)
    frame = table.to_pandas()
    frame.columns = header
    frame.index = pd.RangeIndex(2, 2 + len(frame), name="line")
    return frame


def read_csv_as_arrow(source_file: str, data: bytes, *, text_type=None) -> tuple[list[str], pa.Table]:
    """:func:`read_csv_as_strings` without pandas: ``(header, table)``, the table's columns named ``c0``,
    ``c1``, … by position (a header may repeat a name) holding each cell's text (``""`` when blank), its rows
    the file's lines 2, 3, … in order. ``text_type`` is the Arrow type of the cells (default ``large_string``,
    which pandas keeps without copying; ``pa.string()`` halves the offsets for a table DuckDB scans). Raises
    :class:`ContractError` exactly as :func:`read_csv_as_strings` does.
    """
    text_type = pa.large_string() if text_type is None else text_type
    if not data.strip():
        raise ContractError(source_file, "the file is empty", rule="not_empty")
    try:
        _check_utf8(data)
        text_head = data[:4096].decode("utf-8", errors="ignore")  # (a character cut at byte 4096 is dropped)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        message = (
            f"is not UTF-8 text: byte 0x{data[error.start]:02x} at line {line} cannot be decoded "
            "(was the file re-saved in another encoding, e.g. by Excel? use the file as published)"
        )
        violation = ContractViolation(source_file, line, _column_at(data, error.start), "utf8_encoding", message)
        raise ContractError(source_file, message, violations=[violation]) from error
    text_head = text_head.removeprefix("\ufeff")
    if text_head.lstrip()[:1] == "<":
        raise ContractError(
            source_file,
            "is an HTML or XML page saved under a .csv name, not the CSV data file (download the CSV again)",
            rule="not_html",
        )
    # Blank lines at the very end are harmless; anywhere else they would shift every later line number.
    # The body is data[start:end] + "\n", addressed in place (a month is 80 MB: no copy of it is made)
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    end = len(data)
    while end > start and data[end - 1] in b"\r\n":
        end -= 1

    def body() -> bytes:  # a copy, only to name the lines of a file that already failed
        return data[start:end] + b"\n"

    end_of_header = data.find(b"\n", start, end)
    end_of_header = end if end_of_header < 0 else end_of_header
    header = next(csv.reader([data[start:end_of_header].decode("utf-8").rstrip("\r")]))
    if end_of_header == end:
        raise ContractError(source_file, "has a header but no data rows", rule="has_rows", row=1)
    width = len(header)
    if data.find(b"\n\n", start, end) >= 0 or data.find(b"\n\r\n", start, end) >= 0:
        raise ContractError(
            source_file, "blank lines between rows", violations=_field_count_violations(source_file, body(), width)
        )

    names = [f"c{i}" for i in range(width)]
    invalid_rows = 0

    def count_invalid(_row: pa_csv.InvalidRow) -> str:
        nonlocal invalid_rows
        invalid_rows += 1
        return "skip"

    try:
        table = pa_csv.read_csv(
            pa.BufferReader(pa.py_buffer(data)[start:end]),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 24),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=count_invalid),
            convert_options=pa_csv.ConvertOptions(
                # large_string is what pandas keeps str columns as: the frame then shares Arrow's buffers
                column_types=dict.fromkeys(names, text_type),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ContractError(source_file, f"cannot be parsed as CSV: {error}", rule="parseable_csv") from error
    if invalid_rows:
        raise ContractError(
            source_file,
            "rows with the wrong number of fields",
            violations=_field_count_violations(source_file, body(), width),
        )
    if table.num_rows == 0:
        raise ContractError(source_file, "has a header but no data rows", rule="has_rows", row=1)
    return header, table


def once_per_frame(function):
    """Remember ``function(delivered, frame, *rest)`` while ``frame`` lives: a feed's derived checks are computed
    by its contract check (on the reading thread) and needed again by its load for the row flags; the second call
    gets the first result instead of parsing the month's cells again. Keyed by the frame's identity (a frame is
    never changed once read), the other arguments by equality. An entry goes when :func:`forget_frame` is called
    (:func:`ingest_file` does, once the file is loaded or rejected) or when its frame is freed; the second alone
    is not enough, because a result that holds columns of its frame keeps the frame alive through this cache: at
    twelve national months that kept every acute month's parsed cells, about 0.9 GB, for the rest of the run.
    Whatever callers forget, no more than :data:`MAX_REMEMBERED_FRAMES` frames are remembered at once."""
    import functools
    import threading
    import weakref

    results: dict[tuple, object] = {}
    lock = threading.Lock()
    _FRAME_CACHES.append((results, lock))

    @functools.wraps(function)
    def remembered(delivered, frame, *rest):
        key = (id(frame), delivered, rest)
        with lock:
            if key in results:
                return results[key]
        value = function(delivered, frame, *rest)
        dropped = []  # freed after the lock is released: freeing a frame runs its finalizer, which takes the lock
        with lock:
            frames = list(dict.fromkeys(existing[0] for existing in results))
            if id(frame) not in frames:
                weakref.finalize(frame, _forget, results, lock, id(frame))
                for stale in frames[: max(0, len(frames) + 1 - MAX_REMEMBERED_FRAMES)]:
                    dropped += _forget_unlocked(results, stale)  # a caller that never said it was done with it
            results[key] = value
        del dropped
        return value

    remembered.cache = results
    return remembered


_FRAME_CACHES: list[tuple[dict, object]] = []
MAX_REMEMBERED_FRAMES = 2  # the file being loaded and the one read ahead (ingest_files)


def forget_frame(frame) -> None:
    """Drop what every :func:`once_per_frame` function remembers of ``frame``: its file is done with."""
    for results, lock in _FRAME_CACHES:
        _forget(results, lock, id(frame))


def _forget(results: dict, lock, frame_id: int) -> None:
    with lock:
        dropped = _forget_unlocked(results, frame_id)
    del dropped  # outside the lock (see once_per_frame)


def _forget_unlocked(results: dict, frame_id: int) -> list:
    """Take ``frame_id``'s entries out of ``results`` and return their values, for the caller to free."""
    return [results.pop(key) for key in [key for key in results if key[0] == frame_id]]


def _check_utf8(data: bytes, step: int = 1 << 22) -> None:
    """Raise UnicodeDecodeError (offsets into ``data``) unless ``data`` is UTF-8, decoding a few MB at a time:
    a month of text never exists as one Python string."""
    start = 0
    while start < len(data):
        end = min(len(data), start + step)
        while start < end < len(data) and (data[end] & 0xC0) == 0x80:  # not inside a character
            end -= 1
        if end == start:
            end = min(len(data), start + step)
        try:
            data[start:end].decode("utf-8")
        except UnicodeDecodeError as error:
            raise UnicodeDecodeError(
                error.encoding, data, start + error.start, start + error.end, error.reason
            ) from None
        start = end


def _column_at(data: bytes, offset: int) -> str | None:
    """The header's name for the column holding byte ``offset`` (read as Latin-1, which maps every byte to one
    character, so offsets survive); ``None`` when that cannot be told (e.g. the header itself is broken)."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    line_end = data.find(b"\n", offset)
    line = data[line_start : line_end if line_end >= 0 else len(data)].decode("latin-1").rstrip("\r")
    header_end = data.find(b"\n")
    if line_start == 0 or header_end < 0:
        return None
    header = next(csv.reader([data[:header_end].decode("latin-1").removeprefix("\xef\xbb\xbf").rstrip("\r")]))
    position, field = offset - line_start, 0
    cursor = 0
    for index, cell in enumerate(next(csv.reader([line]))):
        # a quoted cell occupies its text plus two quotes (doubled quotes inside are rare enough to ignore)
        width = len(cell) + (2 if line[cursor : cursor + 1] == '"' else 0)
        if cursor <= position <= cursor + width:
            field = index
            break
        cursor += width + 1
    else:
        return None
    return header[field] if field < len(header) else None


def _field_count_violations(source_file: str, body: bytes, width: int) -> list[ContractViolation]:
    """Find the lines whose field count differs from the header's (slow, only run once a file has failed)."""
    violations: list[ContractViolation] = []
    found = 0
    lines = io.StringIO(body.decode("utf-8"), newline="")
    for line_number, row in enumerate(csv.reader(lines), start=1):
        if line_number == 1 or len(row) == width:
            continue
        found += 1
        if found <= MAX_ROWS_PER_RULE:
            what = "is blank" if not row else f"has {len(row)} fields where the header has {width}"
            violations.append(
                ContractViolation(
                    source_file,
                    line_number,
                    None,
                    "row_field_count",
                    f"the line {what} (truncated or mangled file?)",
                )
            )
    if found > MAX_ROWS_PER_RULE:
        violations.append(
            ContractViolation(
                source_file,
                None,
                None,
                "row_field_count",
                f"… and {found - MAX_ROWS_PER_RULE} more such lines",
            )
        )
    return violations or [
        ContractViolation(source_file, None, None, "row_field_count", "some rows have the wrong number of fields")
    ]


def release_memory() -> None:
    """Hand back to the operating system the memory that reading a feed's files used and has since freed.

    Reading a 75 MB RTT month takes about a gigabyte of Arrow, NumPy and pandas buffers; freed, most of it stays
    in the allocators' caches (Arrow's pool, glibc's heap and its per-thread arenas) and the process keeps
    holding it while dbt runs beside it in another process: at national scale that was the difference between
    2.6 and 4 GB at the build's peak (SPEC §12). Called after each feed's files are ingested."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    libc = ctypes.util.find_library("c")
    if libc:
        # glibc releases the free heap pages of every arena; elsewhere (musl, macOS) there is nothing to trim
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc).malloc_trim(0)


def files_read() -> int:
    """How many delivered files this process has read so far (a file recognised by its SHA-256 is not read)."""
    return _files_read


def release_memory_if_read(since: int) -> None:
    """:func:`release_memory`, when a file was read since ``files_read()`` returned ``since``: with none read
    there is nothing to hand back, and the full garbage collection over Dagster's, dbt's and GX's objects costs
    0.3 to 0.6 s a feed, six times a run."""
    if files_read() != since:
        release_memory()


# --------------------------------------------------------------------------------------------------------------
# The audit table: one per source schema, one row per load that changed or confirmed the warehouse


@dataclass(frozen=True)
class LoadRecord:
    """A row of ``<schema>.file_loads``."""

    load_id: int
    source_file: str
    period_month: date
    sha256: str
    is_revision: bool
    action: str
    is_current: bool
    row_count: int | None = None


@dataclass(frozen=True)
class LoadPlan:
    """What loading a file *would* do, decided from the audit table alone (before any data is touched).

    ``action`` is ``unchanged``, ``superseded``, ``loaded``, ``replaced`` or ``conflict`` (a file that is not a
    revision for a month already loaded from other bytes: the caller compares figures and rejects if they differ).
    """

    action: str
    current: LoadRecord | None
    message: str = ""


def ensure_file_loads(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    """Create ``<schema>.file_loads`` if missing: the audit trail of which file is behind each month."""
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"""
        create table if not exists {schema}.file_loads (
            load_id bigint not null,
            source_file varchar not null,
            period_month date not null,
            sha256 varchar not null,
            file_bytes bigint,
            row_count bigint,
            is_revision boolean not null,
            action varchar not null,
            is_current boolean not null,
            loaded_at timestamp not null
        )
    """)
    con.execute(f"""
        create table if not exists {schema}.file_hashes (
            path varchar not null,
            file_bytes bigint not null,
            mtime_ns bigint not null,
            inode bigint not null,
            sha256 varchar not null
        )
    """)


def known_file_sha256(con: duckdb.DuckDBPyConnection, schema: str, path: Path) -> str:
    """SHA-256 of a delivered file, read from ``<schema>.file_hashes`` when the file's path, size and modification
    time (nanoseconds) and inode are those it had when it was last hashed, else computed and remembered.

    A monthly run sees every file of the history again; hashing them all (five gigabytes for five years of national
    RTT files) would cost more than loading the new month. A file rewritten in place gets a new modification time,
    one replaced by rename a new inode, and is hashed again, so the identity used for idempotency is still the
    bytes.
    """
    path = Path(path)
    stat = path.stat()
    key = [str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino]
    found = con.execute(
        f"select sha256 from {schema}.file_hashes where path = ? and file_bytes = ? and mtime_ns = ? and inode = ?",
        key,
    ).fetchone()
    if found:
        return found[0]
    sha256 = file_sha256(path)
    con.execute(f"delete from {schema}.file_hashes where path = ?", key[:1])
    con.execute(f"insert into {schema}.file_hashes values (?, ?, ?, ?, ?)", [*key, sha256])
    return sha256


def _records(con: duckdb.DuckDBPyConnection, schema: str, where: str, params: list) -> list[LoadRecord]:
    rows = con.execute(
        f"select load_id, source_file, period_month, sha256, is_revision, action, is_current, row_count "
        f"from {schema}.file_loads where {where} order by load_id desc",
        params,
    ).fetchall()
    return [LoadRecord(*row) for row in rows]


def current_load(con: duckdb.DuckDBPyConnection, schema: str, period_month: date) -> LoadRecord | None:
    """The load whose rows are in the warehouse for ``period_month``, if any."""
    found = _records(con, schema, "period_month = ? and is_current", [period_month])
    return found[0] if found else None


def loads_of(con: duckdb.DuckDBPyConnection, schema: str, sha256: str) -> list[LoadRecord]:
    """Every recorded load of these exact bytes, newest first."""
    return _records(con, schema, "sha256 = ?", [sha256])


def plan_load(
    con: duckdb.DuckDBPyConnection, schema: str, period_month: date, sha256: str, is_revision: bool
) -> LoadPlan:
    """Apply the idempotency rules (SPEC §2) to a file about to be loaded.

    The same bytes already current → ``unchanged``. Bytes loaded before but since replaced, or an original seen
    after its month was loaded from a revision → ``superseded``. Nothing loaded for the month → ``loaded``. A
    revision → ``replaced``. Otherwise → ``conflict``.
    """
    current = current_load(con, schema, period_month)
    if current is not None and current.sha256 == sha256:
        return LoadPlan("unchanged", current, f"already loaded from {current.source_file}")
    if loads_of(con, schema, sha256):
        return LoadPlan(
            "superseded",
            current,
            f"{period_month:%B %Y} has since been replaced" + (f" by {current.source_file}" if current else ""),
        )
    if current is None:
        return LoadPlan("loaded", None)
    if is_revision:
        return LoadPlan("replaced", current, f"replaces {current.source_file}")
    if current.is_revision:
        return LoadPlan(
            "superseded", current, f"{period_month:%B %Y} is already loaded from the revision {current.source_file}"
        )
    return LoadPlan("conflict", current)


@dataclass(frozen=True)
class AuditEntry:
    """The facts about a file that its ``file_loads`` row records."""

    source_file: str
    period_month: date
    sha256: str
    file_bytes: int
    is_revision: bool
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))


def write_partition(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    select_sql: str,
    params: list,
    audit: AuditEntry,
    *,
    action: str,
) -> int:
    """Put one month's rows into ``<schema>.<table>`` and record the load, all in one transaction.

    ``select_sql`` (with ``params``) yields the rows, matched to the table's columns by name. For ``replaced``
    the month's earlier rows are deleted and its earlier load marked not current in the same transaction, so a
    reader never sees the month half-replaced and a failure leaves the previous figures in place. Returns the
    number of rows written.
    """
    if action not in ("loaded", "replaced"):
        raise ValueError(f"write_partition writes 'loaded' or 'replaced', not {action!r}")
    con.begin()
    try:
        con.execute(f"delete from {schema}.{table} where period_month = ?", [audit.period_month])
        con.execute(f"insert into {schema}.{table} by name {select_sql}", params)
        rows = con.execute(
            f"select count(*) from {schema}.{table} where period_month = ?", [audit.period_month]
        ).fetchone()[0]
        con.execute(
            f"update {schema}.file_loads set is_current = false where period_month = ? and is_current",
            [audit.period_month],
        )
        con.execute(
            f"""insert into {schema}.file_loads
                select coalesce(max(load_id), 0) + 1, ?, ?, ?, ?, ?, ?, ?, true, ? from {schema}.file_loads""",
            [
                audit.source_file,
                audit.period_month,
                audit.sha256,
                audit.file_bytes,
                rows,
                audit.is_revision,
                action,
                audit.loaded_at,
            ],
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return rows


def same_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    period_month: date,
    select_sql: str,
    params: list,
    columns: Iterable[str],
) -> bool:
    """Whether ``select_sql`` yields exactly the month's rows already in ``table`` (as a multiset, on ``columns``).

    Used to tell a harmless re-delivery (the same figures, zipped or re-saved) from a silent re-publication.
    """
    cols = ", ".join(columns)
    query = f"""
        with incoming as ({select_sql}),
             loaded as (select {cols} from {table} where period_month = ?)
        select
            (select count(*) from (select {cols} from incoming except all select * from loaded))
            + (select count(*) from (select * from loaded except all select {cols} from incoming))
    """
    return con.execute(query, [*params, period_month]).fetchone()[0] == 0


# --------------------------------------------------------------------------------------------------------------
# Quarantine

DEFAULT_WHAT_TO_DO = (
    "What to do: nothing from this file was loaded. Fix the problems above, or download the file again from "
    "its publisher, and put it back in the landing folder; a corrected publication of a month that is already "
    "loaded must be named '-revised'. Other files and months were not affected."
)


def reason_text(
    path: Path,
    source: str,
    violations: Sequence[ContractViolation],
    what_to_do: str = DEFAULT_WHAT_TO_DO,
    *,
    original: Path | None = None,
) -> str:
    """The human-readable reason file: one violation per line (what stopped the file, then any row warnings),
    where the original lies when it was copied rather than moved, then what to do."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    errors = errors_of(violations)
    lines = [f"Rejected {path.name} (source: {source}) at {stamp}: {len(errors)} problem(s).", ""]
    lines += [str(violation) for violation in errors]
    warnings = warnings_of(violations)
    if warnings:
        lines += ["", f"Also {len(warnings)} row warning(s), which alone would not have stopped the file:"]
        lines += [str(violation) for violation in warnings]
    if original is not None:
        lines += [
            "",
            f"The original is still at {original} (this folder is not the warehouse's to change, so the file was "
            "copied here, not moved). The warehouse remembers its SHA-256 and will not read those bytes again; a "
            "corrected file (other bytes) is read as usual.",
        ]
    lines += ["", what_to_do, ""]
    return "\n".join(lines)


def can_move(path: Path) -> bool:
    """Whether ``path`` can be taken out of its folder: the folder is writable (a read-only share is not)."""
    return os.access(Path(path).parent, os.W_OK | os.X_OK)


def quarantine_file(
    path: Path,
    quarantine_dir: Path,
    source: str,
    violations: Sequence[ContractViolation],
    move: bool,
    what_to_do: str = DEFAULT_WHAT_TO_DO,
) -> tuple[Path, bool]:
    """Put a rejected file in ``quarantine_dir/<source>/`` with ``<file name>.reason.txt`` beside it.

    ``move`` takes the file out of a landing folder the warehouse owns (so it is not tried again). Anywhere else
    (bundled samples, a folder given with ``--sources-dir``, a read-only share) the file is copied: the user's
    file is never lost, and the caller remembers its SHA-256 so it is not read again. A move that the folder
    refuses falls back to a copy. Returns the quarantined file's path and whether the original was moved.
    """
    path = Path(path)
    target_dir = Path(quarantine_dir) / source
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    moved = False
    if move and can_move(path):
        try:
            shutil.move(path, target)
            moved = True
        except OSError:  # e.g. a share that lets us list but not delete: copy instead
            log.warning("could not move %s out of its folder; copying it to quarantine instead", path)
    if not moved:
        shutil.copy2(path, target)
    reason = target_dir / f"{path.name}.reason.txt"
    reason.write_text(
        reason_text(path, source, violations, what_to_do, original=None if moved else path.resolve()),
        encoding="utf-8",
    )
    return target, moved


def ensure_quarantine_register(con: duckdb.DuckDBPyConnection) -> None:
    """``audit.quarantined_files``: the bytes (SHA-256) of every file quarantined, per feed, and where."""
    con.execute("create schema if not exists audit")
    con.execute(
        """
        create table if not exists audit.quarantined_files (
            source varchar,
            sha256 varchar,
            source_file varchar,
            period_month date,
            original_path varchar,
            quarantined_to varchar,
            moved boolean,
            quarantined_at timestamp
        )
        """
    )


def remember_quarantine(
    con: duckdb.DuckDBPyConnection,
    source: str,
    sha256: str,
    source_file: str,
    period_month: date | None,
    original: Path,
    target: Path,
    moved: bool,
) -> None:
    """Record a quarantined file's bytes, so a copy left in the sources folder is not read again."""
    ensure_quarantine_register(con)
    con.execute(
        "insert into audit.quarantined_files values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            source,
            sha256,
            source_file,
            period_month,
            str(Path(original).resolve()),
            str(target),
            moved,
            datetime.now(UTC).replace(tzinfo=None),
        ],
    )


def quarantined_before(con: duckdb.DuckDBPyConnection, source: str, sha256: str, name: str) -> dict | None:
    """The earlier quarantine of these bytes under this file name that left the original in place, if any (the
    latest). The name counts: the same bytes renamed (a re-publication named ``-revised``, say) are read again."""
    ensure_quarantine_register(con)
    row = con.execute(
        """select source_file, period_month, quarantined_to, quarantined_at from audit.quarantined_files
           where source = ? and sha256 = ? and not moved and regexp_extract(original_path, '[^/]*$') = ?
           order by quarantined_at desc limit 1""",
        [source, sha256, name],
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("source_file", "period_month", "quarantined_to", "quarantined_at"), row, strict=True))


# --------------------------------------------------------------------------------------------------------------
# One file through the gate: the same steps for every feed


def in_window(month: date | None, window: tuple[date, date] | None) -> bool:
    """True when ``month`` falls in the half-open ``[start, end)`` window (or there is no window or month)."""
    return window is None or month is None or window[0] <= month < window[1]


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    paths: Iterable[Path],
    *,
    schema: str,
    source: str,
    read,
    check,
    load,
    month_in_name,
    quarantine_dir: Path,
    move: bool,
    window: tuple[date, date] | None = None,
) -> list[IngestResult]:
    """Take every delivered file in ``paths`` through :func:`ingest_file`, one at a time and in order, so that
    one bad file never stops the others; files whose name puts them outside ``window`` are passed over unread.

    While a file is being loaded, the next one that is not already loaded is read and checked on a second
    thread (reading and checking touch no database, and Arrow, NumPy and DuckDB release the GIL), so a backfill
    of many months keeps both cores busy. At most two files are in memory at once, and files are still loaded
    one by one in the order given, so what each load does (loaded, replaced, unchanged, …) is decided exactly as
    it would be without the second thread.
    """
    pending = [path for path in paths if in_window(month_in_name(path), window)]
    results = []
    phase = progress.current()
    phase.set_total(len(pending))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"read-{source}") as reader:
        prepared: dict[int, Future] = {}

        def read_ahead(index: int) -> None:
            if (
                index < len(pending)
                and index not in prepared
                and not loads_of(con, schema, sha := known_file_sha256(con, schema, pending[index]))
                and quarantined_before(con, source, sha, Path(pending[index]).name) is None
            ):
                prepared[index] = reader.submit(read_and_check, pending[index], read, check, window)

        for index, path in enumerate(pending):
            read_ahead(index)
            read_ahead(index + 1)
            phase.busy_with(f"{path.name}: reading and checking")
            result = ingest_file(
                con,
                path,
                schema=schema,
                source=source,
                read=read,
                check=check,
                load=load,
                month_in_name=month_in_name,
                quarantine_dir=Path(quarantine_dir),
                move=move,
                window=window,
                prepared=prepared.pop(index, None),
            )
            if result is None:
                phase.advance()
                continue
            flagged = warnings_of(result.violations) if result.action in ("loaded", "replaced") else []
            phase.file_done(
                progress.FileLine(
                    source,
                    result.file,
                    result.period_month,
                    result.action,
                    result.rows,
                    result.message,
                    warnings=tuple(sorted({v.rule for v in flagged})),
                    flagged_rows=sum(v.count for v in flagged),
                )
            )
            log.info(
                "%s: %s (%s rows)%s",
                result.file,
                result.action,
                result.rows,
                f": {result.message}" * bool(result.message),
            )
            results.append(result)
    return results


@dataclass(frozen=True)
class ReadFile:
    """A file read and checked, not yet loaded: ``delivered`` and ``frame`` as the feed's ``read`` returned them
    (``None`` when the file could not be read: ``error`` says why), its ``violations`` ([] = it may be loaded),
    and ``outside_window`` when its rows put it outside the run's months."""

    delivered: object = None
    frame: pd.DataFrame | None = None
    violations: tuple[ContractViolation, ...] = ()
    error: ContractError | None = None
    outside_window: bool = False


#: How many delivered files this process has read (:func:`read_and_check`), for :func:`release_memory_if_read`.
_files_read = 0


def read_and_check(path: Path, read, check, window: tuple[date, date] | None = None) -> ReadFile:
    """Read one delivered file and check its contract, touching no database (safe on another thread)."""
    global _files_read
    _files_read += 1  # only a change matters: two threads racing on it still leave it changed
    try:
        delivered, frame = read(path)
    except ContractError as error:
        return ReadFile(error=error)
    if not in_window(delivered.period_month, window):
        return ReadFile(delivered, outside_window=True)
    return ReadFile(delivered, frame, tuple(check(delivered, frame)))


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    schema: str,
    source: str,
    read,
    check,
    load,
    month_in_name,
    quarantine_dir: Path,
    move: bool,
    window: tuple[date, date] | None = None,
    prepared: Future | None = None,
) -> IngestResult | None:
    """Take one delivered file through the gate: recognise bytes already loaded (by SHA-256) before reading
    them; read; check the contract; load; quarantine a file that fails. ``None`` when the file's month is outside
    ``window``. ``read(path) -> (file, frame)``, ``check(file, frame) -> violations`` and
    ``load(con, file, frame) -> LoadOutcome`` are the feed's own; ``file`` has ``source_file`` and ``period_month``.
    ``prepared`` is :func:`read_and_check` of this file already under way on another thread (see
    :func:`ingest_files`); it is used only if the file's bytes are still not loaded when its turn comes.
    """
    sha256 = known_file_sha256(con, schema, path)
    seen = loads_of(con, schema, sha256)
    if seen:
        record = seen[0]
        action = "unchanged" if record.is_current else "superseded"
        message = (
            f"already loaded as {record.source_file}"
            if record.is_current
            else f"{record.period_month:%B %Y} has since been replaced"
        )
        return IngestResult(
            action, record.source_file, record.period_month, record.row_count or 0, sha256, message=message
        )

    earlier = quarantined_before(con, source, sha256, Path(path).name)
    if earlier is not None:
        return IngestResult(
            "known_rejected",
            earlier["source_file"],
            earlier["period_month"],
            0,
            sha256,
            message=(
                f"quarantined on {earlier['quarantined_at']:%Y-%m-%d %H:%M} and unchanged since: not read again "
                f"(reason file: {earlier['quarantined_to']}.reason.txt)"
            ),
            quarantined_to=Path(earlier["quarantined_to"]),
        )

    def reject(file: str, month: date | None, rows: int, violations: Sequence[ContractViolation]) -> IngestResult:
        ordered = errors_of(violations) + warnings_of(violations)  # what stopped the file first
        target, moved = quarantine_file(path, quarantine_dir, source, ordered, move)
        remember_quarantine(con, source, sha256, file, month, path, target, moved)
        message = f"{len(errors_of(ordered))} problem(s); quarantined to {target}"
        return IngestResult("rejected", file, month, rows, sha256, tuple(ordered), message, target)

    checked = prepared.result() if prepared is not None else read_and_check(path, read, check, window)
    if checked.error is not None:
        return reject(checked.error.file, month_in_name(path), 0, checked.error.violations)
    if checked.outside_window:
        return None
    try:
        return _load_checked(con, path, checked, sha256, load, reject)
    finally:
        forget_frame(checked.frame)


def _load_checked(con, path: Path, checked: ReadFile, sha256: str, load, reject) -> IngestResult:
    """The rest of :func:`ingest_file`, for a file that was read and checked: reject it, or load it."""
    delivered, frame, violations = checked.delivered, checked.frame, list(checked.violations)
    if errors_of(violations):
        return reject(delivered.source_file, delivered.period_month, len(frame), violations)
    warnings = tuple(warnings_of(violations))  # a genuine publication with odd rows: loaded, rows flagged
    progress.current().busy_with(f"{path.name}: loading")
    try:
        outcome = load(con, delivered, frame)
    except (duckdb.Error, OSError) as error:  # the warehouse failed, not the file: leave it for the next run
        log.exception("loading %s failed", delivered.source_file)
        violation = ContractViolation(delivered.source_file, None, None, "load_error", f"loading failed: {error}")
        return IngestResult(
            "rejected",
            delivered.source_file,
            delivered.period_month,
            len(frame),
            sha256,
            (violation,),
            violation.message,
        )
    if outcome.action == "rejected":
        return reject(outcome.file, outcome.period_month, outcome.rows, (*outcome.violations, *warnings))
    if outcome.action in ("loaded", "replaced") and warnings:
        outcome = replace(outcome, violations=(*outcome.violations, *warnings))
    return IngestResult.from_outcome(outcome)
