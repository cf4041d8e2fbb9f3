"""Acute long stays and discharge delays by trust: NHS England's published "Discharge Delays (Acute)" statistics.

What the publication is (checked against the publisher's pages and public code that reads the files)
---------------------------------------------------------------------------------------------------------
* **Publisher and collection.** NHS England, "Discharge delays (Acute)" statistics, from the *Acute discharge
  situation report* (originally the COVID-19 EPRR acute daily discharge sitrep, collected daily from every acute
  trust with a type 1 A&E department through SDCS since 8 April 2020; technical specification republished 30 April
  2024, definitions of discharge destinations and delay reasons changed on 27 May 2024). Pages:
  https://www.england.nhs.uk/statistics/statistical-work-areas/discharge-delays-acute-data/ and
  https://www.england.nhs.uk/statistics/statistical-work-areas/discharge-delays/acute-discharge-situation-report/
  (technical specification: .../publication/acute-discharge-situation-report-technical-specification/). Scope:
  adult inpatients (18+) incl. critical care, excluding paediatrics, maternity and deceased patients. Management
  information collected at speed with minimal validation; monthly files can be revised before publication
  (the weekly time series are never revised).
* **Cadence and file.** One file per month, published the month after next (``cron`` in the feed registry: the
  second Thursday, with the other NHS England statistics). Since April 2024 the monthly file is a long-format CSV,
  ``Daily-discharge-sitrep-monthly-data-webfile-<n>-CSV-<mon><yy>.csv`` (``n`` the month of the financial year,
  April = 1, sometimes zero-padded; e.g. ``...-webfile-1-CSV-apr26-v2.csv``, ``...-webfile-04-CSV-jul26.csv``),
  earlier spelt ``...-monthly-data-CSV-webfile-July2025.csv`` or ``...-monthly-data-webfile-August2024-revised.csv``.
  A revised month is re-issued as ``-v2`` (``-v3`` …) or ``-revised``: such a file replaces its month here. Files
  before April 2024 are xlsx workbooks ("Table 1" … "Table 5", a region block then ICB and trust blocks on the
  same sheet); this feed does not read them. The national ``...-timeseries-data-webfile-...`` workbook is not a
  monthly file and is not read either.
* **Layout.** Columns ``Period, Level, Region, ICB, Org Code, Org Name, Metric, Metric Type, Metric Group, Value``
  (as listed by public readers of the 2026 files: e.g. a PulseOps data manifest of the April–August 2026 files and
  the CareSignal loader, which requires exactly these ten; an NHS-R style 2024-25 reader uses Period, Level,
  Region, Org Code, Org Name, Metric, Metric Type, Metric Group, Value). Extra columns are tolerated and ignored;
  the ten are required by name, in any order. ``Period`` is a day written ``DD/MM/YYYY``. ``Level`` is National,
  Region, ICB or Provider (seen both as ``Provider`` and ``PROVIDER``; read case-insensitively); Region codes are
  Y-codes (Y61 …), England ``ENG``, providers ODS trust codes. ``Value`` is a number, or ``[z]``/``[x]``/``-``/blank
  for not applicable or not available: kept as published, read as missing, never as zero. Files are UTF-8, with or
  without a byte-order mark, and some months cp1252 (en dashes, non-breaking spaces in metric names): a file that
  is not UTF-8 is read as cp1252.
* **Measures this feed uses** (``Metric`` text, compared after folding case, dashes and spaces):
  - daily rows (one per trust and day): "Number of patients who no longer meet the criteria to reside" (NCtR),
    "Number of patients discharged" (of those), "Number of patients remaining in hospital who no longer meet the
    criteria to reside" - stocks counted once a day, so a month's figure is the **average of the daily counts**
    (the discharges are events: the month's figure is their **sum**);
  - "Daily Average - Number of patients remaining in hospital who no longer meet the criteria to reside" (from
    August 2025, one row per trust and month): the publisher's own monthly average, used when present;
  - "Number of additional bed days, patients with (a) length of stay of 7 / 14 / 21 days or over": a **weekly
    snapshot** of the days that patients with a stay of at least 7, 14 or 21 days have spent in hospital since they
    stopped meeting the criteria to reside (dated the snapshot's day; in some 2025-26 files one row per month dated
    the last day of the month before). Not a monthly measure: this feed serves the **mean of the snapshots** the
    file carries for the month, and says so (``period_type`` ``weekly_snapshot_mean``).
  Delay-reason and discharge-destination rows (Metric Group "Delay reason", "Delay reason LOS 7+", "Discharge
  destination") are loaded as published but not turned into metrics.

Contract (``expectations/acute_long_stay_daily_discharge_sitrep.json``; severity policy of SPEC §8)
---------------------------------------------------------------------------------------------------------
Critical (the file is quarantined, the reason names file, row, column and rule): a required column missing,
a Period that is not a date, a Value that is neither a number nor a not-available marker, a negative Value, the
same trust, day and metric twice with different values, a date in the future, rows whose month is not the one in
the file's name, a file without the daily NCtR measures. Warnings (loaded, row flagged in
``raw_acute_long_stay.daily_discharge_sitrep.row_flags`` and ``audit.row_flags``): a Level not in the four, a
provider code that is not an ODS trust code, a row dated outside the file's month (real files carry a few delay
reason rows of the month before; they are loaded, flagged, and left out of the month's figures), a daily count
that is not whole, a row repeated word for word (counted once), more patients remaining than no longer meeting
the criteria on the same day.

Loading is idempotent (SHA-256 of the bytes, :mod:`orchestration.raw`): the same file twice changes nothing, a
``-v2``/``-revised`` file replaces its month in one transaction, an unmarked file with other figures for a month
already loaded is rejected (``revision_marked``).
"""

