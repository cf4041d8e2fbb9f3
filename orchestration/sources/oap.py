"""Out-of-area placements: read an MHSDS monthly statistics CSV (long layout), check its contract, load ``raw_oap``.

Same shape as :mod:`orchestration.sources.rtt`: ``discover_oap_files`` → ``read_oap_file`` → ``check_oap_contract``
→ ``load_oap_file`` or quarantine, and ``ingest_oap_folder`` doing that loop so that one bad file never stops the
others. The layout (SPEC §3.2) is defined here and imported by the sample generator; the rules live in
``expectations/oap_monthly_statistics.json``. Rules that need parsing or comparing cells (dates, the period a
START denotes, ``*`` or a number, whole counts) are computed here as ``check_*`` columns that the suite expects to be
0 or in a set, so the suite still states every rule and GX validates each file once.

A file holds one month: every row has the same REPORTING_PERIOD_END, the last day of that month. Month, rolling
quarter and rolling 12-month rows are told apart only by REPORTING_PERIOD_START (first of the month, two months
earlier, eleven months earlier); the raw layer derives ``period_type`` from it. ``*`` (a suppressed count below 5,
or a rate whose numerator is) is kept as published in ``measure_value_published`` with ``measure_value`` NULL and
``is_suppressed`` true: it is never zero.

Revisions: a file for a month already loaded with different figures replaces it when its STATUS is ``Final`` and
the loaded one is ``Provisional`` (the usual monthly refresh), or when its name carries ``-revised``; a
``Provisional`` file arriving after the month's ``Final`` is ``superseded``; anything else is rejected.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from orchestration import raw
from orchestration.contracts import ExpectationFailure, to_violations, validate_frame
from orchestration.raw import ContractError, ContractViolation, IngestResult, LoadOutcome

log = logging.getLogger(__name__)

SOURCE = "oap"
SCHEMA = "raw_oap"
TABLE = "monthly_statistics"
SUITE = "oap_monthly_statistics"

# --------------------------------------------------------------------------------------------------------------
# The published layout (SPEC §3.2), shared with orchestration.samples.oap

HEADER: tuple[str, ...] = (
    "REPORTING_PERIOD_START",
    "REPORTING_PERIOD_END",
    "STATUS",
    "BREAKDOWN",
    "PRIMARY_LEVEL",
    "PRIMARY_LEVEL_DESCRIPTION",
    "SECONDARY_LEVEL",
    "SECONDARY_LEVEL_DESCRIPTION",
    "MEASURE_ID",
    "MEASURE_NAME",
    "MEASURE_VALUE",
)
#: Raw-layer name of each published column (``REPORTING_PERIOD_START`` → ``reporting_period_start``).
RAW_NAMES: dict[str, str] = {column: column.lower() for column in HEADER}

#: Counts (whole numbers, suppressed below 5 and rounded to 5): OAP01–OAP04, and their adult-acute ``a`` variants.
COUNT_MEASURES: tuple[str, ...] = tuple(f"OAP{i:02d}{suffix}" for i in range(1, 5) for suffix in ("", "a"))
#: Every measure id the publication uses: the counts, OAP05–07 rates per million, OAP08–11 proportions.
KNOWN_MEASURES: tuple[str, ...] = tuple(f"OAP{i:02d}{suffix}" for i in range(1, 12) for suffix in ("", "a"))
STATUSES: tuple[str, ...] = ("Provisional", "Final")
SUPPRESSED = "*"
#: Unused breakdown levels are published as this text.
NOT_USED = "NONE"

#: Months from REPORTING_PERIOD_START's month to REPORTING_PERIOD_END's month → period type.
PERIOD_TYPES: dict[int, str] = {0: "month", 2: "rolling_quarter", 11: "rolling_12_months"}
#: The unique key of a row.
KEY_COLUMNS: tuple[str, ...] = (
    "REPORTING_PERIOD_START",
    "REPORTING_PERIOD_END",
    "BREAKDOWN",
    "PRIMARY_LEVEL",
    "SECONDARY_LEVEL",
    "MEASURE_ID",
)

#: Sample and landing file names: ``MHSDS_OAPs_2024-06_Final.csv``, ``MHSDS_OAPs_2026-09_Provisional.csv``,
#: ``MHSDS_OAPs_2024-06_Final-revised.csv`` (``.zip`` holding one such CSV also accepted). A file whose name does
#: not follow it is still read: its month comes from its rows.
_FILE_NAME = re.compile(r"^MHSDS_OAPs_(\d{4})-(\d{2})_(Final|Provisional)(-revised)?$", re.IGNORECASE)
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_NUMBER = r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"


def file_name(month: date, status: str = "Final", revised: bool = False) -> str:
    """The file name used for ``month``'s publication: ``MHSDS_OAPs_2024-06_Final.csv``."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
    return f"MHSDS_OAPs_{month:%Y-%m}_{status}{'-revised' if revised else ''}.csv"


