"""Out-of-area placements: read NHS England's MHSDS "Out of Area Placements" data file, check it, load ``raw_oap``.

Same shape as :mod:`orchestration.sources.rtt`: ``discover_oap_files`` → ``read_oap_file`` → ``check_oap_contract``
→ ``load_oap_file`` or quarantine, and ``ingest_oap_folder`` running that loop so that one bad file never stops
the others. The layout, as the publisher's code and a real file of the same pipeline show it, is in
:mod:`orchestration.sources.oap_layout`; the rules live in ``expectations/oap_monthly_statistics.json``. Rules
that need parsing or comparing cells are computed here as ``check_*`` columns the suite expects to be 0 (or in a
set), so the suite still states every rule, with its severity, and GX validates each file once.

Two severities (SPEC §8), from the suite: a **critical** rule (``error``) means the file is not what it claims to
be (not this layout, periods or counts that do not parse, the name contradicting the rows, a month restated
without a re-publication marker …): the file is quarantined. A **warning** (``warn``) is a row-level
inconsistency inside a genuine publication (a sender code no ODS code looks like, a measure name worded
differently, a repeated row …): the file loads and each such row carries the rule in ``raw_oap.row_flags``; the
violations go to ``audit.row_flags`` like every feed's, the run names them (file, row, column, rule, value) and
``fct_data_quality`` counts them.

A file holds one month and one STATUS (every row's REPORTING_PERIOD_END is that month's last day); month, rolling
quarter and rolling 12-month rows are told apart only by REPORTING_PERIOD_START and the raw layer derives
``period_type`` from it. ``*`` is kept as published in ``measure_value_published`` with ``measure_value`` NULL and
``is_suppressed`` true: never zero. A sender of ``UNKNOWN`` is a real row and is loaded like any other: whether a
sender is a trust is decided in dbt, where only reference trusts are attributed (SPEC §5).

Which publication of a month stands (:func:`compare_publications`): Provisional < Performance < Adhoc < Final;
within a status a re-publication (``_v2`` …, ``_Adhoc``) replaces the one before. A file of lower precedence
than the month's loaded one is ``superseded`` (never loaded over it) and the load says why; the same status again
with other figures and no marker is rejected (``republication_marked``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from orchestration import raw
from orchestration.contracts import EXPECTATIONS_DIR, ExpectationFailure, to_violations, validate_frame
from orchestration.raw import ContractError, ContractViolation, IngestResult, LoadOutcome
from orchestration.sources.oap_layout import (
    COUNT_MEASURES,
    DATE_FORMAT,
    HEADER,
    KNOWN_BREAKDOWNS,
    KNOWN_MEASURES,
    MEASURE_NAMES,
    NOT_USED,
    ORG_CODE,
    PERIOD_TYPES,
    PROVIDERS,
    RECEIVING_PROVIDER,
    REQUIRED_BREAKDOWNS,
    REQUIRED_MEASURES,
    STATUS_PRECEDENCE,
    STATUS_TOKENS,
    STATUSES,
    SUPPRESSED,
    UNKNOWN,
    PublicationName,
    file_name,
    is_national,
    parse_file_name,
    period_type,
)

#: Layout names used by callers through this module (the contract's home).
__all__ = [
    "COUNT_MEASURES",
    "HEADER",
    "KNOWN_MEASURES",
    "NOT_USED",
    "REQUIRED_BREAKDOWNS",
    "REQUIRED_MEASURES",
    "STATUSES",
    "SUPPRESSED",
    "file_name",
    "parse_file_name",
    "period_type",
]

log = logging.getLogger(__name__)

SOURCE = "oap"
SCHEMA = "raw_oap"
TABLE = "monthly_statistics"
SUITE = "oap_monthly_statistics"

#: Raw-layer name of each published column (``REPORTING_PERIOD_START`` → ``reporting_period_start``).
RAW_NAMES: dict[str, str] = {column: column.lower() for column in HEADER}

#: The unique key of a row: the same key twice with other figures contradicts itself.
KEY_COLUMNS: tuple[str, ...] = (
    "REPORTING_PERIOD_START",
    "REPORTING_PERIOD_END",
    "BREAKDOWN",
    "PRIMARY_LEVEL",
    "SECONDARY_LEVEL",
    "MEASURE_ID",
)

_PUBLISHED_DATE = r"^[0-9]{2}/[0-9]{2}/[0-9]{4}$"
_NUMBER = r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"

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
    ("row_flags", "varchar"),
)
#: Columns compared to tell a harmless re-delivery from a re-publication (everything the file says).
_FIGURES: tuple[str, ...] = tuple(
    name for name, _ in RAW_COLUMNS if name not in ("period_month", "source_file", "source_row", "row_flags")
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
    "check_count_not_rounded",
    "check_conflicting_duplicate",
    "check_name_month",
    "check_name_status",
    "check_unknown_measure",
    "check_measure_name",
    "check_unknown_breakdown",
    "check_provider_code_format",
    "check_national_suppressed",
    "check_adult_acute_exceeds_total",
    "check_repeated_row",
)
_REQUIRED = ("BREAKDOWN", "PRIMARY_LEVEL", "SECONDARY_LEVEL", "MEASURE_ID")
#: The published column each check is about, for violations.
CHECK_LABELS: dict[str, str] = {
    "check_blank_required_cells": ", ".join(_REQUIRED),
    "check_unparseable_dates": "REPORTING_PERIOD_START, REPORTING_PERIOD_END",
    "check_period_type": "REPORTING_PERIOD_START",
    "check_end_not_month_end": "REPORTING_PERIOD_END",
    "check_end_month": "REPORTING_PERIOD_END",
    "check_value_unreadable": "MEASURE_VALUE",
    "check_value_negative": "MEASURE_VALUE",
    "check_count_not_whole": "MEASURE_VALUE",
    "check_count_not_rounded": "MEASURE_VALUE",
    "check_conflicting_duplicate": ", ".join(KEY_COLUMNS),
    "check_name_month": "REPORTING_PERIOD_END",
    "check_name_status": "STATUS",
    "check_unknown_measure": "MEASURE_ID",
    "check_measure_name": "MEASURE_NAME",
    "check_unknown_breakdown": "BREAKDOWN",
    "check_provider_code_format": "PRIMARY_LEVEL",
    "check_national_suppressed": "MEASURE_VALUE",
    "check_adult_acute_exceeds_total": "MEASURE_VALUE",
    "check_repeated_row": ", ".join(KEY_COLUMNS),
}


# --------------------------------------------------------------------------------------------------------------
# Severity, from the suite


@cache
def rule_severities() -> dict[str, str]:
    """Each rule of the suite → ``error`` (``"severity": "critical"``) or ``warn`` (``"warning"``)."""
    suite = json.loads((EXPECTATIONS_DIR / f"{SUITE}.json").read_text(encoding="utf-8"))
    found = {}
    for expectation in suite["expectations"]:
        found[expectation["meta"]["rule"]] = "warn" if expectation.get("severity") == "warning" else "error"
    for rule in suite["meta"].get("load_rules", {}):
        found[rule] = "warn" if suite["meta"]["load_rules"][rule]["severity"] == "warning" else "error"
    return found


@cache
def warning_checks() -> dict[str, str]:
    """``check_*`` column → rule, for the suite's warnings: the rows whose column is not 0 get the rule flagged."""
    suite = json.loads((EXPECTATIONS_DIR / f"{SUITE}.json").read_text(encoding="utf-8"))
    return {
        e["kwargs"]["column"]: e["meta"]["rule"]
        for e in suite["expectations"]
        if e.get("severity") == "warning" and str(e["kwargs"].get("column", "")).startswith("check_")
    }