from __future__ import annotations

import calendar
import json
import re
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
from orchestration.contracts import EXPECTATIONS_DIR, to_violations, validate_frame
from orchestration.raw import ContractError, ContractViolation, IngestResult, LoadOutcome

SOURCE = "acute_long_stay"
SCHEMA = "raw_acute_long_stay"
TABLE = "daily_discharge_sitrep"
SUITE = "acute_long_stay_daily_discharge_sitrep"

#: The published columns, in the order the publisher writes them (required by name; order and extras tolerated).
HEADER: tuple[str, ...] = (
    "Period",
    "Level",
    "Region",
    "ICB",
    "Org Code",
    "Org Name",
    "Metric",
    "Metric Type",
    "Metric Group",
    "Value",
)
RAW_NAMES: dict[str, str] = {column: column.lower().replace(" ", "_") for column in HEADER}
LEVELS: tuple[str, ...] = ("national", "region", "icb", "provider")
#: Cells that mean "not applicable / not available" (GSS symbols and the publisher's dashes): missing, never zero.
NOT_AVAILABLE: frozenset[str] = frozenset({"", "[z]", "[x]", "[c]", "-", ":", "*", ".."})

#: Metric key → the published Metric text (normalised by :func:`metric_key`): the measures turned into figures.
METRICS: dict[str, str] = {
    "nctr": "number of patients who no longer meet the criteria to reside",
    "nctr_discharged": "number of patients discharged",
    "nctr_remaining": "number of patients remaining in hospital who no longer meet the criteria to reside",
    "nctr_remaining_daily_average": (
        "daily average - number of patients remaining in hospital who no longer meet the criteria to reside"
    ),
    "additional_bed_days_7plus": "number of additional bed days, patients with a length of stay of 7 days or over",
    "additional_bed_days_14plus": "number of additional bed days, patients with a length of stay of 14 days or over",
    "additional_bed_days_21plus": "number of additional bed days, patients with a length of stay of 21 days or over",
}
_KEY_OF_TEXT = {text: key for key, text in METRICS.items()}
#: Daily counts (one row a trust a day) that every monthly file carries.
DAILY_COUNTS: tuple[str, ...] = ("nctr", "nctr_discharged", "nctr_remaining")
SNAPSHOTS: tuple[str, ...] = ("additional_bed_days_7plus", "additional_bed_days_14plus", "additional_bed_days_21plus")
#: A weekly snapshot may be dated up to this many days before the month it is published in (week commencing, or
#: the last day of the month before in the 2025-26 monthly rows).
SNAPSHOT_LEAD_DAYS = 7