def period_type(start: date, end: date) -> str | None:
    """``month``, ``rolling_quarter`` or ``rolling_12_months`` from a row's START and END (``None``: neither)."""
    if start.day != 1 or start > end:
        return None
    return PERIOD_TYPES.get((end.year - start.year) * 12 + end.month - start.month)


#: ``raw_oap.monthly_statistics``, in column order.
RAW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("period_month", "date"),
    ("source_file", "varchar"),
    ("source_row", "integer"),
    ("reporting_period_start", "date"),
    ("reporting_period_end", "date"),
    ("period_type", "varchar"),
    ("status", "varchar"),
    ("breakdown", "varchar"),
    ("primary_level", "varchar"),
    ("primary_level_description", "varchar"),
    ("secondary_level", "varchar"),
    ("secondary_level_description", "varchar"),
    ("measure_id", "varchar"),
    ("measure_name", "varchar"),
    ("measure_value_published", "varchar"),
    ("measure_value", "double"),
    ("is_suppressed", "boolean"),
)
#: Columns compared to tell a harmless re-delivery from a re-publication (everything the file says).
_FIGURES: tuple[str, ...] = tuple(
    name for name, _ in RAW_COLUMNS if name not in ("period_month", "source_file", "source_row")
)

#: Derived columns the suite checks; appended to the validated batch in this order.
CHECK_COLUMNS: tuple[str, ...] = (
    "check_blank_required_cells",
    "check_unparseable_dates",
    "check_period_type",
    "check_end_not_month_end",
    "check_end_month",
    "check_value_unreadable",
    "check_value_negative",
    "check_count_not_whole",
    "check_provider_code_format",
)
_REQUIRED = ("BREAKDOWN", "PRIMARY_LEVEL", "SECONDARY_LEVEL")
#: Breakdowns whose PRIMARY_LEVEL is a provider's ODS code.
PROVIDER_BREAKDOWNS: tuple[str, ...] = ("Sending Provider", "Receiving Provider")
#: An ODS organisation code, as providers are coded: 3 to 5 upper-case letters and digits.
_ODS_CODE = r"[A-Z0-9]{3,5}"


@dataclass(frozen=True)
class OapFile:
    """A delivered OAP file, as far as can be told before checking its rows.

    ``period_month`` is the month of its REPORTING_PERIOD_END (the one most rows give), else the month in its
    name. ``status`` is its STATUS (the one most rows give). ``source_file`` names it in the raw layer and in
    violations (``x.zip/x.csv`` for a zipped file).
    """

    path: Path
    period_month: date
    is_revision: bool
    status: str
    sha256: str
    source_file: str = ""
    file_bytes: int = 0

    def __post_init__(self) -> None:
        if not self.source_file:
            object.__setattr__(self, "source_file", Path(self.path).name)


# --------------------------------------------------------------------------------------------------------------
# Finding and reading files