def _with_severity(violation: ContractViolation, severity: str) -> ContractViolation:
    return violation if violation.severity == severity else dataclasses.replace(violation, severity=severity)


# --------------------------------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class OapFile:
    """A delivered OAP file, as far as can be told before checking its rows.

    ``period_month`` is the month of its REPORTING_PERIOD_END (the one most rows give), else the month in its
    name. ``status`` is its STATUS (the one most rows give). ``name`` is what its file name says, when the name is
    the publisher's (``MHSDS Data_OAPs_AprPerf_2026_v2.zip``). ``source_file`` names it in the raw layer and in
    violations (``x.zip/x.csv`` for a zipped file).
    """

    path: Path
    period_month: date
    status: str
    sha256: str
    source_file: str = ""
    file_bytes: int = 0
    name: PublicationName | None = None

    def __post_init__(self) -> None:
        if not self.source_file:
            object.__setattr__(self, "source_file", Path(self.path).name)

    @property
    def version(self) -> int:
        return self.name.version if self.name else 1

    @property
    def is_revision(self) -> bool:
        """A re-publication of its month and status (``_v2``, ``_Adhoc``)."""
        return bool(self.name and self.name.is_republication)


def month_in_file_name(path: Path) -> date | None:
    """The month a publisher's file name states (``MHSDS Data_OAPs_AprPerf_2026.csv`` → 2026-04-01), else ``None``."""
    name = parse_file_name(path)
    return name.month if name else None


def _sort_key(path: Path) -> tuple:
    name = parse_file_name(path)
    if name is None:
        return (date.max, 0, 0, 0, path.name)
    return (name.month, STATUS_PRECEDENCE[name.status], name.version, name.adhoc, path.name)


