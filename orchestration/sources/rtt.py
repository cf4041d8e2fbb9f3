"""RTT waiting times: read a monthly "Full CSV data file", check its contract, load it into ``raw_rtt``.

Pure functions (the Dagster assets wrap them): ``discover_rtt_files`` → ``read_rtt_file`` → ``check_rtt_contract``
→ ``load_rtt_file`` or quarantine, and ``ingest_rtt_folder`` doing that loop so that one bad file never stops
the others. The layout itself lives in :mod:`orchestration.sources.rtt_layout`; the contract's rules live in
``expectations/rtt_full_extract.json``. Rules that compare rows with other rows (bands = Total, C_999 = detail,
Part_2A ≤ Part_2) are computed here as ``check_*`` columns that the suite expects to be 0, so the suite still
states every rule and GX validates the file once.
"""

from __future__ import annotations

import calendar
import difflib
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestration import contracts_sql, raw
from orchestration.contracts import ExpectationFailure, to_violations
from orchestration.raw import ContractError, ContractViolation, IngestResult, LoadOutcome
from orchestration.sources.rtt_layout import (
    BANDS_53,
    BANDS_105,
    HEADER_53,
    HEADER_105,
    ID_COLUMNS,
    LAYOUTS,
    LONG_BAND_LAYOUT_FROM,
    PARTS_WITH_TOTAL,
    RAW_BAND_COLUMNS,
    TOTAL_COLUMNS,
    TOTAL_TREATMENT_FUNCTION,
    layout_for,
    parse_period,
    raw_band_name,
)

log = logging.getLogger(__name__)

SOURCE = "rtt"
SCHEMA = "raw_rtt"
TABLE = "full_extract"
SUITE = "rtt_full_extract"


def raw_name(header: str) -> str:
    """A published column name → its raw-layer name (``Provider Org Code`` → ``provider_org_code``)."""
    return raw_band_name(header)


ID_RAW: tuple[str, ...] = tuple(raw_name(column) for column in ID_COLUMNS)
TOTAL_RAW: tuple[str, ...] = tuple(raw_name(column) for column in TOTAL_COLUMNS)
COUNT_RAW: tuple[str, ...] = RAW_BAND_COLUMNS + TOTAL_RAW

#: ``raw_rtt.full_extract``, in column order.
RAW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("period_month", "date"),
    ("source_file", "varchar"),
    ("source_row", "integer"),
    ("band_layout", "smallint"),
    *((column, "varchar") for column in ID_RAW),
    *((column, "bigint") for column in COUNT_RAW),
)

#: Derived columns the suite checks (see the module docstring); appended to the validated batch in this order.
CHECK_COLUMNS: tuple[str, ...] = (
    "check_unreadable_count_cells",
    "check_negative_count_cells",
    "check_period_month",
    "check_bands_minus_total",
    "check_total_all_minus_total_and_unknown",
    "check_part_2a_minus_part_2",
    "check_c999_minus_detail",
)

_PUBLISHED_IDS = frozenset(ID_COLUMNS)
_PUBLISHED_COUNTS = frozenset(BANDS_53 + BANDS_105 + TOTAL_COLUMNS)
_RAW_TO_PUBLISHED = {raw_name(column): column for column in HEADER_105 + HEADER_53}
_FILE_NAME = re.compile(r"^\d{8}-(RTT-[A-Za-z]+-\d{4})-full-extract(-revised)?$", re.IGNORECASE)
#: NHS England's own name for the zip on its RTT pages: month token (``Apr26``), size tag and a random suffix.
_PUBLISHED_NAME = re.compile(r"^Full-CSV-data-file-([A-Za-z]{3})([0-9]{2})\b", re.IGNORECASE)
_MONTH_ABBREVIATIONS = {calendar.month_abbr[number].lower(): number for number in range(1, 13)}
_REVISED = re.compile(r"(?:^|[-_ .])revised(?:$|[-_ .])", re.IGNORECASE)


@dataclass(frozen=True)
class RttFile:
    """A delivered RTT file, as far as can be told before checking its rows.

    ``period_month`` is the month in the published file name, or else the month most of its rows give.
    ``band_layout`` is 53 or 105: the header's layout if it is exactly one of them, else the month's.
    ``source_file`` names it in the raw layer and in violations (``x.zip/x.csv`` for a zipped file).
    """

    path: Path
    period_month: date
    is_revision: bool
    band_layout: int
    sha256: str
    source_file: str = ""
    file_bytes: int = 0

    def __post_init__(self) -> None:
        if not self.source_file:
            object.__setattr__(self, "source_file", Path(self.path).name)


# --------------------------------------------------------------------------------------------------------------
# Finding and reading files


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".zip", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def month_in_file_name(path: Path) -> date | None:
    """The month a file name states: ours (``20240430-RTT-April-2024-full-extract.csv`` → 2024-04-01) or NHS
    England's as published (``Full-CSV-data-file-Apr26-ZIP-3M-XYZ.zip`` → 2026-04-01)."""
    stem = _stem(Path(path))
    match = _FILE_NAME.match(stem)
    if match:
        try:
            return parse_period(match.group(1))
        except ValueError:
            return None
    published = _PUBLISHED_NAME.match(stem)
    if published:
        month = _MONTH_ABBREVIATIONS.get(published.group(1).lower())
        return date(2000 + int(published.group(2)), month, 1) if month else None
    return None


def is_revision_name(path: Path) -> bool:
    """Whether the file name marks a revised publication: ``…-full-extract-revised.csv``, or NHS England's
    ``Full-CSV-data-file-Apr26-ZIP-3M-revised-XYZ.zip`` (the word ``revised`` anywhere between separators)."""
    return bool(_REVISED.search(_stem(Path(path))))