def _stem(path: Path) -> str:
    name = Path(path).name
    for suffix in (".zip", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def month_in_file_name(path: Path) -> date | None:
    """The month a file name states (``MHSDS_OAPs_2024-06_Final.csv`` → 2024-06-01), else ``None``."""
    match = _FILE_NAME.match(_stem(path))
    if not match or not 1 <= int(match.group(2)) <= 12:
        return None
    return date(int(match.group(1)), int(match.group(2)), 1)


def status_in_file_name(path: Path) -> str | None:
    match = _FILE_NAME.match(_stem(path))
    return match.group(3).capitalize() if match else None


def is_revision_name(path: Path) -> bool:
    """Whether the file name marks a revised publication (``…-revised.csv``)."""
    return _stem(path).lower().endswith("-revised")


def discover_oap_files(folder: Path) -> list[Path]:
    """The ``.csv`` and ``.zip`` files directly in ``folder``, by month; within a month Provisional before Final
    before ``-revised``, so that each replaces the one before. Files whose names state no month come last."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in (".csv", ".zip")
    ]
    return sorted(
        found,
        key=lambda path: (
            month_in_file_name(path) or date.max,
            is_revision_name(path),
            status_in_file_name(path) != "Provisional",
            path.name,
        ),
    )


def _column(frame: pd.DataFrame, name: str) -> pd.Series | None:
    positions = [i for i, column in enumerate(frame.columns) if column == name]
    return frame.iloc[:, positions[0]] if positions else None


def _parse_dates(series: pd.Series) -> pd.Series:
    """Published ``YYYY-MM-DD`` cells → Timestamps (NaT where the cell is not a real date in that form)."""
    text = series.str.strip()
    shaped = text.str.match(_ISO_DATE)
    return pd.to_datetime(text.where(shaped), format="%Y-%m-%d", errors="coerce")


def _month_of(timestamp: pd.Timestamp) -> date:
    return date(timestamp.year, timestamp.month, 1)


def read_oap_file(path: Path) -> tuple[OapFile, pd.DataFrame]:
    """Read a delivered file as text: every cell a string, columns as in its header, indexed by line number.

    Raises :class:`ContractError` when it is not a readable CSV at all (empty, header only, HTML, corrupt zip, not
    UTF-8, ragged rows) or when its month can be told neither from its REPORTING_PERIOD_END nor from its name.
    """
    path = Path(path)
    source_file, data = raw.open_source_file(path)
    frame = raw.read_csv_as_strings(source_file, data)
    month = None
    ends = _column(frame, "REPORTING_PERIOD_END")
    if ends is not None:
        parsed = _parse_dates(ends).dropna()
        if len(parsed):
            month = _month_of(parsed.dt.to_period("M").mode().iloc[0].to_timestamp())
    month = month or month_in_file_name(path)
    if month is None:
        raise ContractError(
            source_file,
            "cannot tell which month the file holds: no REPORTING_PERIOD_END is a date like 2024-06-30 and its name "
            "does not follow MHSDS_OAPs_2024-06_Final.csv",
            rule="dates_parse",
        )
    statuses = _column(frame, "STATUS")
    status = ""
    if statuses is not None:
        counts = statuses.str.strip().value_counts()
        status = str(counts.index[0]) if len(counts) else ""
    oap_file = OapFile(
        path=path,
        period_month=month,
        is_revision=is_revision_name(path),
        status=status,
        sha256=raw.file_sha256(path),
        source_file=source_file,
        file_bytes=path.stat().st_size,
    )
    return oap_file, frame


# --------------------------------------------------------------------------------------------------------------
# The contract


def _yyyymm(month: date) -> int:
    return month.year * 100 + month.month


@dataclass
class _Checked:
    """What the derived checks computed, kept to explain an offending row afterwards."""

    frame: pd.DataFrame
    bad_dates: dict[str, np.ndarray]
    starts: pd.Series | None = None
    ends: pd.Series | None = None
    numbers: np.ndarray | None = None

    def position(self, line: int) -> int:
        return int(self.frame.index.get_loc(line))

    def cell(self, column: str, line: int) -> str:
        series = _column(self.frame, column)
        return "" if series is None else str(series.iloc[self.position(line)])


def _validation_batch(frame: pd.DataFrame, month: date) -> tuple[pd.DataFrame, _Checked]:
    """The frame GX validates: the file's columns under raw names in file order (text, blank as ``""``, never
    null: GX copies the batch for every expectation on a column with nulls), then the ``check_*`` columns.

    A check column holds a passing value where its rule does not apply or another rule already reports the cell
    (an unparseable date is reported once, by ``dates_parse``), so each problem is named once.
    """
    n = len(frame)
    columns: dict[str, object] = {}
    for position, published in enumerate(frame.columns):
        name = RAW_NAMES.get(published, f"unpublished: {published}")
        if name in columns:
            name = f"{published} (column {position + 1})"
        columns[name] = frame.iloc[:, position].to_numpy(dtype=object)
    checked = _Checked(frame=frame, bad_dates={})
    checks: dict[str, object] = {column: np.zeros(n) for column in CHECK_COLUMNS}
    checks["check_period_type"] = np.full(n, "month", dtype=object)
    checks["check_end_month"] = np.full(n, float(_yyyymm(month)))

    blank = np.zeros(n)
    for column in _REQUIRED:
        series = _column(frame, column)
        if series is not None:
            blank += (series.str.strip() == "").to_numpy()
    checks["check_blank_required_cells"] = blank

    starts_text, ends_text = _column(frame, "REPORTING_PERIOD_START"), _column(frame, "REPORTING_PERIOD_END")
    starts = _parse_dates(starts_text) if starts_text is not None else None
    ends = _parse_dates(ends_text) if ends_text is not None else None
    checked.starts, checked.ends = starts, ends
    unparseable = np.zeros(n)
    for column, parsed in (("REPORTING_PERIOD_START", starts), ("REPORTING_PERIOD_END", ends)):
        if parsed is not None:
            checked.bad_dates[column] = parsed.isna().to_numpy()
            unparseable += checked.bad_dates[column]
    checks["check_unparseable_dates"] = unparseable
    if ends is not None:
        ok = ends.notna().to_numpy()
        end_month = (ends.dt.year * 100 + ends.dt.month).to_numpy(dtype=np.float64)
        checks["check_end_month"] = np.where(ok, end_month, float(_yyyymm(month)))
        checks["check_end_not_month_end"] = np.where(ok, ~ends.dt.is_month_end.fillna(True).to_numpy(bool), 0.0)
        if starts is not None:
            both = ok & starts.notna().to_numpy()
            months_back = (ends.dt.year - starts.dt.year) * 12 + ends.dt.month - starts.dt.month
            kinds = months_back.map(PERIOD_TYPES).where((starts.dt.day == 1) & (starts <= ends))
            checks["check_period_type"] = np.where(both, kinds.fillna("not an allowed start").to_numpy(object), "month")

    breakdowns, levels = _column(frame, "BREAKDOWN"), _column(frame, "PRIMARY_LEVEL")
    if breakdowns is not None and levels is not None:
        code = levels.str.strip()
        is_provider = breakdowns.str.strip().isin(PROVIDER_BREAKDOWNS)
        # a blank code is reported once, by required_level_present
        malformed = is_provider & (code != "") & ~code.str.fullmatch(_ODS_CODE)
        checks["check_provider_code_format"] = malformed.to_numpy(dtype=np.float64)

    values = _column(frame, "MEASURE_VALUE")
    if values is not None:
        text = values.str.strip()
        number_like = text.str.match(_NUMBER).to_numpy(bool)
        numbers = pd.to_numeric(text.where(number_like), errors="coerce").to_numpy(dtype=np.float64)
        checked.numbers = numbers
        readable = (text == SUPPRESSED).to_numpy(bool) | number_like
        checks["check_value_unreadable"] = (~readable).astype(np.float64)
        checks["check_value_negative"] = np.where(number_like, numbers < 0, False).astype(np.float64)
        measures = _column(frame, "MEASURE_ID")
        if measures is not None:
            is_count = measures.str.strip().isin(COUNT_MEASURES).to_numpy(bool)
            whole = np.where(number_like, np.floor(np.nan_to_num(numbers)) == np.nan_to_num(numbers), True)
            checks["check_count_not_whole"] = (is_count & ~whole).astype(np.float64)

    batch = pd.DataFrame({**columns, **checks}, index=frame.index)
    return batch, checked


def check_oap_contract(oap_file: OapFile, frame: pd.DataFrame, *, today: date | None = None) -> list[ContractViolation]:
    """Check a read file against the OAP file contract (SPEC §8); ``[]`` means it may be loaded.

    Runs the GX suite ``expectations/oap_monthly_statistics.json`` once over the file, with the rules that need
    parsing as derived columns, and names each violation's file, line, column (as the file names it) and rule.
    ``today`` fixes "the current month" for the rule that no period may be in the future (default: today).
    """
    month = oap_file.period_month
    header = list(frame.columns)
    batch, checked = _validation_batch(frame, month)
    status = oap_file.status if oap_file.status in STATUSES else None
    parameters = {
        "expected_columns": [RAW_NAMES[column] for column in HEADER] + list(CHECK_COLUMNS),
        "file_month": [_yyyymm(month)],
        "latest_month": _yyyymm(today or date.today()),
        "file_status": [status] if status else list(STATUSES),
    }
    failures = validate_frame(batch, SUITE, parameters)
    # A rule on a column the file lacks cannot run; the header rule already names the missing column.
    failures = [failure for failure in failures if not (failure.missing_columns and failure.error)]
    labels = {raw_name: published for published, raw_name in RAW_NAMES.items()}
    labels.update(
        {
            "check_blank_required_cells": "BREAKDOWN, PRIMARY_LEVEL, SECONDARY_LEVEL",
            "check_unparseable_dates": "REPORTING_PERIOD_START, REPORTING_PERIOD_END",
            "check_period_type": "REPORTING_PERIOD_START",
            "check_end_not_month_end": "REPORTING_PERIOD_END",
            "check_end_month": "REPORTING_PERIOD_END",
            "check_value_unreadable": "MEASURE_VALUE",
            "check_value_negative": "MEASURE_VALUE",
            "check_count_not_whole": "MEASURE_VALUE",
            "check_provider_code_format": "PRIMARY_LEVEL",
        }
    )
    violations = to_violations(
        oap_file.source_file,
        failures,
        column_labels=labels,
        explain=_explainers(oap_file, checked),
        table_explain={"header_matches_layout": lambda _failure: header_violations(oap_file.source_file, header)},
    )
    if header != list(HEADER) and not any(v.rule == "header_matches_layout" for v in violations):
        violations[:0] = header_violations(oap_file.source_file, header)
    named = month_in_file_name(oap_file.path)
    if named is not None and named != month:
        violations.append(
            ContractViolation(
                oap_file.source_file,
                None,
                "REPORTING_PERIOD_END",
                "name_matches_period",
                f"the file name says {named:%B %Y} but its REPORTING_PERIOD_END is in {month:%B %Y}",
            )
        )
    return violations


def header_violations(source_file: str, header: Sequence[str]) -> list[ContractViolation]:
    """Say how a header differs from the published layout: missing, unexpected, renamed or misplaced columns."""
    header, expected = list(header), list(HEADER)
    if header == expected:
        return []
    rule = "header_matches_layout"
    found: list[ContractViolation] = []
    for column in sorted({column for column in header if header.count(column) > 1}):
        found.append(ContractViolation(source_file, 1, column, rule, f"column '{column}' appears more than once"))
    missing = [column for column in expected if column not in header]
    unexpected = [column for column in header if column not in expected]
    if len(missing) == len(unexpected):
        for want, got in zip(missing, unexpected, strict=True):
            found.append(
                ContractViolation(
                    source_file,
                    1,
                    got,
                    rule,
                    f"column {header.index(got) + 1} is named '{got}' but the published layout has "
                    f"'{want}' there (renamed column?)",
                )
            )
    else:
        for column in missing:
            found.append(
                ContractViolation(
                    source_file,
                    1,
                    column,
                    rule,
                    f"column '{column}' is missing (published at column {expected.index(column) + 1})",
                )
            )
        for column in unexpected:
            found.append(
                ContractViolation(
                    source_file,
                    1,
                    column,
                    rule,
                    f"column '{column}' (column {header.index(column) + 1}) is not in the published layout",
                )
            )
    if not found:
        shared = [column for column in header if column in expected]
        order = [column for column in expected if column in header]
        for got, want in zip(shared, order, strict=True):
            if got != want:
                found.append(
                    ContractViolation(
                        source_file,
                        1,
                        got,
                        rule,
                        f"column '{got}' is column {header.index(got) + 1} but the published layout has it at "
                        f"column {expected.index(got) + 1}: columns are out of order",
                    )
                )
                break
    if not found:
        found.append(ContractViolation(source_file, 1, None, rule, "the header does not match the published layout"))
    return found


def _explainers(oap_file: OapFile, checked: _Checked) -> dict:
    """Row-specific messages for the rules whose GX failure alone would not say enough."""
    month = oap_file.period_month

    def blank(_failure, line: int, _value):
        return [(column, f"{column} is blank") for column in _REQUIRED if checked.cell(column, line).strip() == ""]

    def bad_date(_failure, line: int, _value):
        position = checked.position(line)
        return [
            (column, f"'{checked.cell(column, line)}' is not a date in the published form YYYY-MM-DD")
            for column, mask in checked.bad_dates.items()
            if mask[position]
        ]

    def start(_failure, line: int, _value):
        position = checked.position(line)
        first, last = checked.starts.iloc[position], checked.ends.iloc[position]
        said = f"REPORTING_PERIOD_START {first:%Y-%m-%d}"
        if first > last:
            why = f"is after REPORTING_PERIOD_END {last:%Y-%m-%d}"
        else:
            why = (
                f"is not the first day of the month, or of the month two or eleven months before, of "
                f"REPORTING_PERIOD_END {last:%Y-%m-%d} (a month, rolling-quarter or rolling 12-month row)"
            )
        return [("REPORTING_PERIOD_START", f"{said} {why}")]

    def not_month_end(_failure, line: int, _value):
        return [("REPORTING_PERIOD_END", f"'{checked.cell('REPORTING_PERIOD_END', line)}' is not a month's last day")]

    def other_month(_failure, line: int, _value):
        return [
            (
                "REPORTING_PERIOD_END",
                f"'{checked.cell('REPORTING_PERIOD_END', line)}' is not in {month:%B %Y}, the month of the file's "
                "other rows: a file holds one month",
            )
        ]

    def future(_failure, line: int, _value):
        return [("REPORTING_PERIOD_END", f"'{checked.cell('REPORTING_PERIOD_END', line)}' is in a future month")]

    def unreadable(_failure, line: int, _value):
        found = checked.cell("MEASURE_VALUE", line)
        shown = "a blank cell" if not found.strip() else f"'{found}'"
        return [("MEASURE_VALUE", f"{shown} is neither '*' (suppressed) nor a number")]

    def negative(_failure, line: int, _value):
        return [("MEASURE_VALUE", f"{checked.cell('MEASURE_VALUE', line)} is negative (measures cannot be below 0)")]

    def not_whole(_failure, line: int, _value):
        value, measure = checked.cell("MEASURE_VALUE", line), checked.cell("MEASURE_ID", line)
        return [("MEASURE_VALUE", f"{value} is not a whole number ({measure} is a count)")]

    def measure(_failure, line: int, _value):
        found = checked.cell("MEASURE_ID", line)
        return [("MEASURE_ID", f"'{found}' is not a known measure id (OAP01–OAP11, or with the suffix a)")]

    def status(_failure, line: int, _value):
        found = checked.cell("STATUS", line)
        if found in STATUSES:
            return [("STATUS", f"'{found}' differs from the file's STATUS '{oap_file.status}': a file has one")]
        return [("STATUS", f"'{found}' is not a known STATUS ({' or '.join(STATUSES)})")]

    def duplicate(failure: ExpectationFailure, line: int, value):
        others = [
            str(row) for row, other in zip(failure.rows, failure.values, strict=False) if other == value and row != line
        ]
        key = ", ".join(str(item) for item in (value or {}).values())
        also = f" (also on line {', '.join(others)})" if others else ""
        return [(", ".join(KEY_COLUMNS), f"duplicate key {key}{also}")]

    def provider_code(_failure, line: int, _value):
        code, breakdown = checked.cell("PRIMARY_LEVEL", line), checked.cell("BREAKDOWN", line)
        return [
            (
                "PRIMARY_LEVEL",
                f"'{code}' is not an ODS provider code (3 to 5 upper-case letters and digits) in a {breakdown} row",
            )
        ]

    return {
        "required_level_present": blank,
        "dates_parse": bad_date,
        "known_period_start": start,
        "end_is_month_end": not_month_end,
        "single_month": other_month,
        "period_not_in_future": future,
        "value_is_star_or_number": unreadable,
        "value_not_negative": negative,
        "count_is_whole_number": not_whole,
        "known_measure_id": measure,
        "known_single_status": status,
        "unique_key": duplicate,
        "org_code_format": provider_code,
    }


# --------------------------------------------------------------------------------------------------------------
# Loading


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw_oap.monthly_statistics`` and ``raw_oap.file_loads`` if they are missing."""
    raw.ensure_file_loads(con, SCHEMA)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in RAW_COLUMNS)
    con.execute(f"create table if not exists {SCHEMA}.{TABLE} (\n    {columns}\n)")