RAW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("period_month", "date"),
    ("source_file", "varchar"),
    ("source_row", "integer"),
    ("period", "date"),
    ("level", "varchar"),
    ("region", "varchar"),
    ("icb", "varchar"),
    ("org_code", "varchar"),
    ("org_name", "varchar"),
    ("metric", "varchar"),
    ("metric_key", "varchar"),
    ("metric_type", "varchar"),
    ("metric_group", "varchar"),
    ("value_published", "varchar"),
    ("value", "double"),
    ("row_flags", "varchar"),
)
_FIGURES: tuple[str, ...] = tuple(
    name for name, _ in RAW_COLUMNS if name not in ("period_month", "source_file", "source_row", "row_flags")
)

CHECK_COLUMNS: tuple[str, ...] = (
    "check_period_unparseable",
    "check_value_unreadable",
    "check_value_negative",
    "check_conflicting_duplicate",
    "check_period_in_future",
    "check_rows_month",
    "check_level_unknown",
    "check_provider_code_format",
    "check_outside_month",
    "check_count_not_whole",
    "check_repeated_row",
    "check_remaining_exceeds_nctr",
)
#: The published column each check is about (for violations).
CHECK_LABELS: dict[str, str] = {
    "check_period_unparseable": "Period",
    "check_value_unreadable": "Value",
    "check_value_negative": "Value",
    "check_conflicting_duplicate": "Period, Level, Org Code, Metric Group, Metric",
    "check_period_in_future": "Period",
    "check_rows_month": "Period",
    "check_level_unknown": "Level",
    "check_provider_code_format": "Org Code",
    "check_outside_month": "Period",
    "check_count_not_whole": "Value",
    "check_repeated_row": "Period, Level, Org Code, Metric Group, Metric",
    "check_remaining_exceeds_nctr": "Value",
    "metric_key": "Metric",
}
_KEY = ("Period", "Level", "Org Code", "Metric Group", "Metric")
_TRUST_CODE = re.compile(r"^[A-Z0-9]{3}$|^[A-Z0-9]{5}$")
_NUMBER = re.compile(r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")


@cache
def _suite() -> dict:
    return json.loads((EXPECTATIONS_DIR / f"{SUITE}.json").read_text(encoding="utf-8"))


@cache
def warning_checks() -> dict[str, str]:
    """``check_*`` column → rule, for the suite's warnings (the rows whose column is not 0 carry the rule)."""
    return {
        e["kwargs"]["column"]: e["meta"]["rule"]
        for e in _suite()["expectations"]
        if e.get("severity") == "warning" and str(e["kwargs"].get("column", "")).startswith("check_")
    }


def metric_key(text: str) -> str:
    """The key of :data:`METRICS` a published Metric text names, or ``""``: case, dashes, non-breaking spaces and
    runs of spaces folded, and "with length of stay" read as "with a length of stay" (both wordings are published).
    """
    folded = str(text).replace("\xa0", " ").replace("\u2013", "-").replace("\u2014", "-").lower()
    folded = re.sub(r"\s+", " ", folded).strip()
    folded = folded.replace("patients with length of stay", "patients with a length of stay")
    return _KEY_OF_TEXT.get(folded, "")


# --------------------------------------------------------------------------------------------------------------
# Files

_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): number for number, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_NAME = re.compile(
    r"^daily-discharge-sitrep-monthly-data-(?:csv-)?webfile-(?:csv-)?(?:(?P<fy>\d{1,2})-csv-)?"
    r"(?P<month>[a-z]+)-?(?P<year>\d{4}|\d{2})(?P<rest>.*)$",
    re.IGNORECASE,
)
_VERSION = re.compile(r"[-_ ]v(\d+)$", re.IGNORECASE)
_REVISED = re.compile(r"(?:^|[-_ ])revised(?:[-_ ]\d+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class PublishedName:
    """What a publisher's file name says: the month, and whether (and which) re-issue it is."""

    month: date
    version: int
    revised: bool

    @property
    def is_revision(self) -> bool:
        return self.revised or self.version > 1


def parse_file_name(name: str) -> PublishedName | None:
    """``Daily-discharge-sitrep-monthly-data-webfile-1-CSV-apr26-v2.csv`` → April 2026, version 2; ``None`` for a
    name that is not the publisher's (or whose financial-year number contradicts its month)."""
    stem = Path(name).name
    for suffix in (".zip", ".csv"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    found = _NAME.match(stem)
    if not found or found["month"].lower() not in _MONTHS:
        return None
    number = _MONTHS[found["month"].lower()]
    year = int(found["year"]) + (2000 if len(found["year"]) == 2 else 0)
    if found["fy"] is not None and int(found["fy"]) != (number - 4) % 12 + 1:
        return None
    rest = found["rest"]
    version = _VERSION.search(rest)
    return PublishedName(date(year, number, 1), int(version[1]) if version else 1, bool(_REVISED.search(rest)))


def file_name(month: date, *, version: int = 1) -> str:
    """The publisher's current name for a month's file (the 2026 spelling), ``-v2`` … for a re-issue:
    ``Daily-discharge-sitrep-monthly-data-webfile-1-CSV-apr26.csv`` for April 2026."""
    number = (month.month - 4) % 12 + 1
    tail = f"-v{version}" if version > 1 else ""
    mon = calendar.month_abbr[month.month].lower()
    return f"Daily-discharge-sitrep-monthly-data-webfile-{number}-CSV-{mon}{month:%y}{tail}.csv"


def month_in_file_name(path: Path) -> date | None:
    parsed = parse_file_name(Path(path).name)
    return parsed.month if parsed else None


def _sort_key(path: Path) -> tuple:
    parsed = parse_file_name(path.name)
    if parsed is None:
        return (date.max, 0, 0, path.name)
    return (parsed.month, parsed.version, int(parsed.revised), path.name)


def discover_files(folder: Path) -> list[Path]:
    """Every ``.csv`` / ``.zip`` in ``folder``: by month, then original before its re-issues (``-v2`` …)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".zip")]
    return sorted(found, key=_sort_key)


@dataclass(frozen=True)
class SitrepFile:
    """A delivered monthly file: its month (from its name, else the month most of its daily rows give)."""

    path: Path
    period_month: date
    sha256: str
    source_file: str
    file_bytes: int
    name: PublishedName | None
    rows_month: date | None
    is_revision: bool


def _as_utf8(source_file: str, data: bytes) -> bytes:
    """The bytes as UTF-8: the publisher's cp1252 months re-encoded (every byte is a cp1252 character or not)."""
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252").encode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        message = f"is neither UTF-8 nor Windows-1252 text (byte 0x{data[error.start]:02x} at line {line})"
        raise ContractError(
            source_file, message, violations=[ContractViolation(source_file, line, None, "text_encoding", message)]
        ) from error


def parse_periods(series: pd.Series) -> pd.Series:
    """``DD/MM/YYYY`` (as published; ``YYYY-MM-DD`` also read) → Timestamp, NaT where the cell is not a date."""
    text = series.astype(str).str.strip()
    published = pd.to_datetime(text, format="%d/%m/%Y", errors="coerce")
    iso = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    return published.fillna(iso)


def read_file(path: Path) -> tuple[SitrepFile, pd.DataFrame]:
    """Read a delivered file into text cells indexed by line number (raises :class:`ContractError` when it is not
    a CSV at all). The frame keeps the file's own header; the contract decides whether it is the publisher's."""
    path = Path(path)
    source_file, data = raw.open_source_file(path)
    frame = raw.read_csv_as_strings(source_file, _as_utf8(source_file, data))
    frame.columns = [str(column).strip() for column in frame.columns]
    name = parse_file_name(path.name)
    rows_month = None
    if "Period" in frame.columns:
        periods = parse_periods(frame["Period"]).dropna()
        if len(periods):
            rows_month = periods.dt.to_period("M").mode().iloc[0].to_timestamp().date()
    month = name.month if name else rows_month
    if month is None:
        raise ContractError(
            source_file,
            "the file's month cannot be told: the name is not the publisher's "
            "(Daily-discharge-sitrep-monthly-data-webfile-<n>-CSV-<mon><yy>.csv) and no Period cell is a date",
            rule="period_known",
        )
    sitrep_file = SitrepFile(
        path=path,
        period_month=month,
        sha256=raw.file_sha256(path),
        source_file=source_file,
        file_bytes=path.stat().st_size,
        name=name,
        rows_month=rows_month,
        is_revision=bool(name and name.is_revision),
    )
    return sitrep_file, frame


# --------------------------------------------------------------------------------------------------------------
# The contract


def _yyyymm(day: date) -> int:
    return day.year * 100 + day.month


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column in frame.columns:
        return frame[column].astype(str).str.strip()
    return pd.Series("", index=frame.index)


@raw.once_per_frame
def _validation_batch(sitrep_file: SitrepFile, frame: pd.DataFrame, today: date) -> pd.DataFrame:
    """The file's cells plus the derived ``check_*`` columns the suite expects (0 = the row keeps the rule)."""
    month = sitrep_file.period_month
    batch = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        batch[column] = frame[column]
    periods = parse_periods(_text(frame, "Period"))
    value_text = _text(frame, "Value")
    missing = value_text.isin(NOT_AVAILABLE)
    is_number = value_text.str.match(_NUMBER)
    values = pd.to_numeric(value_text.where(is_number), errors="coerce")
    level = _text(frame, "Level").str.lower()
    code = _text(frame, "Org Code")
    keys = _text(frame, "Metric").map(metric_key)
    batch["metric_key"] = keys
    first = pd.Timestamp(month)
    last = pd.Timestamp(month.replace(day=calendar.monthrange(month.year, month.month)[1]))
    earliest = np.where(keys.isin(SNAPSHOTS), first - pd.Timedelta(days=SNAPSHOT_LEAD_DAYS), first)
    checks: dict[str, pd.Series | np.ndarray] = {
        "check_period_unparseable": periods.isna().astype(int),
        "check_value_unreadable": (~missing & ~is_number).astype(int),
        "check_value_negative": (values < 0).fillna(False).astype(int),
        "check_period_in_future": (periods > pd.Timestamp(today)).astype(int),
        "check_rows_month": np.full(len(frame), _yyyymm(sitrep_file.rows_month or month)),
        "check_level_unknown": (~level.isin(LEVELS)).astype(int),
        "check_provider_code_format": ((level == "provider") & ~code.str.match(_TRUST_CODE)).astype(int),
        "check_outside_month": (periods.notna() & ((periods < earliest) | (periods > last))).astype(int),
        "check_count_not_whole": (keys.isin(DAILY_COUNTS) & values.notna() & (values % 1 != 0)).astype(int),
    }
    key_frame = pd.DataFrame({column: _text(frame, column) for column in _KEY})
    key_frame["Level"] = level
    with_value = key_frame.assign(Value=value_text)
    conflicting = (with_value.groupby(list(_KEY))["Value"].transform("nunique") > 1).astype(int)
    repeated = with_value.duplicated(keep="first")
    checks["check_conflicting_duplicate"] = conflicting
    checks["check_repeated_row"] = (repeated & (conflicting == 0)).astype(int)
    # more patients remaining than no longer meeting the criteria, the same trust and day
    day_org = pd.DataFrame({"period": periods, "code": code, "key": keys, "value": values})
    pivot = day_org[day_org["key"].isin(["nctr", "nctr_remaining"])].pivot_table(
        index=["period", "code"], columns="key", values="value", aggfunc="max"
    )
    exceeds = pd.Series(0, index=frame.index)
    if {"nctr", "nctr_remaining"} <= set(pivot.columns):
        bad = pivot[pivot["nctr_remaining"] > pivot["nctr"]].index
        if len(bad):
            rows = day_org.set_index(["period", "code"]).index.isin(bad) & (day_org["key"] == "nctr_remaining")
            exceeds[rows] = 1
    checks["check_remaining_exceeds_nctr"] = exceeds
    for name in CHECK_COLUMNS:
        batch[name] = np.asarray(checks[name])
    return batch


def row_flags(sitrep_file: SitrepFile, frame: pd.DataFrame, *, today: date | None = None) -> np.ndarray:
    """Each row's warnings (comma-separated rule ids), ``None`` for a clean row."""
    batch = _validation_batch(sitrep_file, frame, today or date.today())
    flags = np.full(len(frame), None, dtype=object)
    for column, rule in warning_checks().items():
        hit = batch[column].to_numpy() != 0
        for i in np.flatnonzero(hit):
            flags[i] = rule if flags[i] is None else f"{flags[i]},{rule}"
    return flags


def _missing_columns(sitrep_file: SitrepFile, header: Sequence[str]) -> list[ContractViolation]:
    missing = [column for column in HEADER if column not in header]
    return [
        ContractViolation(
            sitrep_file.source_file,
            1,
            column,
            "required_columns_present",
            f"the header has no {column!r} column (found: {', '.join(header)}); the publisher's file has "
            f"{', '.join(HEADER)}",
        )
        for column in missing
    ]


def _explainers(sitrep_file: SitrepFile, frame: pd.DataFrame) -> dict:
    def cell(column: str, what: str):
        def explain(_failure, row, _value):
            shown = frame.at[row, column] if column in frame.columns and row in frame.index else ""
            return [(column, f"{what} (found {shown!r})")]

        return explain

    return {
        "period_is_date": cell("Period", "Period is not a day written DD/MM/YYYY"),
        "value_readable": cell("Value", "Value is neither a number nor a not-available marker ([z], [x], -, blank)"),
        "value_not_negative": cell("Value", "Value is negative: no count or bed-day total can be"),
        "period_not_in_future": cell("Period", "Period is later than today"),
        "provider_code_format": cell("Org Code", "a Provider row's Org Code is not an ODS trust code"),
        "level_known": cell("Level", "Level is not National, Region, ICB or Provider"),
        "row_in_file_month": cell("Period", f"Period is outside {sitrep_file.period_month:%B %Y}"),
        "daily_count_whole": cell("Value", "a daily count of patients is not a whole number"),
        "no_conflicting_duplicates": cell(
            "Value", "the same Period, Level, Org Code and Metric appear again with another Value"
        ),
        "no_repeated_rows": cell("Metric", "the row repeats an earlier row word for word (counted once)"),
        "remaining_within_nctr": cell(
            "Value", "more patients remaining than no longer meeting the criteria to reside that day"
        ),
    }


def check_contract(
    sitrep_file: SitrepFile, frame: pd.DataFrame, *, today: date | None = None
) -> list[ContractViolation]:
    """The file's violations (errors first, then warnings), each naming file, row, column and rule."""
    header = list(frame.columns)
    missing = _missing_columns(sitrep_file, header)
    if missing:  # nothing else can be read in the right field
        return missing
    batch = _validation_batch(sitrep_file, frame, today or date.today())
    parameters = {
        "required_columns": list(HEADER),
        "file_month": [_yyyymm(sitrep_file.period_month)],
        "daily_counts": list(DAILY_COUNTS),
    }
    failures = validate_frame(batch, SUITE, parameters)
    labels = dict(CHECK_LABELS)

    def name_month(_failure) -> list[ContractViolation]:
        return [
            ContractViolation(
                sitrep_file.source_file,
                None,
                "Period",
                "name_matches_rows",
                f"the name says {sitrep_file.period_month:%B %Y} but the rows are for "
                f"{sitrep_file.rows_month:%B %Y}: the file is misnamed or not this month's",
            )
        ]

    def required(_failure) -> list[ContractViolation]:
        present = set(batch["metric_key"]) - {""}
        absent = [METRICS[key] for key in DAILY_COUNTS if key not in present]
        return [
            ContractViolation(
                sitrep_file.source_file,
                None,
                "Metric",
                "daily_counts_present",
                f"no row of the measure {text!r}: every monthly file carries it for every trust and day",
            )
            for text in absent
        ]

    violations = to_violations(
        sitrep_file.source_file,
        failures,
        column_labels=labels,
        explain=_explainers(sitrep_file, frame),
        table_explain={
            "required_columns_present": lambda _failure: _missing_columns(sitrep_file, header),
            "name_matches_rows": name_month,
            "daily_counts_present": required,
        },
    )
    return raw.errors_of(violations) + raw.warnings_of(violations)


# --------------------------------------------------------------------------------------------------------------
# Loading


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw_acute_long_stay.daily_discharge_sitrep`` and its ``file_loads`` if they are missing."""
    raw.ensure_file_loads(con, SCHEMA)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in RAW_COLUMNS)
    con.execute(f"create table if not exists {SCHEMA}.{TABLE} (\n    {columns}\n)")


def _incoming(con: duckdb.DuckDBPyConnection, sitrep_file: SitrepFile, frame: pd.DataFrame) -> tuple[str, str, list]:
    periods = parse_periods(_text(frame, "Period"))
    if periods.isna().any():
        raise ValueError(f"{sitrep_file.source_file}: Period does not parse; check the contract before loading")
    value_text = _text(frame, "Value")
    values = pd.to_numeric(value_text.where(~value_text.isin(NOT_AVAILABLE)), errors="raise")
    arrays = {
        "source_row": pa.array(frame.index.to_numpy(), pa.int32()),
        "period": pa.array(periods.dt.date.to_numpy(), pa.date32()),
        "metric_key": pa.array(
            [key or None for key in _text(frame, "Metric").map(metric_key)], pa.string(), from_pandas=True
        ),
        "value_published": pa.array(frame["Value"].to_numpy(object), pa.string()),
        "value": pa.array(values.to_numpy(dtype=np.float64), pa.float64(), mask=values.isna().to_numpy()),
        "row_flags": pa.array(row_flags(sitrep_file, frame), pa.string(), from_pandas=True),
    }
    for column in HEADER:
        name = RAW_NAMES[column]
        if name not in arrays:
            arrays[name] = pa.array(_text(frame, column).to_numpy(object), pa.string())
    view = f"incoming_acute_long_stay_{uuid.uuid4().hex}"
    con.register(view, pa.table(arrays))
    constants = {"period_month": "cast(? as date)", "source_file": "cast(? as varchar)"}
    selects = [f"{constants[name]} as {name}" if name in constants else name for name, _ in RAW_COLUMNS]
    return view, f"select {', '.join(selects)} from {view}", [sitrep_file.period_month, sitrep_file.source_file]


def load_file(con: duckdb.DuckDBPyConnection, sitrep_file: SitrepFile, frame: pd.DataFrame) -> LoadOutcome:
    """Load a file that passed its contract, idempotently (SPEC §2): the same bytes → ``unchanged``; bytes since
    replaced → ``superseded``; first file of its month → ``loaded``; a ``-v2``/``-revised`` file → ``replaced``
    (the month swapped in one transaction); an unmarked file with other figures → ``rejected``, with the same
    figures (a zip of a loaded CSV, say) → ``unchanged``."""
    ensure_raw_tables(con)
    month = sitrep_file.period_month

    def outcome(action: str, rows: int, message: str = "", violations=()) -> LoadOutcome:
        return LoadOutcome(action, sitrep_file.source_file, month, rows, sitrep_file.sha256, violations, message)

    plan = raw.plan_load(con, SCHEMA, month, sitrep_file.sha256, sitrep_file.is_revision)
    if plan.action in ("unchanged", "superseded"):
        return outcome(plan.action, len(frame), plan.message)
    view, select_sql, params = _incoming(con, sitrep_file, frame)
    try:
        if plan.action == "conflict":
            if raw.same_rows(con, f"{SCHEMA}.{TABLE}", month, select_sql, params, _FIGURES):
                return outcome("unchanged", len(frame), f"same figures as {plan.current.source_file}")
            violation = ContractViolation(
                sitrep_file.source_file,
                None,
                None,
                "revision_marked",
                f"{month:%B %Y} is already loaded from {plan.current.source_file} with different figures; NHS "
                "England re-issues a month as -v2 (-v3 …) or -revised, and only such a file replaces it",
            )
            return outcome("rejected", len(frame), violation.message, (violation,))
        audit = raw.AuditEntry(
            sitrep_file.source_file, month, sitrep_file.sha256, sitrep_file.file_bytes, sitrep_file.is_revision
        )
        rows = raw.write_partition(con, SCHEMA, TABLE, select_sql, params, audit, action=plan.action)
        return outcome(plan.action, rows, plan.message)
    finally:
        con.unregister(view)


def months_in_folder(folder: Path) -> list[date]:
    """The months the files in ``folder`` hold (from their names, else their rows), oldest first."""
    months = set()
    for path in discover_files(folder):
        month = month_in_file_name(path)
        if month is None:
            try:
                month = read_file(path)[0].period_month
            except ContractError:
                continue
        months.add(month)
    return sorted(months)


def ingest_folder(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    quarantine_dir: Path,
    *,
    move_rejected: bool,
    months: tuple[date, date] | None = None,
) -> list[IngestResult]:
    """Read, check and load every file in ``folder``; quarantine the ones that fail (one never stops the others)."""
    ensure_raw_tables(con)
    return raw.ingest_files(
        con,
        discover_files(folder),
        schema=SCHEMA,
        source=SOURCE,
        read=read_file,
        check=check_contract,
        load=load_file,
        month_in_name=month_in_file_name,
        quarantine_dir=Path(quarantine_dir),
        move=move_rejected,
        window=months,
    )


# --------------------------------------------------------------------------------------------------------------
# Re-checking what is loaded (the blocking asset check)


def frame_from_raw(con: duckdb.DuckDBPyConnection, period_month: date) -> tuple[SitrepFile, pd.DataFrame] | None:
    """The current load of ``period_month`` rebuilt as the file it came from (published header, text cells)."""
    ensure_raw_tables(con)
    load = raw.current_load(con, SCHEMA, period_month)
    if load is None:
        return None
    selects = ["source_row"]
    for i, column in enumerate(HEADER):
        name = RAW_NAMES[column]
        if name == "period":
            selects.append(f"coalesce(strftime(period, '%d/%m/%Y'), '') as c{i}")
        elif name == "value":
            selects.append(f"coalesce(value_published, '') as c{i}")
        else:
            selects.append(f"coalesce({name}, '') as c{i}")
    table = con.execute(
        f"select {', '.join(selects)} from {SCHEMA}.{TABLE} where period_month = ? order by source_row",
        [period_month],
    ).fetch_arrow_table()
    frame = table.drop(["source_row"]).to_pandas()
    frame.columns = list(HEADER)
    frame.index = pd.Index(table.column("source_row").to_numpy(), name="line")
    periods = parse_periods(frame["Period"]).dropna()
    rows_month = periods.dt.to_period("M").mode().iloc[0].to_timestamp().date() if len(periods) else None
    name = parse_file_name(Path(load.source_file.split("/")[0]).name)
    sitrep_file = SitrepFile(
        path=Path(load.source_file),
        period_month=period_month,
        sha256=load.sha256,
        source_file=load.source_file,
        file_bytes=0,
        name=name,
        rows_month=rows_month,
        is_revision=load.is_revision,
    )
    return sitrep_file, frame


def check_loaded_months(
    con: duckdb.DuckDBPyConnection, *, run_id: str | None = None
) -> dict[date, list[ContractViolation]]:
    """Re-run the contract on every current month not yet checked in ``audit.contract_checks`` (once per load)."""
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
        sitrep_file, frame = rebuilt
        violations = raw.errors_of(check_contract(sitrep_file, frame))  # warnings were loaded and flagged on purpose
        raw.forget_frame(frame)
        con.execute(
            "insert into audit.contract_checks values (?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                SOURCE,
                month,
                sitrep_file.sha256,
                not violations,
                len(violations),
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
        outcomes[month] = violations
    return outcomes