def discover_rtt_files(folder: Path) -> list[Path]:
    """The ``.csv`` and ``.zip`` files directly in ``folder``, by month, each original before its ``-revised``.

    Files whose names do not state a month come last, by name (their month is read from their rows).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in (".csv", ".zip")
    ]
    return sorted(found, key=lambda path: (month_in_file_name(path) or date.max, is_revision_name(path), path.name))


@dataclass(eq=False)
class RttText:
    """A delivered file's cells as the text they are, in Arrow (never a pandas frame of the month).

    ``table`` has one ``large_string``/``string`` column per header position, named ``c0``, ``c1``, … (a mangled
    header may repeat a name), each cell's text (``""`` when blank), and ``line``: the line of the file each row
    is (the header is line 1). ``header`` is the file's header as written. DuckDB scans ``table`` in place.
    Small conveniences let a caller look at it like the frame it replaces: ``len``, ``columns``, ``index`` (the
    lines) and ``loc[line, column]``.
    """

    header: tuple[str, ...]
    table: pa.Table
    #: the counts as numbers (:func:`_parsed_table`), kept by the contract check for the load when the header
    #: is the layout's
    parsed: pa.Table | None = None

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def columns(self) -> list[str]:
        return list(self.header)

    @property
    def index(self) -> np.ndarray:
        return self.table.column("line").to_numpy()

    def position_of(self, column: str) -> int | None:
        """The first position of ``column`` in the header, or None."""
        try:
            return self.header.index(column)
        except ValueError:
            return None

    @property
    def loc(self) -> _TextLoc:
        return _TextLoc(self)


@dataclass(frozen=True)
class _TextLoc:
    text: RttText

    def __getitem__(self, key: tuple[int, str]) -> str:
        line, column = key
        position = self.text.position_of(column)
        lines = self.text.index
        row = int(np.searchsorted(lines, line))
        if position is None or row >= len(lines) or lines[row] != line:
            raise KeyError(key)
        return self.text.table.column(f"c{position}")[row].as_py()


def read_rtt_file(path: Path) -> tuple[RttFile, RttText]:
    """Read a delivered file as text: every cell a string, columns as in its header, rows by line number.

    Raises :class:`ContractError` when it is not a readable RTT CSV at all (empty, header only, HTML, corrupt
    zip, not UTF-8, ragged rows) or when its month cannot be told from its name or its rows.

    The file is parsed once, by pyarrow's CSV reader, into Arrow text that DuckDB scans without a copy for the
    contract and the load. (DuckDB's own CSV reader was tried: it sniffs a ragged file as one column instead of
    naming its short lines, reports a non-UTF-8 byte on the wrong line, and its casts accept ``' 5'``, ``'5.0'``,
    ``'1_000'`` and ``'0x10'`` as whole numbers: the precise errors the contract promises come from Arrow.)
    """
    path = Path(path)
    source_file, data = raw.open_source_file(path)
    header, table = raw.read_csv_as_arrow(source_file, data, text_type=pa.string())
    del data
    table = table.append_column("line", pa.array(np.arange(2, 2 + table.num_rows, dtype=np.int64)))
    text = RttText(tuple(header), table)
    month = month_in_file_name(path) or _month_from_rows(source_file, text)
    layout = 105 if text.header == HEADER_105 else 53 if text.header == HEADER_53 else layout_for(month)
    rtt_file = RttFile(
        path=path,
        period_month=month,
        is_revision=is_revision_name(path),
        band_layout=layout,
        sha256=raw.file_sha256(path),
        source_file=source_file,
        file_bytes=path.stat().st_size,
    )
    return rtt_file, text


def _period_column(text: RttText) -> pa.ChunkedArray | None:
    position = text.position_of("Period")
    return text.table.column(f"c{position}") if position is not None else None


def _parse_or_none(text: str) -> date | None:
    try:
        return parse_period(text)
    except ValueError:
        return None


def _month_from_rows(source_file: str, text: RttText) -> date:
    periods = _period_column(text)
    if periods is not None:
        counts: dict[date, int] = {}
        for entry in pc.value_counts(periods).to_pylist():  # distinct values in order of first appearance
            month = _parse_or_none(entry["values"])
            if month is not None:
                counts[month] = counts.get(month, 0) + entry["counts"]
        if counts:
            return max(counts, key=counts.__getitem__)  # the most rows; a tie goes to the first seen
    raise ContractError(
        source_file,
        "cannot tell which month the file holds: its name does not follow the published pattern "
        "(e.g. 20240430-RTT-April-2024-full-extract.csv) and no Period value parses",
        rule="period_parses",
    )


# --------------------------------------------------------------------------------------------------------------
# The contract, in DuckDB


def _yyyymm(month: date) -> int:
    return month.year * 100 + month.month


_WHOLE_NUMBER = r"^[-+]?[0-9]+$"


def _parse_counts(text: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    """A count column's text → int64 (null when blank or not a whole number) and a mask of its unreadable cells
    (None when there are none). Arrow's cast is strict (no spaces, no decimal point) and about twice as fast as
    DuckDB's TRY_CAST, which would also take ``' 5'``, ``'5.0'`` or ``'1_000'``."""
    blank = pc.equal(text, "")
    no_text = pa.scalar(None, text.type)
    try:  # the usual case, every cell a whole number or blank: one cast, no regex
        return pc.cast(pc.if_else(blank, no_text, text), pa.int64()), None
    except pa.ArrowInvalid:
        whole = pc.match_substring_regex(text, _WHOLE_NUMBER)
        try:
            values = pc.cast(pc.if_else(whole, text, no_text), pa.int64())
        except pa.ArrowInvalid:  # a whole number beyond int64 is not a count either
            values = pa.chunked_array(
                [pa.array([_whole_number(cell) for cell in chunk.to_pylist()], pa.int64()) for chunk in text.chunks]
            )
            whole = pc.is_valid(values)
        return values, pc.and_(pc.invert(whole), pc.invert(blank))