def _incoming(con: duckdb.DuckDBPyConnection, oap_file: OapFile, frame: pd.DataFrame) -> tuple[str, str, list]:
    """Register the file's rows with DuckDB, typed; return (view name, a SELECT of raw-layer rows, its parameters)."""
    if list(frame.columns) != list(HEADER):
        raise ValueError(f"{oap_file.source_file}: the header is not the published layout; check the contract first")
    starts, ends = _parse_dates(frame["REPORTING_PERIOD_START"]), _parse_dates(frame["REPORTING_PERIOD_END"])
    if starts.isna().any() or ends.isna().any():
        raise ValueError(f"{oap_file.source_file}: dates do not parse; check the contract before loading")
    value_text = frame["MEASURE_VALUE"].str.strip()
    suppressed = (value_text == SUPPRESSED).to_numpy(bool)
    values = pd.to_numeric(value_text.where(~suppressed), errors="raise").to_numpy(dtype=np.float64)
    months_back = (ends.dt.year - starts.dt.year) * 12 + ends.dt.month - starts.dt.month
    arrays = {
        "source_row": pa.array(frame.index.to_numpy(), pa.int32()),
        "reporting_period_start": pa.array(starts.dt.date.to_numpy(), pa.date32()),
        "reporting_period_end": pa.array(ends.dt.date.to_numpy(), pa.date32()),
        "period_type": pa.array(months_back.map(PERIOD_TYPES).to_numpy(object), pa.string()),
        "measure_value_published": pa.array(frame["MEASURE_VALUE"].to_numpy(object), pa.string()),
        "measure_value": pa.array(values, pa.float64(), mask=suppressed),
        "is_suppressed": pa.array(suppressed, pa.bool_()),
    }
    for column in HEADER:
        name = RAW_NAMES[column]
        if name not in arrays:
            arrays[name] = pa.array(frame[column].to_numpy(object), pa.string())
    view = f"incoming_oap_{uuid.uuid4().hex}"
    con.register(view, pa.table(arrays))
    constants = {"period_month": "cast(? as date)", "source_file": "cast(? as varchar)"}
    selects = [f"{constants[name]} as {name}" if name in constants else name for name, _ in RAW_COLUMNS]
    return view, f"select {', '.join(selects)} from {view}", [oap_file.period_month, oap_file.source_file]