def discover_oap_files(folder: Path) -> list[Path]:
    """The ``.csv`` and ``.zip`` files directly in ``folder``, by month; within a month in order of precedence
    (Provisional, Performance, Adhoc, Final; a re-publication after the one it replaces), so that each may replace
    the one before. Files whose names state no month come last."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in (".csv", ".zip")
    ]
    return sorted(found, key=_sort_key)


def column_of(frame: pd.DataFrame, name: str) -> pd.Series | None:
    """The column of ``frame`` named ``name`` (the first, if the header repeats it), or ``None``."""
    positions = [i for i, column in enumerate(frame.columns) if column == name]
    return frame.iloc[:, positions[0]] if positions else None


def parse_dates(series: pd.Series) -> pd.Series:
    """Published ``DD/MM/YYYY`` cells → Timestamps (NaT where the cell is not a real date in that form)."""
    text = series.str.strip()
    shaped = text.str.match(_PUBLISHED_DATE)
    return pd.to_datetime(text.where(shaped), format=DATE_FORMAT, errors="coerce")


def most_common(series: pd.Series | None) -> str:
    """The most frequent stripped value of ``series`` (a file's STATUS), ``""`` for none."""
    if series is None:
        return ""
    counts = series.str.strip().value_counts()
    return str(counts.index[0]) if len(counts) else ""


def read_oap_file(
    path: Path, *, example_name: str = "MHSDS Data_OAPs_AprPerf_2026.csv"
) -> tuple[OapFile, pd.DataFrame]:
    """Read a delivered file as text: every cell a string, columns as in its header, indexed by line number.

    Any MHSDS data file in the 11-column long layout reads the same way (the main monthly file of
    :mod:`orchestration.sources.mhsds_los` too); ``example_name`` is the name the error shows as the expected form.
    Raises :class:`ContractError` when it is not a readable CSV at all (empty, header only, HTML, corrupt zip, not
    UTF-8, ragged rows) or when its month can be told neither from its REPORTING_PERIOD_END nor from its name.
    """
    path = Path(path)
    source_file, data = raw.open_source_file(path)
    frame = raw.read_csv_as_strings(source_file, data)
    name = parse_file_name(path)
    month = None
    ends = column_of(frame, "REPORTING_PERIOD_END")
    if ends is not None:
        parsed = parse_dates(ends).dropna()
        if len(parsed):
            first = parsed.dt.to_period("M").mode().iloc[0].to_timestamp()
            month = date(first.year, first.month, 1)
    month = month or (name.month if name else None)
    if month is None:
        raise ContractError(
            source_file,
            "cannot tell which month the file holds: no REPORTING_PERIOD_END is a date like 30/04/2026 and its name "
            f"does not follow {example_name}",
            rule="dates_parse",
        )
    oap_file = OapFile(
        path=path,
        period_month=month,
        status=most_common(column_of(frame, "STATUS")),
        sha256=raw.file_sha256(path),
        source_file=source_file,
        file_bytes=path.stat().st_size,
        name=name,
    )
    return oap_file, frame


# --------------------------------------------------------------------------------------------------------------
# The contract's derived checks


def _yyyymm(month: date) -> int:
    return month.year * 100 + month.month


@dataclass
class _Checked:
    """What the derived checks computed, kept to explain an offending row and to flag rows at load."""

    frame: pd.DataFrame
    checks: dict[str, np.ndarray]
    bad_dates: dict[str, np.ndarray]
    starts: pd.Series | None = None
    ends: pd.Series | None = None
    code_columns: np.ndarray | None = None  # per row: the column whose code is malformed

    def position(self, line: int) -> int:
        return int(self.frame.index.get_loc(line))

    def cell(self, column: str, line: int) -> str:
        series = column_of(self.frame, column)
        return "" if series is None else str(series.iloc[self.position(line)])


def _text(frame: pd.DataFrame, column: str, n: int) -> pd.Series:
    series = column_of(frame, column)
    return series.str.strip() if series is not None else pd.Series([""] * n, index=frame.index, dtype=object)


@raw.once_per_frame
def _derived_checks(oap_file: OapFile, frame: pd.DataFrame) -> _Checked:
    """Every ``check_*`` column of the suite for ``frame`` (0 where a rule holds or does not apply).

    A check column holds a passing value where its rule does not apply or another rule already reports the cell
    (an unparseable date is reported once, by ``dates_parse``), so each problem is named once.
    """
    month = oap_file.period_month
    n = len(frame)
    checks: dict[str, np.ndarray] = {column: np.zeros(n) for column in CHECK_COLUMNS}
    checks["check_period_type"] = np.full(n, "month", dtype=object)
    checks["check_end_month"] = np.full(n, float(_yyyymm(month)))
    checked = _Checked(frame=frame, checks=checks, bad_dates={})

    blank = np.zeros(n)
    for column in _REQUIRED:
        series = column_of(frame, column)
        if series is not None:
            blank += (series.str.strip() == "").to_numpy()
    checks["check_blank_required_cells"] = blank

    starts_text, ends_text = column_of(frame, "REPORTING_PERIOD_START"), column_of(frame, "REPORTING_PERIOD_END")
    starts = parse_dates(starts_text) if starts_text is not None else None
    ends = parse_dates(ends_text) if ends_text is not None else None
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

    breakdowns = _text(frame, "BREAKDOWN", n)
    measures = _text(frame, "MEASURE_ID", n)
    national = breakdowns.map(is_national).to_numpy(bool)
    is_count = measures.isin(COUNT_MEASURES).to_numpy(bool)

    values = column_of(frame, "MEASURE_VALUE")
    value_text = values.str.strip() if values is not None else pd.Series([""] * n, index=frame.index)
    number_like = value_text.str.match(_NUMBER).to_numpy(bool)
    numbers = pd.to_numeric(value_text.where(number_like), errors="coerce").to_numpy(dtype=np.float64)
    star = (value_text == SUPPRESSED).to_numpy(bool)
    if values is not None:
        checks["check_value_unreadable"] = (~(star | number_like)).astype(np.float64)
        checks["check_value_negative"] = np.where(number_like, numbers < 0, False).astype(np.float64)
        whole = np.where(number_like, np.floor(np.nan_to_num(numbers)) == np.nan_to_num(numbers), True)
        checks["check_count_not_whole"] = (is_count & ~whole).astype(np.float64)
        rounded = np.where(number_like, (np.nan_to_num(numbers) % 5 == 0) & (np.nan_to_num(numbers) >= 5), True)
        # a fractional or negative count is reported by its own rule
        checks["check_count_not_rounded"] = (
            is_count & ~national & whole & np.where(number_like, numbers >= 0, True) & ~rounded
        ).astype(np.float64)
        checks["check_national_suppressed"] = (national & star).astype(np.float64)

    key_present = all(column_of(frame, column) is not None for column in KEY_COLUMNS)
    if key_present and values is not None:
        keys = pd.DataFrame({column: column_of(frame, column).str.strip() for column in KEY_COLUMNS})
        keys["_value"] = value_text
        distinct_values = keys.groupby(list(KEY_COLUMNS), sort=False)["_value"].transform("nunique")
        checks["check_conflicting_duplicate"] = (distinct_values > 1).to_numpy(np.float64)
        repeated = keys.duplicated(keep="first").to_numpy(bool)
        checks["check_repeated_row"] = (repeated & (distinct_values <= 1).to_numpy(bool)).astype(np.float64)

        # an adult acute count (OAPnna) above its total (OAPnn) for the same period and level; a value that is
        # itself wrong (not a number, negative, fractional, unrounded, contradicted) is reported by its own rule
        invalid = sum(
            checks[column]
            for column in (
                "check_value_unreadable",
                "check_value_negative",
                "check_count_not_whole",
                "check_count_not_rounded",
                "check_conflicting_duplicate",
            )
        ).astype(bool)
        comparable = is_count & ~invalid
        counts = keys[comparable].assign(_number=numbers[comparable], _star=star[comparable])
        counts["_base"] = counts["MEASURE_ID"].str.removesuffix("a")
        level = ["REPORTING_PERIOD_START", "REPORTING_PERIOD_END", "BREAKDOWN", "PRIMARY_LEVEL", "SECONDARY_LEVEL"]
        totals = counts[~counts["MEASURE_ID"].str.endswith("a")][[*level, "_base", "_number", "_star"]]
        acute = counts[counts["MEASURE_ID"].str.endswith("a")].reset_index(names="_line")
        paired = acute.merge(
            totals.drop_duplicates([*level, "_base"]), on=[*level, "_base"], how="inner", suffixes=("", "_total")
        )
        exceeds = (~paired["_star"]) & (paired["_star_total"] | (paired["_number"] > paired["_number_total"]))
        mask = frame.index.isin(paired.loc[exceeds, "_line"])
        checks["check_adult_acute_exceeds_total"] = mask.astype(np.float64)

    checks["check_unknown_measure"] = ((measures != "") & ~measures.isin(KNOWN_MEASURES)).to_numpy(np.float64)
    names = _text(frame, "MEASURE_NAME", n)
    expected_names = measures.map(MEASURE_NAMES)
    checks["check_measure_name"] = (expected_names.notna() & (names != expected_names)).to_numpy(np.float64)
    checks["check_unknown_breakdown"] = ((breakdowns != "") & ~breakdowns.isin(KNOWN_BREAKDOWNS)).to_numpy(np.float64)

    # sender and receiver codes (PRIMARY_LEVEL of Sending/Receiving Provider breakdowns, SECONDARY_LEVEL of
    # '…; Receiving Provider'); UNKNOWN is what the publisher writes for a placement with no referring organisation
    code_columns = malformed_codecolumn_of(
        breakdowns, _text(frame, "PRIMARY_LEVEL", n), _text(frame, "SECONDARY_LEVEL", n)
    )
    checked.code_columns = code_columns
    checks["check_provider_code_format"] = (code_columns != "").astype(np.float64)

    name = oap_file.name
    if name is not None:
        checks["check_name_month"] = np.full(n, float(name.month != month))
        checks["check_name_status"] = np.full(n, float(oap_file.status in STATUSES and name.status != oap_file.status))
    return checked


def malformed_codecolumn_of(breakdowns: pd.Series, primary: pd.Series, secondary: pd.Series) -> np.ndarray:
    """Per row, the level column whose organisation code is malformed (``""`` where none is): PRIMARY_LEVEL of a
    Sending or Receiving Provider breakdown, SECONDARY_LEVEL of a ``…; Receiving Provider`` one. A code is 3 to 6
    upper-case letters and digits, or ``UNKNOWN``."""
    parts = breakdowns.str.split("; ")

    def malformed(code: pd.Series) -> np.ndarray:
        return ((code != "") & ~(code.str.fullmatch(ORG_CODE).fillna(False) | (code == UNKNOWN))).to_numpy(bool)

    primary_is_code = parts.str[0].isin(PROVIDERS).to_numpy(bool)
    secondary_is_code = ((parts.str.len() == 2) & (parts.str[-1] == RECEIVING_PROVIDER)).to_numpy(bool)
    found = np.where(secondary_is_code & malformed(secondary), "SECONDARY_LEVEL", "")
    return np.where(primary_is_code & malformed(primary), "PRIMARY_LEVEL", found).astype(object)


def row_flags(oap_file: OapFile, frame: pd.DataFrame) -> np.ndarray:
    """Per row, the warnings it carries (``"rule,rule"``), or ``None``: what ``raw_oap.row_flags`` holds."""
    checked = _derived_checks(oap_file, frame)
    flags = np.full(len(frame), "", dtype=object)
    for column, rule in warning_checks().items():
        hit = checked.checks[column] != 0
        flags = np.where(hit, np.where(flags == "", rule, flags + "," + rule), flags)
    return np.where(flags == "", None, flags)


def _validation_batch(oap_file: OapFile, frame: pd.DataFrame) -> tuple[pd.DataFrame, _Checked]:
    """The frame GX validates: the file's columns under raw names in file order (text, blank as ``""``, never
    null: GX copies the batch for every expectation on a column with nulls), then the ``check_*`` columns."""
    columns: dict[str, object] = {}
    for position, published in enumerate(frame.columns):
        column = RAW_NAMES.get(published, f"unpublished: {published}")
        if column in columns:
            column = f"{published} (column {position + 1})"
        columns[column] = frame.iloc[:, position].to_numpy(dtype=object)
    checked = _derived_checks(oap_file, frame)
    batch = pd.DataFrame({**columns, **checked.checks}, index=frame.index)
    return batch, checked


@dataclass(frozen=True)
class ContractReport:
    """A file's contract result: ``errors`` quarantine it; ``warnings`` are loaded and flagged."""

    errors: list[ContractViolation]
    warnings: list[ContractViolation]


def contract_report(oap_file: OapFile, frame: pd.DataFrame, *, today: date | None = None) -> ContractReport:
    """Check a read file against the OAP file contract (SPEC §8), split by severity.

    Runs the GX suite ``expectations/oap_monthly_statistics.json`` once over the file, with the rules that need
    parsing as derived columns, and names each violation's file, line, column (as the file names it) and rule.
    ``today`` fixes "the current month" for the rule that no period may be in the future (default: today).
    """
    month = oap_file.period_month
    header = list(frame.columns)
    batch, checked = _validation_batch(oap_file, frame)
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
    labels.update(CHECK_LABELS)
    severities = rule_severities()
    found: dict[str, list[ContractViolation]] = {"error": [], "warn": []}
    for severity in found:
        chosen = [failure for failure in failures if severities.get(failure.rule, failure.severity) == severity]
        found[severity] = to_violations(
            oap_file.source_file,
            chosen,
            column_labels=labels,
            explain=_explainers(oap_file, checked),
            table_explain={
                "header_matches_layout": lambda _failure: header_violations(oap_file.source_file, header),
                "name_matches_period": lambda _failure: [_name_violation(oap_file, "period")],
                "name_matches_status": lambda _failure: [_name_violation(oap_file, "status")],
                "required_breakdowns_present": lambda _failure: [
                    _missing_violation(oap_file, frame, "BREAKDOWN", REQUIRED_BREAKDOWNS, "required_breakdowns_present")
                ],
                "required_measures_present": lambda _failure: [
                    _missing_violation(oap_file, frame, "MEASURE_ID", REQUIRED_MEASURES, "required_measures_present")
                ],
            },
        )
    if header != list(HEADER) and not any(v.rule == "header_matches_layout" for v in found["error"]):
        found["error"][:0] = header_violations(oap_file.source_file, header)
    return ContractReport(
        errors=[_with_severity(v, "error") for v in found["error"]],
        warnings=[_with_severity(v, "warn") for v in found["warn"]],
    )


def check_oap_contract(oap_file: OapFile, frame: pd.DataFrame, *, today: date | None = None) -> list[ContractViolation]:
    """The file's violations, each with its severity: an ``error`` stops it loading; ``warn`` ones are loaded, the
    rows flagged (``raw_oap.row_flags`` and ``audit.row_flags``). No error means the file may be loaded."""
    report = contract_report(oap_file, frame, today=today)
    return report.errors + report.warnings


def _missing_violation(
    oap_file: OapFile, frame: pd.DataFrame, column: str, required: Sequence[str], rule: str
) -> ContractViolation:
    series = column_of(frame, column)
    present = sorted(set(series.str.strip())) if series is not None else []
    missing = [value for value in required if value not in present]
    shown = ", ".join(present[:8]) + (f", … ({len(present)} in all)" if len(present) > 8 else "")
    return ContractViolation(
        oap_file.source_file,
        None,
        column,
        rule,
        f"the file has no {' or '.join(missing)} rows, which every out-of-area placements file has: it is another "
        f"publication or a truncated one ({column} found: {shown or 'none'})",
    )


def _name_violation(oap_file: OapFile, what: str) -> ContractViolation:
    name = oap_file.name
    assert name is not None
    if what == "period":
        return ContractViolation(
            oap_file.source_file,
            None,
            "REPORTING_PERIOD_END",
            "name_matches_period",
            f"the file name says {name.month:%B %Y} but its REPORTING_PERIOD_END is in {oap_file.period_month:%B %Y}",
        )
    return ContractViolation(
        oap_file.source_file,
        None,
        "STATUS",
        "name_matches_status",
        f"the file name says {STATUS_TOKENS[name.status]} ({name.status}) but its rows' STATUS is {oap_file.status}",
    )


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

    def cell(column: str, line: int) -> str:
        return checked.cell(column, line)

    def blank(_failure, line: int, _value):
        return [(column, f"{column} is blank") for column in _REQUIRED if cell(column, line).strip() == ""]

    def bad_date(_failure, line: int, _value):
        position = checked.position(line)
        return [
            (column, f"'{cell(column, line)}' is not a date in the published form DD/MM/YYYY")
            for column, mask in checked.bad_dates.items()
            if mask[position]
        ]

    def start(_failure, line: int, _value):
        position = checked.position(line)
        first, last = checked.starts.iloc[position], checked.ends.iloc[position]
        said = f"REPORTING_PERIOD_START {first:%d/%m/%Y}"
        if first > last:
            why = f"is after REPORTING_PERIOD_END {last:%d/%m/%Y}"
        else:
            why = (
                f"is not the first day of the month, or of the month two or eleven months before, of "
                f"REPORTING_PERIOD_END {last:%d/%m/%Y} (a month, rolling-quarter or rolling 12-month row)"
            )
        return [("REPORTING_PERIOD_START", f"{said} {why}")]

    def not_month_end(_failure, line: int, _value):
        return [("REPORTING_PERIOD_END", f"'{cell('REPORTING_PERIOD_END', line)}' is not a month's last day")]

    def other_month(_failure, line: int, _value):
        return [
            (
                "REPORTING_PERIOD_END",
                f"'{cell('REPORTING_PERIOD_END', line)}' is not in {month:%B %Y}, the month of the file's other "
                "rows: a file holds one month",
            )
        ]

    def future(_failure, line: int, _value):
        return [("REPORTING_PERIOD_END", f"'{cell('REPORTING_PERIOD_END', line)}' is in a future month")]

    def unreadable(_failure, line: int, _value):
        found = cell("MEASURE_VALUE", line)
        shown = "a blank cell" if not found.strip() else f"'{found}'"
        return [("MEASURE_VALUE", f"{shown} is neither '*' (suppressed) nor a number")]

    def negative(_failure, line: int, _value):
        return [("MEASURE_VALUE", f"{cell('MEASURE_VALUE', line)} is negative (measures cannot be below 0)")]

    def not_whole(_failure, line: int, _value):
        value, measure = cell("MEASURE_VALUE", line), cell("MEASURE_ID", line)
        return [("MEASURE_VALUE", f"{value} is not a whole number ({measure} is a count)")]

    def not_rounded(_failure, line: int, _value):
        value, measure, breakdown = cell("MEASURE_VALUE", line), cell("MEASURE_ID", line), cell("BREAKDOWN", line)
        return [
            (
                "MEASURE_VALUE",
                f"{value} in a {breakdown} row is not '*' or a multiple of 5 of at least 5: the publication "
                f"suppresses {measure} counts below 5 and rounds the rest to 5 outside England (an unsuppressed "
                "extract?)",
            )
        ]

    def conflicting(failure: ExpectationFailure, line: int, _value):
        key = ", ".join(cell(column, line) for column in KEY_COLUMNS)
        return [(", ".join(KEY_COLUMNS), f"key {key} appears more than once with different MEASURE_VALUE")]

    def repeated(_failure, line: int, _value):
        key = ", ".join(cell(column, line) for column in KEY_COLUMNS)
        return [(", ".join(KEY_COLUMNS), f"row repeats an earlier one ({key}, same value); counted once")]

    def measure(_failure, line: int, _value):
        found = cell("MEASURE_ID", line)
        return [
            (
                "MEASURE_ID",
                f"'{found}' is not a known measure id (OAP01–OAP11, or with the suffix a); loaded and not used",
            )
        ]

    def measure_name(_failure, line: int, _value):
        found, measure_id = cell("MEASURE_NAME", line), cell("MEASURE_ID", line)
        return [
            ("MEASURE_NAME", f"'{found}' is not the publisher's name of {measure_id} ('{MEASURE_NAMES[measure_id]}')")
        ]

    def breakdown(_failure, line: int, _value):
        return [
            ("BREAKDOWN", f"'{cell('BREAKDOWN', line)}' is not a breakdown of this publication; loaded and not used")
        ]

    def status(_failure, line: int, _value):
        found = cell("STATUS", line)
        if found in STATUSES:
            return [("STATUS", f"'{found}' differs from the file's STATUS '{oap_file.status}': a file has one")]
        return [("STATUS", f"'{found}' is not a known STATUS ({', '.join(STATUSES)})")]

    def provider_code(_failure, line: int, _value):
        column = checked.code_columns[checked.position(line)] or "PRIMARY_LEVEL"
        return [
            (
                column,
                f"'{cell(column, line)}' is neither an organisation code (3 to 6 upper-case letters and digits) nor "
                f"UNKNOWN in a {cell('BREAKDOWN', line)} row; loaded, attributed to no trust",
            )
        ]

    def national_star(_failure, line: int, _value):
        return [
            (
                "MEASURE_VALUE",
                f"'*' in a {cell('BREAKDOWN', line)} row: national figures are published unsuppressed; kept as "
                "suppressed",
            )
        ]

    def acute_exceeds(_failure, line: int, _value):
        measure = cell("MEASURE_ID", line)
        return [
            (
                "MEASURE_VALUE",
                f"{measure} {cell('MEASURE_VALUE', line)} is more than {measure.removesuffix('a')} for the same "
                f"period and level ({cell('BREAKDOWN', line)} {cell('PRIMARY_LEVEL', line)}): adult acute beds are "
                "part of all beds",
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
        "sub_national_counts_rounded": not_rounded,
        "no_conflicting_duplicates": conflicting,
        "repeated_row": repeated,
        "known_measure_id": measure,
        "measure_name_matches_id": measure_name,
        "known_breakdown": breakdown,
        "known_single_status": status,
        "org_code_format": provider_code,
        "national_not_suppressed": national_star,
        "adult_acute_within_total": acute_exceeds,
    }


# --------------------------------------------------------------------------------------------------------------
# Which publication of a month stands


@dataclass(frozen=True)
class Publication:
    """The status and re-publication marker of a month's file, for precedence."""

    status: str
    version: int = 1
    adhoc: bool = False

    @property
    def label(self) -> str:
        marker = ("_Adhoc" if self.adhoc else "") + (f"_v{self.version}" if self.version > 1 else "")
        return self.status + (f" {marker.lstrip('_')}" if marker else "")


def compare_publications(incoming: Publication, loaded: Publication) -> str:
    """``replace``: ``incoming`` takes the month's place; ``keep``: the loaded figures stand (``incoming`` is of
    lower precedence); ``conflict``: the same publication again with other figures and no re-publication marker.

    A higher STATUS replaces a lower one (Provisional < Performance < Adhoc < Final) and never the reverse; within
    a STATUS an ``_Adhoc`` re-publication replaces what is loaded, else the higher ``_vN`` stands.
    """
    rank_in, rank_loaded = STATUS_PRECEDENCE.get(incoming.status, 0), STATUS_PRECEDENCE.get(loaded.status, 0)
    if rank_in != rank_loaded:
        return "replace" if rank_in > rank_loaded else "keep"
    if incoming.adhoc:
        return "replace"
    if loaded.adhoc:
        return "keep"
    if incoming.version != loaded.version:
        return "replace" if incoming.version > loaded.version else "keep"
    return "conflict"


# --------------------------------------------------------------------------------------------------------------
# Loading


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw_oap.monthly_statistics`` and ``raw_oap.file_loads`` if they are missing."""
    raw.ensure_file_loads(con, SCHEMA)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in RAW_COLUMNS)
    con.execute(f"create table if not exists {SCHEMA}.{TABLE} (\n    {columns}\n)")
    # a warehouse built before rows carried their warnings
    con.execute(f"alter table {SCHEMA}.{TABLE} add column if not exists row_flags varchar")


def _incoming(con: duckdb.DuckDBPyConnection, oap_file: OapFile, frame: pd.DataFrame) -> tuple[str, str, list]:
    """Register the file's rows with DuckDB, typed; return (view name, a SELECT of raw-layer rows, its parameters)."""
    if list(frame.columns) != list(HEADER):
        raise ValueError(f"{oap_file.source_file}: the header is not the published layout; check the contract first")
    starts, ends = parse_dates(frame["REPORTING_PERIOD_START"]), parse_dates(frame["REPORTING_PERIOD_END"])
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
        "row_flags": pa.array(row_flags(oap_file, frame), pa.string(), from_pandas=True),
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


def loaded_publication(
    con: duckdb.DuckDBPyConnection, load: raw.LoadRecord, *, schema: str = SCHEMA, table: str = TABLE
) -> Publication:
    """The :class:`Publication` (status, re-publication marker) a month's current load came from."""
    status = con.execute(
        f"select mode(status) from {schema}.{table} where period_month = ?", [load.period_month]
    ).fetchone()[0]
    name = parse_file_name(load.source_file)
    return Publication(status or "", name.version if name else 1, bool(name and name.adhoc))


def _flag_summary(con: duckdb.DuckDBPyConnection, month: date) -> str:
    rows = con.execute(
        f"""select flag, count(*) from (
                select unnest(string_split(row_flags, ',')) as flag from {SCHEMA}.{TABLE}
                where period_month = ? and row_flags is not null)
            group by flag order by flag""",
        [month],
    ).fetchall()
    if not rows:
        return ""
    return "; rows loaded and flagged: " + ", ".join(f"{flag} {count}" for flag, count in rows)


def load_oap_file(con: duckdb.DuckDBPyConnection, oap_file: OapFile, frame: pd.DataFrame) -> LoadOutcome:
    """Load a file that passed its contract into ``raw_oap.monthly_statistics``, idempotently (SPEC §2).

    The same bytes already current → ``unchanged``; bytes since replaced → ``superseded``; first file for its
    month → ``loaded``. For a month already loaded, the same figures (the zip of a loaded CSV, say) are
    ``unchanged``; otherwise :func:`compare_publications` decides: a higher STATUS or a later re-publication of
    the same STATUS → ``replaced`` (the month's rows swapped in one transaction); a lower one → ``superseded``,
    with the reason in the message (the loaded figures stand); the same STATUS again unmarked → ``rejected``
    (``republication_marked``) and nothing changes.
    """
    ensure_raw_tables(con)
    return load_publication(
        con,
        oap_file,
        frame,
        schema=SCHEMA,
        table=TABLE,
        incoming=_incoming,
        figures=_FIGURES,
        after_write=lambda month: _flag_summary(con, month),
    )


def load_publication(
    con: duckdb.DuckDBPyConnection,
    oap_file: OapFile,
    frame: pd.DataFrame,
    *,
    schema: str,
    table: str,
    incoming,
    figures: Sequence[str],
    after_write=None,
) -> LoadOutcome:
    """The load of any long-layout MHSDS file (see :func:`load_oap_file`): ``incoming(con, file, frame)`` registers
    the rows and gives (view, SELECT of raw rows, parameters); ``figures`` are the columns compared to tell a
    harmless re-delivery from a re-publication; ``after_write(month)`` runs once the month's rows are written
    (in the feed's transaction's wake) and returns text for the message."""
    month = oap_file.period_month

    def outcome(
        action: str, rows: int, message: str = "", violations: tuple[ContractViolation, ...] = ()
    ) -> LoadOutcome:
        return LoadOutcome(action, oap_file.source_file, month, rows, oap_file.sha256, violations, message)

    current = raw.current_load(con, schema, month)
    if current is not None and current.sha256 == oap_file.sha256:
        return outcome("unchanged", len(frame), f"already loaded from {current.source_file}")
    if raw.loads_of(con, schema, oap_file.sha256):
        replaced_by = f" by {current.source_file}" if current else ""
        return outcome("superseded", len(frame), f"{month:%B %Y} has since been replaced{replaced_by}")
    incoming_publication = Publication(oap_file.status, oap_file.version, bool(oap_file.name and oap_file.name.adhoc))
    view, select_sql, params = incoming(con, oap_file, frame)
    try:
        action, message = "loaded", ""
        if current is not None:
            if raw.same_rows(con, f"{schema}.{table}", month, select_sql, params, figures):
                return outcome("unchanged", len(frame), f"same figures as {current.source_file}")
            loaded = loaded_publication(con, current, schema=schema, table=table)
            decision = compare_publications(incoming_publication, loaded)
            if decision == "keep":
                why = (
                    f"a {incoming_publication.status} publication never replaces a {loaded.status} one"
                    if incoming_publication.status != loaded.status
                    else "it is an earlier publication than the re-publication loaded"
                )
                return outcome(
                    "superseded",
                    len(frame),
                    f"not loaded: {month:%B %Y} is already loaded from {current.source_file} ({loaded.label}); {why}",
                )
            if decision == "conflict":
                violation = ContractViolation(
                    oap_file.source_file,
                    None,
                    None,
                    "republication_marked",
                    f"{month:%B %Y} is already loaded from {current.source_file} ({loaded.label}) with different "
                    "figures; a re-publication must be named with _v2 (_v3, …) or _Adhoc, or be a later STATUS "
                    "(Provisional, then Performance, then Final)",
                )
                return outcome("rejected", len(frame), violation.message, (_with_severity(violation, "error"),))
            action = "replaced"
            message = f"{incoming_publication.label} replaces {current.source_file} ({loaded.label})"
        audit = raw.AuditEntry(oap_file.source_file, month, oap_file.sha256, oap_file.file_bytes, oap_file.is_revision)
        rows = raw.write_partition(con, schema, table, select_sql, params, audit, action=action)
        flagged = after_write(month) if after_write else ""
        return outcome(action, rows, (message + flagged).removeprefix("; "))
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
# Flagged rows (warnings)


def row_flag_counts(con: duckdb.DuckDBPyConnection, *, period_month: date | None = None) -> dict[str, int]:
    """``{rule: rows}`` of the warnings flagged in the current OAP loads (one month if ``period_month``)."""
    ensure_raw_tables(con)
    where, params = "row_flags is not null", []
    if period_month is not None:
        where += " and period_month = ?"
        params.append(period_month)
    rows = con.execute(
        f"""select flag, count(*) from (
                select unnest(string_split(row_flags, ',')) as flag from {SCHEMA}.{TABLE} where {where})
            group by flag order by flag""",
        params,
    ).fetchall()
    return {rule: int(count) for rule, count in rows}


# --------------------------------------------------------------------------------------------------------------
# Re-checking what is loaded (the blocking asset check)


def frame_from_raw(
    con: duckdb.DuckDBPyConnection, period_month: date, *, schema: str = SCHEMA, table: str = TABLE
) -> tuple[OapFile, pd.DataFrame] | None:
    """The current load of ``period_month`` rebuilt as the file it came from: published header, text cells,
    indexed by its line numbers. ``None`` when nothing is loaded for the month. ``schema.table`` is any raw table
    of the long layout's :data:`RAW_COLUMNS` (``raw_mhsds_los`` too), whose tables its feed has created."""
    if schema == SCHEMA:
        ensure_raw_tables(con)
    load = raw.current_load(con, schema, period_month)
    if load is None:
        return None
    selects = ["source_row"]
    for i, column in enumerate(HEADER):
        name = RAW_NAMES[column]
        if name in ("reporting_period_start", "reporting_period_end"):
            selects.append(f"coalesce(strftime({name}, '{DATE_FORMAT}'), '') as c{i}")
        elif name == "measure_value":
            selects.append(f"coalesce(measure_value_published, '') as c{i}")
        else:
            selects.append(f"coalesce({name}, '') as c{i}")
    table = con.execute(
        f"select {', '.join(selects)} from {schema}.{table} where period_month = ? order by source_row",
        [period_month],
    ).fetch_arrow_table()
    frame = table.drop(["source_row"]).to_pandas()
    frame.columns = list(HEADER)
    frame.index = pd.Index(table.column("source_row").to_numpy(), name="line")
    oap_file = OapFile(
        path=Path(load.source_file),
        period_month=period_month,
        status=most_common(frame["STATUS"]),
        sha256=load.sha256,
        source_file=load.source_file,
        name=parse_file_name(load.source_file),
    )
    return oap_file, frame


def check_loaded_months(
    con: duckdb.DuckDBPyConnection, *, run_id: str | None = None
) -> dict[date, list[ContractViolation]]:
    """Re-run the file contract on every current OAP month not yet checked in ``audit.contract_checks``.

    What the warehouse holds is checked, not what a file said. Each month is checked once per load (keyed by its
    file's SHA-256) and the result recorded with source ``oap``. Returns ``{month: violations}`` for the months
    checked now (``[]`` = passed); warnings do not fail a month: they were loaded, flagged, on purpose.
    """
    ensure_raw_tables(con)
    return recheck_loaded_months(
        con,
        source=SOURCE,
        schema=SCHEMA,
        rebuild=frame_from_raw,
        errors=lambda oap_file, frame: contract_report(oap_file, frame).errors,
        run_id=run_id,
    )


def recheck_loaded_months(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str,
    schema: str,
    rebuild,
    errors,
    run_id: str | None = None,
) -> dict[date, list[ContractViolation]]:
    """The re-check loop of any long-layout feed: every current month of ``schema.file_loads`` not yet passed in
    ``audit.contract_checks`` for ``source`` is rebuilt (``rebuild(con, month)``), checked (``errors(file,
    frame)``: its critical violations) and the result recorded."""
    from orchestration.audit import ensure_audit_schema

    ensure_audit_schema(con)
    pending = con.execute(
        f"""select l.period_month from {schema}.file_loads l
            where l.is_current and not exists (
                select 1 from audit.contract_checks c
                where c.source = ? and c.period_month = l.period_month and c.sha256 = l.sha256 and c.passed)
            order by l.period_month""",
        [source],
    ).fetchall()
    outcomes: dict[date, list[ContractViolation]] = {}
    for (month,) in pending:
        rebuilt = rebuild(con, month)
        if rebuilt is None:
            continue
        oap_file, frame = rebuilt
        violations = errors(oap_file, frame)
        raw.forget_frame(frame)
        con.execute(
            "insert into audit.contract_checks values (?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                source,
                month,
                oap_file.sha256,
                not raw.errors_of(violations),
                len(raw.errors_of(violations)),
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
        outcomes[month] = violations
    return outcomes