#: The key columns the cross-row rules group by, as the parsed table names them (``k:<what>``, raw text).
_KEYS = {
    "k:provider": "Provider Org Code",
    "k:commissioner": "Commissioner Org Code",
    "k:part": "RTT Part Type",
    "k:treatment": "Treatment Function Code",
}


_INT32 = (-(2**31), 2**31 - 1)


def _narrow(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """int64 counts as int32 when they fit (every published count does): half the memory of the parsed month;
    DuckDB widens them to the raw layer's BIGINT as it writes, and sums them as BIGINT."""
    bounds = pc.min_max(values).as_py()
    if bounds["min"] is None or (_INT32[0] <= bounds["min"] and bounds["max"] <= _INT32[1]):
        return pc.cast(values, pa.int32())
    return values


def _parsed_table(text: RttText, batch: _Batch, header_ok: bool, bands: Sequence[str]) -> pa.Table:
    """The file with its counts as numbers: ``line``, ``t:<i>`` the text of every other column (zero copy),
    ``v:<name>`` each count (null when blank or unreadable), per row ``unreadable`` and ``negative`` (how many
    of its counts are) and ``band_sum`` (its ``bands``, blank = 0), and (when the header is right) the ``k:`` key
    columns, the same text again under the names the joins use."""
    columns: dict[str, pa.ChunkedArray] = {"line": text.table.column("line")}
    if header_ok:
        for key, published in _KEYS.items():
            columns[key] = text.table.column(f"c{text.header.index(published)}")
    unreadable = None
    for position, (name, kind) in enumerate(zip(batch.names, batch.kinds, strict=True)):
        cells = text.table.column(f"c{position}")
        if kind != "count":
            columns[f"t:{position}"] = cells
            continue
        values, mask = _parse_counts(cells)
        columns[f"v:{name}"] = _narrow(values)
        if mask is not None:
            as_int = pc.cast(mask, pa.int32())
            unreadable = as_int if unreadable is None else pc.add(unreadable, as_int)
    columns["unreadable"] = unreadable if unreadable is not None else pa.array(np.zeros(len(text), np.int32))
    counts = [columns[f"v:{name}"] for name in batch.counts]
    zero = pa.scalar(0, pa.int64())
    negative = pa.array(np.zeros(len(text), np.int32))
    for values in counts:
        negative = pc.add(negative, pc.cast(pc.fill_null(pc.less(values, zero), False), pa.int32()))
    columns["negative"] = negative
    band_sum = pa.array(np.zeros(len(text), np.int64))
    for band in bands:
        band_sum = pc.add(band_sum, pc.fill_null(columns[f"v:{band}"], zero))
    columns["band_sum"] = band_sum
    return pa.table(columns)


def _whole_number(text: str) -> int | None:
    """The same reading of one cell in Python (for the few lines a message explains)."""
    if text and not text.lstrip("+-0123456789"):
        try:
            value = int(text)
        except ValueError:
            return None
        return value if -(2**63) <= value < 2**63 else None
    return None


@dataclass(frozen=True)
class _Batch:
    """How the file's columns appear in the validated relation: name, header position and kind."""

    names: tuple[str, ...]  # relation column per header position
    kinds: tuple[str, ...]  # "count", "id" or "other"
    unpublished_bands: tuple[str, ...]

    @property
    def counts(self) -> dict[str, int]:
        return {name: i for i, (name, kind) in enumerate(zip(self.names, self.kinds, strict=True)) if kind == "count"}


def _batch_layout(header: Sequence[str], month: date) -> _Batch:
    names, kinds = [], []
    for position, published in enumerate(header):
        known = published in _PUBLISHED_IDS or published in _PUBLISHED_COUNTS
        name = raw_name(published) if known else f"unpublished: {published}"
        if name in names:
            name = f"{published} (column {position + 1})"
        names.append(name)
        kinds.append("count" if published in _PUBLISHED_COUNTS else "id" if published in _PUBLISHED_IDS else "other")
    file_names = {raw_name(published) for published in header}
    expected_layout = {raw_name(column) for column in LAYOUTS[layout_for(month)]}
    unpublished = tuple(band for band in RAW_BAND_COLUMNS if band not in expected_layout and band not in file_names)
    return _Batch(tuple(names), tuple(kinds), unpublished)


def _batch_sql(batch: _Batch, header: Sequence[str], header_ok: bool, bands: Sequence[str]) -> tuple[list[str], str]:
    """``(prelude, select)``: the statements to run first, and the SELECT of the relation GX's suite is evaluated
    on: the file's columns under raw names (counts as numbers, blank = 0; ids with blank = NULL), then the
    ``check_*`` columns, one row per line (``source_row``).

    The rules that compare rows with other rows are joins: Part_2A rows with the Part_2 rows of their pathway,
    C_999 rows with the sums of their detail rows; the prelude computes each, once, for the rows it applies to,
    into a small temporary table (line, difference) that the SELECT joins back by line, so a view that the
    checks read several times never groups the month again. The row-wise sums over a hundred band columns
    (bands, negatives, unreadable cells) come ready from :func:`_parsed_table` (DuckDB spends 0.4 to 0.9 s a
    month on a 105-term row expression, Arrow 20 ms)."""
    q = contracts_sql.quote
    lit = contracts_sql.literal
    counts = batch.counts
    period = header.index("Period") if "Period" in header else None
    columns = ["p.line AS source_row"]
    for i, (name, kind) in enumerate(zip(batch.names, batch.kinds, strict=True)):
        if kind == "count":
            columns.append(f"coalesce(p.{q('v:' + name)}, 0)::DOUBLE AS {q(name)}")
        elif kind == "id":
            columns.append(f"nullif(p.{q('t:' + str(i))}, '') AS {q(name)}")
        else:
            columns.append(f"p.{q('t:' + str(i))} AS {q(name)}")
    zero = {column: "0.0::DOUBLE" for column in CHECK_COLUMNS}

    def v(name: str, alias: str = "p") -> str:
        return f"coalesce({alias}.{q('v:' + name)}, 0)"

    if counts:
        zero["check_unreadable_count_cells"] = "p.unreadable::DOUBLE"
        zero["check_negative_count_cells"] = "p.negative::DOUBLE"
    joins, prelude = "", []
    if period is not None:
        zero["check_period_month"] = "pm.yyyymm"
        joins += f" LEFT JOIN rtt_period_months pm ON pm.period = p.{q('t:' + str(period))}"
    if header_ok:
        with_total = 'p."k:part" IN (' + ", ".join(lit(x) for x in PARTS_WITH_TOTAL) + ")"
        zero["check_bands_minus_total"] = f"CASE WHEN {with_total} THEN p.band_sum - {v('total')} ELSE 0 END::DOUBLE"
        zero["check_total_all_minus_total_and_unknown"] = (
            f"CASE WHEN {with_total} THEN {v('total_all')} - {v('total')} - "
            f"{v('patients_with_unknown_clock_start_date')} ELSE 0 END::DOUBLE"
        )
        zero["check_part_2a_minus_part_2"] = "coalesce(x.part_2a_minus_part_2, 0)::DOUBLE"
        zero["check_c999_minus_detail"] = "coalesce(y.c999_minus_detail, 0)::DOUBLE"
        total = lit(TOTAL_TREATMENT_FUNCTION)
        sums = ", ".join(f"sum({v(column)}) AS {q('s:' + column)}" for column in (*bands, *TOTAL_RAW))
        difference = " + ".join(
            f"abs({v(column, 't')} - coalesce(d.{q('s:' + column)}, 0))" for column in (*bands, *TOTAL_RAW)
        )
        part_2 = (
            'SELECT "k:provider", "k:commissioner", "k:treatment", '
            f"sum({v('total_all')}) AS part_2_total_all FROM rtt_parsed p WHERE \"k:part\" = 'Part_2' GROUP BY ALL"
        )
        detail = (
            f'SELECT "k:provider", "k:commissioner", "k:part", {sums} FROM rtt_parsed p '
            f'WHERE "k:treatment" <> {total} GROUP BY ALL'
        )
        prelude += [
            f"CREATE TEMP TABLE rtt_part_2a AS SELECT a.line, {v('total_all', 'a')} - coalesce(b.part_2_total_all, 0)"
            f" AS part_2a_minus_part_2 FROM rtt_parsed a LEFT JOIN ({part_2}) b"
            ' ON b."k:provider" = a."k:provider" AND b."k:commissioner" = a."k:commissioner" AND '
            'b."k:treatment" = a."k:treatment" WHERE a."k:part" = \'Part_2A\'',
            f"CREATE TEMP TABLE rtt_c999 AS SELECT t.line, {difference} AS c999_minus_detail FROM rtt_parsed t"
            f' LEFT JOIN ({detail}) d ON d."k:provider" = t."k:provider" AND d."k:commissioner" = t."k:commissioner"'
            f' AND d."k:part" = t."k:part" WHERE t."k:treatment" = {total}',
        ]
        joins += " LEFT JOIN rtt_part_2a x ON x.line = p.line LEFT JOIN rtt_c999 y ON y.line = p.line"
    checks = [f"{zero[column]} AS {q(column)}" for column in CHECK_COLUMNS]
    return prelude, f"SELECT {', '.join(columns + checks)} FROM rtt_parsed p{joins}"


def check_rtt_contract(rtt_file: RttFile, text: RttText, *, today: date | None = None) -> list[ContractViolation]:
    """Check a read file against the RTT file contract (SPEC §8); ``[]`` means it may be loaded.

    The file's Arrow text is scanned by DuckDB in place: counts are parsed, the cross-row rules computed as
    ``check_*`` columns (joins with the grouped detail rows), and the GX suite ``expectations/rtt_full_extract.json``
    evaluated as SQL (:mod:`orchestration.contracts_sql`) in one aggregate query; only a rule that fails is
    queried again for its lines, and only those lines are read back to explain them. Each violation names the
    file, line, column (as the file names it) and rule. ``today`` fixes "the current month" for the rule that no
    period may be in the future (default: today).
    """
    month = rtt_file.period_month
    expected_header = LAYOUTS[layout_for(month)]
    header = list(text.header)
    header_ok = header == list(expected_header)
    batch = _batch_layout(header, month)
    bands = tuple(raw_name(column) for column in (BANDS_105 if "gt_104_weeks" in batch.counts else BANDS_53))
    published_raw = [raw_name(column) for column in expected_header]
    parameters = {
        "expected_columns": published_raw
        + [band for band in RAW_BAND_COLUMNS if band not in published_raw]
        + list(CHECK_COLUMNS),
        "file_month": [_yyyymm(month)],
        "latest_month": _yyyymm(today or date.today()),
    }
    con = duckdb.connect(":memory:")
    try:
        con.register("rtt_text", text.table)
        parsed = _parsed_table(text, batch, header_ok, bands if header_ok else ())
        con.register("rtt_parsed", parsed)
        text.parsed = parsed if header_ok else None
        periods = _period_column(text)
        if periods is not None:
            distinct = pc.unique(periods).to_pylist()
            as_number = [float(_yyyymm(m)) if (m := _parse_or_none(value)) else None for value in distinct]
            con.register(
                "rtt_period_months", pa.table({"period": distinct, "yyyymm": pa.array(as_number, pa.float64())})
            )
        prelude, select = _batch_sql(batch, header, header_ok, bands)
        for statement in prelude:
            con.execute(statement)
        con.execute(f"CREATE VIEW rtt_batch AS {select}")
        relation_columns = [*batch.names, *batch.unpublished_bands, *CHECK_COLUMNS]
        failures = contracts_sql.validate_relation(
            con, "rtt_batch", SUITE, parameters, line_column="source_row", columns=relation_columns
        )
        # A rule on a column the file lacks cannot run; the header rule already names the missing column.
        failures = [failure for failure in failures if not (failure.missing_columns and failure.error)]
        lines = _Lines(con, text, batch, bands, failures, header_ok)
    finally:
        con.close()
    labels = dict(_RAW_TO_PUBLISHED)
    labels.update(
        {
            "check_unreadable_count_cells": "counts",
            "check_negative_count_cells": "counts",
            "check_period_month": "Period",
            "check_bands_minus_total": "Total",
            "check_total_all_minus_total_and_unknown": "Total All",
            "check_part_2a_minus_part_2": "Total All",
            "check_c999_minus_detail": "Treatment Function Code",
        }
    )
    violations = to_violations(
        rtt_file.source_file,
        failures,
        column_labels=labels,
        explain=_explainers(rtt_file, lines),
        table_explain={
            "header_matches_layout": lambda _failure: header_violations(rtt_file.source_file, header, month)
        },
    )
    if not header_ok and not any(v.rule == "header_matches_layout" for v in violations):
        violations[:0] = header_violations(rtt_file.source_file, header, month)
    return violations


class _Lines:
    """The offending lines of a file's failures, read back from the file's text to explain them: their cells,
    their counts as the contract reads them, and, for the cross-row rules, the detail sums of their group and
    the Part_2 figure of their pathway (each queried once, for just the groups those lines are in)."""

    def __init__(self, con, text: RttText, batch: _Batch, bands, failures, header_ok: bool) -> None:
        self.bands = bands
        self.header = text.header
        self.counts = batch.counts
        wanted = sorted({int(row) for failure in failures for row in failure.rows})
        self.cells: dict[int, list[str]] = {}
        if wanted:
            con.register("rtt_wanted", pa.table({"line": pa.array(wanted, pa.int64())}))
            names = ", ".join(contracts_sql.quote(f"c{i}") for i in range(len(text.header)))
            for line, *cells in con.execute(
                f"SELECT t.line, {names} FROM rtt_text t JOIN rtt_wanted w USING (line)"
            ).fetchall():
                self.cells[line] = cells
        self.detail: dict[tuple[str, str, str], dict[str, int]] = {}
        self.part_2: dict[tuple[str, str, str], tuple[int, bool]] = {}
        rules = {failure.rule for failure in failures}
        if header_ok and wanted and rules & {"c999_equals_detail", "part_2a_within_part_2"}:
            q = contracts_sql.quote
            at = {
                name: q(f"t:{text.header.index(published)}")
                for name, published in (
                    ("provider", "Provider Org Code"),
                    ("commissioner", "Commissioner Org Code"),
                    ("part", "RTT Part Type"),
                    ("treatment", "Treatment Function Code"),
                )
            }

            def value(name: str) -> str:
                return f"coalesce({q('v:' + name)}, 0)"

            wanted_rows = "SELECT t.* FROM rtt_parsed t JOIN rtt_wanted w USING (line)"
            if "c999_equals_detail" in rules:
                sums = ", ".join(f"sum({value(column)})" for column in (*bands, *TOTAL_RAW))
                groups = f"SELECT DISTINCT {at['provider']}, {at['commissioner']}, {at['part']} FROM ({wanted_rows})"
                for provider, commissioner, part, *values in con.execute(
                    f"SELECT {at['provider']}, {at['commissioner']}, {at['part']}, {sums} FROM rtt_parsed "
                    f"WHERE {at['treatment']} <> {contracts_sql.literal(TOTAL_TREATMENT_FUNCTION)} AND "
                    f"({at['provider']}, {at['commissioner']}, {at['part']}) IN ({groups}) GROUP BY ALL"
                ).fetchall():
                    self.detail[(provider, commissioner, part)] = dict(
                        zip((*bands, *TOTAL_RAW), map(int, values), strict=True)
                    )
            if "part_2a_within_part_2" in rules:
                groups = (
                    f"SELECT DISTINCT {at['provider']}, {at['commissioner']}, {at['treatment']} FROM ({wanted_rows})"
                )
                for provider, commissioner, treatment, total, rows in con.execute(
                    f"SELECT {at['provider']}, {at['commissioner']}, {at['treatment']}, sum({value('total_all')}), "
                    f"count(*) FROM rtt_parsed WHERE {at['part']} = 'Part_2' AND "
                    f"({at['provider']}, {at['commissioner']}, {at['treatment']}) IN ({groups}) GROUP BY ALL"
                ).fetchall():
                    self.part_2[(provider, commissioner, treatment)] = (int(total), rows > 0)

    def cell(self, column: str, line: int) -> str:
        position = self.header.index(column) if column in self.header else None
        return "" if position is None else str(self.cells[line][position])

    def value(self, name: str, line: int) -> int:
        return _whole_number(self.cells[line][self.counts[name]]) or 0

    def unreadable(self, line: int) -> list[str]:
        cells = self.cells[line]
        return [name for name, i in self.counts.items() if cells[i] != "" and _whole_number(cells[i]) is None]

    def detail_sum(self, name: str, line: int) -> int:
        key = tuple(self.cell(c, line) for c in ("Provider Org Code", "Commissioner Org Code", "RTT Part Type"))
        return self.detail.get(key, {}).get(name, 0)

    def part_2_of(self, line: int) -> tuple[int, bool]:
        key = tuple(
            self.cell(c, line) for c in ("Provider Org Code", "Commissioner Org Code", "Treatment Function Code")
        )
        return self.part_2.get(key, (0, False))


def header_violations(source_file: str, header: Sequence[str], month: date) -> list[ContractViolation]:
    """Say exactly how a header differs from the published layout for ``month``: which columns are missing,
    renamed, unexpected or out of place, or that it is the other layout altogether."""
    layout = layout_for(month)
    expected = list(LAYOUTS[layout])
    header = list(header)
    rule = "header_matches_layout"

    def violation(column: str | None, message: str) -> ContractViolation:
        return ContractViolation(source_file, 1, column, rule, message)

    if header == expected:
        return []
    for other, other_header in LAYOUTS.items():
        if other != layout and header == list(other_header):
            return [
                violation(
                    other_header[-4],
                    (
                        f"the file has the {other}-band layout (bands up to '{other_header[-4]}') but {month:%B %Y} is "
                        f"published with {layout} bands ({'from' if layout == 105 else 'before'} "
                        f"{LONG_BAND_LAYOUT_FROM:%B %Y}): is the file for the month it says?"
                    ),
                )
            ]
    found: list[ContractViolation] = []
    duplicated = sorted({column for column in header if header.count(column) > 1})
    for column in duplicated:
        found.append(violation(column, f"column '{column}' appears {header.count(column)} times"))
    matcher = difflib.SequenceMatcher(a=expected, b=header, autojunk=False)
    missing: list[tuple[int, str]] = []
    unexpected: list[tuple[int, str]] = []
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "replace" and a1 - a0 == b1 - b0:
            for offset in range(a1 - a0):
                missing.append((a0 + offset, expected[a0 + offset]))
                unexpected.append((b0 + offset, header[b0 + offset]))
        elif tag in ("replace", "delete", "insert"):
            missing += [(i, expected[i]) for i in range(a0, a1)]
            unexpected += [(i, header[i]) for i in range(b0, b1)]
    moved = {name for _, name in missing} & {name for _, name in unexpected}
    for position, name in unexpected:
        if name in moved:
            found.append(
                violation(
                    name,
                    (
                        f"column '{name}' is column {position + 1} but the published layout has it at column "
                        f"{expected.index(name) + 1}: columns are out of order"
                    ),
                )
            )
    renames = {
        a: b
        for (a, name_a), (b, name_b) in zip(missing, unexpected, strict=False)
        if a == b and name_a not in moved and name_b not in moved
    }
    for position, name in missing:
        if name in moved:
            continue
        if position in renames:
            found.append(
                violation(
                    header[renames[position]],
                    (
                        f"column {position + 1} is named '{header[renames[position]]}' but should be '{name}' "
                        "(renamed column)"
                    ),
                )
            )
        else:
            found.append(violation(name, f"column '{name}' is missing (published at column {position + 1})"))
    for position, name in unexpected:
        if name not in moved and position not in renames.values() and name not in duplicated:
            found.append(violation(name, f"column '{name}' (column {position + 1}) is not in the published layout"))
    if not found:
        found.append(violation(None, f"the header does not match the published {layout}-band layout"))
    return found


def _explainers(rtt_file: RttFile, lines: _Lines) -> dict:
    """Row-specific messages for the rules whose GX failure alone would not say enough."""
    month = rtt_file.period_month
    cell = lines.cell

    def unreadable(_failure: ExpectationFailure, line: int, _value):
        return [
            (
                _RAW_TO_PUBLISHED.get(column, column),
                f"'{cell(_RAW_TO_PUBLISHED.get(column, column), line)}' is not a whole number "
                "(counts are whole numbers or blank)",
            )
            for column in lines.unreadable(line)
        ]

    def negative(_failure: ExpectationFailure, line: int, _value):
        return [
            (_RAW_TO_PUBLISHED.get(column, column), f"{value} is negative (a count of patients cannot be below 0)")
            for column in lines.counts
            if (value := lines.value(column, line)) < 0
        ]

    def other_month(_failure, line: int, _value):
        said = "the month in its file name" if month_in_file_name(rtt_file.path) else "the month of its other rows"
        return [("Period", f"Period '{cell('Period', line)}' is not {month:%B %Y}, {said}: a file holds one month")]

    def future(_failure, line: int, _value):
        return [("Period", f"Period '{cell('Period', line)}' is later than the current month")]

    def duplicate(failure: ExpectationFailure, line: int, value):
        others = [
            str(row) for row, other in zip(failure.rows, failure.values, strict=False) if other == value and row != line
        ]
        key = ", ".join(str(item) for item in (value or {}).values())
        also = f" (also on line {', '.join(others)})" if others else ""
        return [
            (
                "Provider Org Code, Commissioner Org Code, RTT Part Type, Treatment Function Code",
                f"duplicate key {key}{also}",
            )
        ]

    def bands_vs_total(_failure, line: int, _value):
        total = lines.value("total", line)
        band_sum = sum(lines.value(band, line) for band in lines.bands)
        return [("Total", f"{cell('RTT Part Type', line)} week bands add up to {band_sum} but Total is {total}")]

    def total_all(_failure, line: int, _value):
        t, u = lines.value("total", line), lines.value("patients_with_unknown_clock_start_date", line)
        return [
            (
                "Total All",
                f"Total All is {lines.value('total_all', line)} but Total {t} + unknown clock start {u} = {t + u}",
            )
        ]

    def part_2a(_failure, line: int, _value):
        part_2, found = lines.part_2_of(line)
        which = "" if found else " (there is no Part_2 row)"
        codes = ", ".join(
            cell(column, line) or "(blank)"
            for column in ("Provider Org Code", "Commissioner Org Code", "Treatment Function Code")
        )
        return [
            (
                "Total All",
                f"Part_2A Total All {lines.value('total_all', line)} exceeds Part_2 Total All "
                f"{part_2}{which} for the same provider, commissioner and treatment function ({codes})",
            )
        ]

    def c999(_failure, line: int, _value):
        part = cell("RTT Part Type", line)
        provider = cell("Provider Org Code", line) or "(blank)"
        commissioner = cell("Commissioner Org Code", line) or "(blank)"
        out = []
        for column in lines.bands + TOTAL_RAW:
            value, detail = lines.value(column, line), lines.detail_sum(column, line)
            if value != detail:
                message = (
                    f"C_999 {part} row has {value} but the detail rows for provider {provider} and commissioner "
                    f"{commissioner} add up to {detail}"
                )
                out.append((_RAW_TO_PUBLISHED[column], message))
        return out

    return {
        "count_is_whole_number": unreadable,
        "count_not_negative": negative,
        "single_month": other_month,
        "period_not_in_future": future,
        "unique_key": duplicate,
        "bands_sum_to_total": bands_vs_total,
        "total_all_is_total_plus_unknown": total_all,
        "part_2a_within_part_2": part_2a,
        "c999_equals_detail": c999,
    }


# --------------------------------------------------------------------------------------------------------------
# Loading


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw_rtt.full_extract`` and ``raw_rtt.file_loads`` if they are missing."""
    raw.ensure_file_loads(con, SCHEMA)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in RAW_COLUMNS)
    con.execute(f"create table if not exists {SCHEMA}.{TABLE} (\n    {columns}\n)")


def _incoming(con: duckdb.DuckDBPyConnection, rtt_file: RttFile, text: RttText) -> tuple[str, str, list]:
    """Register the file's Arrow text with DuckDB; return (view name, a SELECT of raw-layer rows, its parameters).

    The SELECT types the text in DuckDB (blank → NULL, counts → BIGINT with a strict cast: the contract has
    passed, so anything else is an error, never a silent NULL) and names every raw column, so that columns the
    layout does not publish come out NULL. No pandas frame of the month is made.
    """
    header = LAYOUTS.get(rtt_file.band_layout)
    if header is None or tuple(text.header) != header:
        raise ValueError(
            f"{rtt_file.source_file}: the header is not the {rtt_file.band_layout}-band layout; "
            "check the contract before loading"
        )
    name = f"incoming_rtt_{uuid.uuid4().hex}"
    typed = {"source_row": "cast(line as integer)"}
    if text.parsed is not None:  # the contract's own parse: counts already int64 (blank = NULL), nothing to cast
        con.register(name, text.parsed)
        for position, column in enumerate(header):
            raw_column = raw_name(column)
            typed[raw_column] = f"nullif(\"t:{position}\", '')" if column in _PUBLISHED_IDS else f'"v:{raw_column}"'
    else:
        con.register(name, text.table)
        for position, column in enumerate(header):
            cell = f"nullif(c{position}, '')"
            typed[raw_name(column)] = cell if column in _PUBLISHED_IDS else f"cast({cell} as bigint)"
    constants = {
        "period_month": "cast(? as date)",
        "source_file": "cast(? as varchar)",
        "band_layout": "cast(? as smallint)",
    }
    selects = [
        f"{constants[column]} as {column}"
        if column in constants
        else f"{typed[column]} as {column}"
        if column in typed
        else f"cast(null as {kind}) as {column}"
        for column, kind in RAW_COLUMNS
    ]
    sql = "select " + ", ".join(selects) + f" from {name}"
    return name, sql, [rtt_file.period_month, rtt_file.source_file, rtt_file.band_layout]


def load_rtt_file(con: duckdb.DuckDBPyConnection, rtt_file: RttFile, frame: RttText) -> LoadOutcome:
    """Load a file that passed its contract into ``raw_rtt.full_extract``, idempotently (SPEC §2).

    The same bytes already current → ``unchanged``; bytes since replaced (an original next to its revision) →
    ``superseded``; first file for its month → ``loaded``; a ``-revised`` file → ``replaced`` (the month's rows
    swapped in one transaction). A file that is not named ``-revised`` for a month already loaded with different
    figures is ``rejected`` and nothing changes; with the same figures (e.g. the zip of a loaded CSV) it is
    ``unchanged``.
    """
    ensure_raw_tables(con)
    month = rtt_file.period_month

    def outcome(
        action: str, rows: int, message: str = "", violations: tuple[ContractViolation, ...] = ()
    ) -> LoadOutcome:
        return LoadOutcome(action, rtt_file.source_file, month, rows, rtt_file.sha256, violations, message)

    plan = raw.plan_load(con, SCHEMA, month, rtt_file.sha256, rtt_file.is_revision)
    if plan.action in ("unchanged", "superseded"):
        return outcome(plan.action, len(frame), plan.message)
    view, select_sql, params = _incoming(con, rtt_file, frame)
    try:
        if plan.action == "conflict":
            figures = ID_RAW + COUNT_RAW
            if raw.same_rows(con, f"{SCHEMA}.{TABLE}", month, select_sql, params, figures):
                return outcome("unchanged", len(frame), f"same figures as {plan.current.source_file}")
            violation = ContractViolation(
                rtt_file.source_file,
                None,
                None,
                "revision_named_revised",
                f"period already loaded from {plan.current.source_file} with different figures; "
                "a re-publication must be named -revised",
            )
            return outcome("rejected", len(frame), violation.message, (violation,))
        audit = raw.AuditEntry(rtt_file.source_file, month, rtt_file.sha256, rtt_file.file_bytes, rtt_file.is_revision)
        rows = raw.write_partition(con, SCHEMA, TABLE, select_sql, params, audit, action=plan.action)
        return outcome(plan.action, rows, plan.message)
    finally:
        con.unregister(view)


# --------------------------------------------------------------------------------------------------------------
# The loop


def months_in_folder(folder: Path) -> list[date]:
    """The months the RTT files in ``folder`` hold (from their names, else from their rows), oldest first."""
    months = set()
    for path in discover_rtt_files(folder):
        month = month_in_file_name(path)
        if month is None:
            try:
                month = read_rtt_file(path)[0].period_month
            except ContractError:
                continue
        months.add(month)
    return sorted(months)


def ingest_rtt_folder(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    quarantine_dir: Path,
    *,
    move_rejected: bool,
    months: tuple[date, date] | None = None,
) -> list[IngestResult]:
    """Read, check and load every RTT file in ``folder``; quarantine the ones that fail.

    Files already loaded (by SHA-256) are recognised before they are read, so a monthly run costs the new files
    only. A file that fails never stops the others. ``move_rejected`` moves rejected files out of the folder
    (a landing folder); otherwise they are copied (bundled samples stay where they are). ``months`` limits the
    run to files for months in ``[start, end)`` (a Dagster partition window).
    """
    ensure_raw_tables(con)
    return raw.ingest_files(
        con,
        discover_rtt_files(folder),
        schema=SCHEMA,
        source=SOURCE,
        read=read_rtt_file,
        check=check_rtt_contract,
        load=load_rtt_file,
        month_in_name=month_in_file_name,
        quarantine_dir=Path(quarantine_dir),
        move=move_rejected,
        window=months,
    )


# --------------------------------------------------------------------------------------------------------------
# Re-checking what is loaded (the blocking asset check)


def frame_from_raw(con: duckdb.DuckDBPyConnection, period_month: date) -> tuple[RttFile, RttText] | None:
    """The current load of ``period_month`` rebuilt as the file it came from: published header, text cells,
    by its line numbers (Arrow, as :func:`read_rtt_file` gives). ``None`` when nothing is loaded for the month."""
    ensure_raw_tables(con)
    load = raw.current_load(con, SCHEMA, period_month)
    if load is None:
        return None
    layout = con.execute(
        f"select any_value(band_layout) from {SCHEMA}.{TABLE} where period_month = ?", [period_month]
    ).fetchone()[0] or layout_for(period_month)
    header = LAYOUTS[int(layout)]
    selects = [
        f"coalesce({raw_name(column)}, '') as c{i}"
        if column in _PUBLISHED_IDS
        else f"coalesce(cast({raw_name(column)} as varchar), '') as c{i}"
        for i, column in enumerate(header)
    ] + ["cast(source_row as bigint) as line"]
    table = con.execute(
        f"select {', '.join(selects)} from {SCHEMA}.{TABLE} where period_month = ? order by source_row",
        [period_month],
    ).fetch_arrow_table()
    rtt_file = RttFile(
        path=Path(load.source_file),
        period_month=period_month,
        is_revision=load.is_revision,
        band_layout=int(layout),
        sha256=load.sha256,
        source_file=load.source_file,
    )
    return rtt_file, RttText(tuple(header), table)


def check_loaded_months(
    con: duckdb.DuckDBPyConnection, *, run_id: str | None = None
) -> dict[date, list[ContractViolation]]:
    """Re-run the file contract on every current RTT month not yet checked in ``audit.contract_checks``.

    What the warehouse holds is checked, not what a file said, so a month loaded by other means or changed since
    is caught. Each month is checked once per load (keyed by its file's SHA-256) and the result recorded.
    Returns ``{month: violations}`` for the months checked now (``[]`` = passed).
    """
    from orchestration.audit import ensure_audit_schema

    ensure_raw_tables(con)
    ensure_audit_schema(con)
    pending = con.execute(
        f"""select l.period_month from {SCHEMA}.file_loads l
            where l.is_current and not exists (
                select 1 from audit.contract_checks c
                where c.source = ? and c.period_month = l.period_month and c.sha256 = l.sha256 and c.passed)
            order by l.period_month""",
        [SOURCE],
    ).fetchall()
    outcomes: dict[date, list[ContractViolation]] = {}
    for (month,) in pending:
        rebuilt = frame_from_raw(con, month)
        if rebuilt is None:
            continue
        rtt_file, frame = rebuilt
        violations = check_rtt_contract(rtt_file, frame)
        raw.forget_frame(frame)
        con.execute(
            "insert into audit.contract_checks values (?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                SOURCE,
                month,
                rtt_file.sha256,
                not raw.errors_of(violations),
                len(raw.errors_of(violations)),
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
        outcomes[month] = violations
    return outcomes