def _loaded_status(con: duckdb.DuckDBPyConnection, month: date) -> str | None:
    return con.execute(f"select mode(status) from {SCHEMA}.{TABLE} where period_month = ?", [month]).fetchone()[0]


def load_oap_file(con: duckdb.DuckDBPyConnection, oap_file: OapFile, frame: pd.DataFrame) -> LoadOutcome:
    """Load a file that passed its contract into ``raw_oap.monthly_statistics``, idempotently (SPEC §2).

    The same bytes already current → ``unchanged``; bytes since replaced → ``superseded``; first file for its
    month → ``loaded``; a ``-revised`` file, or a ``Final`` file for a month loaded from a ``Provisional`` one →
    ``replaced`` (the month's rows swapped in one transaction). A ``Provisional`` file for a month loaded from its
    ``Final`` → ``superseded``. Any other file for a month already loaded with different figures is ``rejected``
    and nothing changes; with the same figures (e.g. the zip of a loaded CSV) it is ``unchanged``.
    """
    ensure_raw_tables(con)
    month = oap_file.period_month

    def outcome(
        action: str, rows: int, message: str = "", violations: tuple[ContractViolation, ...] = ()
    ) -> LoadOutcome:
        return LoadOutcome(action, oap_file.source_file, month, rows, oap_file.sha256, violations, message)

    plan = raw.plan_load(con, SCHEMA, month, oap_file.sha256, oap_file.is_revision)
    if plan.action in ("unchanged", "superseded"):
        return outcome(plan.action, len(frame), plan.message)
    view, select_sql, params = _incoming(con, oap_file, frame)
    try:
        action, message = plan.action, plan.message
        if action == "conflict":
            if raw.same_rows(con, f"{SCHEMA}.{TABLE}", month, select_sql, params, _FIGURES):
                return outcome("unchanged", len(frame), f"same figures as {plan.current.source_file}")
            loaded = _loaded_status(con, month)
            if oap_file.status == "Final" and loaded == "Provisional":
                action, message = "replaced", f"Final figures replace the Provisional {plan.current.source_file}"
            elif oap_file.status == "Provisional" and loaded == "Final":
                return outcome(
                    "superseded", len(frame), f"{month:%B %Y} is already loaded from Final {plan.current.source_file}"
                )
            else:
                violation = ContractViolation(
                    oap_file.source_file,
                    None,
                    None,
                    "revision_named_revised",
                    f"period already loaded from {plan.current.source_file} ({loaded}) with different figures; "
                    "a re-publication must be Final replacing Provisional, or be named -revised",
                )
                return outcome("rejected", len(frame), violation.message, (violation,))
        audit = raw.AuditEntry(oap_file.source_file, month, oap_file.sha256, oap_file.file_bytes, oap_file.is_revision)
        rows = raw.write_partition(con, SCHEMA, TABLE, select_sql, params, audit, action=action)
        return outcome(action, rows, message)
    finally:
        con.unregister(view)


# --------------------------------------------------------------------------------------------------------------
# The loop


def months_in_folder(folder: Path) -> list[date]:
    """The months the OAP files in ``folder`` hold (from their names, else from their rows), oldest first."""
    months = set()
    for path in discover_oap_files(folder):
        month = month_in_file_name(path)
        if month is None:
            try:
                month = read_oap_file(path)[0].period_month
            except ContractError:
                continue
        months.add(month)
    return sorted(months)


def ingest_oap_folder(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    quarantine_dir: Path,
    *,
    move_rejected: bool,
    months: tuple[date, date] | None = None,
) -> list[IngestResult]:
    """Read, check and load every OAP file in ``folder``; quarantine the ones that fail.

    Files already loaded (by SHA-256) are recognised before they are read. A file that fails never stops the
    others. ``move_rejected`` moves rejected files out of the folder (a landing folder); otherwise they are copied
    (bundled samples stay where they are). ``months`` limits the run to months in ``[start, end)``.
    """
    ensure_raw_tables(con)
    return raw.ingest_files(
        con,
        discover_oap_files(folder),
        schema=SCHEMA,
        source=SOURCE,
        read=read_oap_file,
        check=check_oap_contract,
        load=load_oap_file,
        month_in_name=month_in_file_name,
        quarantine_dir=Path(quarantine_dir),
        move=move_rejected,
        window=months,
    )


# --------------------------------------------------------------------------------------------------------------
# Re-checking what is loaded (the blocking asset check)


def frame_from_raw(con: duckdb.DuckDBPyConnection, period_month: date) -> tuple[OapFile, pd.DataFrame] | None:
    """The current load of ``period_month`` rebuilt as the file it came from: published header, text cells,
    indexed by its line numbers. ``None`` when nothing is loaded for the month."""
    ensure_raw_tables(con)
    load = raw.current_load(con, SCHEMA, period_month)
    if load is None:
        return None
    selects = ["source_row"]
    for i, column in enumerate(HEADER):
        name = RAW_NAMES[column]
        if name in ("reporting_period_start", "reporting_period_end"):
            selects.append(f"coalesce(strftime({name}, '%Y-%m-%d'), '') as c{i}")
        elif name == "measure_value":
            selects.append(f"coalesce(measure_value_published, '') as c{i}")
        else:
            selects.append(f"coalesce({name}, '') as c{i}")
    table = con.execute(
        f"select {', '.join(selects)} from {SCHEMA}.{TABLE} where period_month = ? order by source_row",
        [period_month],
    ).fetch_arrow_table()
    frame = table.drop(["source_row"]).to_pandas()
    frame.columns = list(HEADER)
    frame.index = pd.Index(table.column("source_row").to_numpy(), name="line")
    status = frame["STATUS"].mode()
    oap_file = OapFile(
        path=Path(load.source_file),
        period_month=period_month,
        is_revision=load.is_revision,
        status=str(status.iloc[0]) if len(status) else "",
        sha256=load.sha256,
        source_file=load.source_file,
    )
    return oap_file, frame


def check_loaded_months(
    con: duckdb.DuckDBPyConnection, *, run_id: str | None = None
) -> dict[date, list[ContractViolation]]:
    """Re-run the file contract on every current OAP month not yet checked in ``audit.contract_checks``.

    What the warehouse holds is checked, not what a file said. Each month is checked once per load (keyed by its
    file's SHA-256) and the result recorded with source ``oap``. Returns ``{month: violations}`` for the months
    checked now (``[]`` = passed).
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
        oap_file, frame = rebuilt
        violations = check_oap_contract(oap_file, frame)
        con.execute(
            "insert into audit.contract_checks values (?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                SOURCE,
                month,
                oap_file.sha256,
                not raw.errors_of(violations),
                len(raw.errors_of(violations)),
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
        outcomes[month] = violations
    return outcomes
