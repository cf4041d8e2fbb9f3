"""Published mental health lengths of stay: NHS England's MHSDS monthly data file → ``raw_mhsds_los``.

For users with no patient-level access: the length-of-stay measures NHS England publishes per provider in the
main "Mental Health Services Monthly Statistics" data file (``MHSDS Data_AprPerf_2026.csv``, zipped). What the
measures are (MHS140–MHS142 and their means and medians, the 60+/90+ day counts MHS100–MHS105, MHS156/a/b for
18+ discharges, bed days and mean, all **rolling quarters**; MHS24/MHS25 monthly bed days), their cohorts, bed
types and suppression, with the publisher's sources, is in :mod:`orchestration.sources.mhsds_los_layout`.

The file is the whole main file: hundreds of measures and a dozen breakdowns. The feed takes the
length-of-stay measures at ``England`` and ``Provider`` level and **counts, not rejects**, every other row
(``raw_mhsds_los.rows_not_taken``: per month, measure and breakdown). Reading, precedence and loading are the
out-of-area placements feed's (:mod:`orchestration.sources.oap`, the same 11-column layout): ``read_oap_file``,
``header_violations``, ``compare_publications`` (Provisional < Performance < Adhoc < Final; a ``_v2`` replaces its
status), ``load_publication`` (idempotent by SHA-256 and by figures, a month replaced in one transaction) and
``recheck_loaded_months``. The file contract is ``expectations/mhsds_los_monthly_statistics.json``: the
file-level rules (header, dates, one month, one status, name agrees, the England 18+ rows present) are critical
and quarantine the file; the taken rows' values must read (``*`` or a number, counts whole and, below England,
rounded to 5); a measure name worded differently, a provider code no ODS code looks like, a suppressed England
figure, a length-of-stay measure published for another period than its own, or a repeated row are warnings:
loaded, flagged in ``row_flags``, counted.

``*`` is kept as published: ``measure_value`` NULL, ``is_suppressed`` true, never zero.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from functools import cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from orchestration import raw
from orchestration.contracts import EXPECTATIONS_DIR, to_violations, validate_frame
from orchestration.raw import ContractViolation, IngestResult, LoadOutcome
from orchestration.sources import oap
from orchestration.sources.mhsds_los_layout import (
    COUNT_MEASURES,
    LOS_MEASURES,
    MEASURE_NAMES,
    MEASURE_PERIOD,
    REQUIRED_MEASURES,
    TAKEN_BREAKDOWNS,
)
from orchestration.sources.oap_layout import (
    ENGLAND,
    HEADER,
    MAIN,
    ORG_CODE,
    PERIOD_TYPES,
    STATUS_TOKENS,
    STATUSES,
    SUPPRESSED,
    file_name,
    parse_file_name,
)

SOURCE = "mhsds_los"
SCHEMA = "raw_mhsds_los"
TABLE = "monthly_statistics"
NOT_TAKEN = "rows_not_taken"
SUITE = "mhsds_los_monthly_statistics"
EXAMPLE_NAME = "MHSDS Data_AprPerf_2026.csv"

RAW_NAMES = oap.RAW_NAMES
#: ``raw_mhsds_los.monthly_statistics``: the long layout's raw columns (:data:`oap.RAW_COLUMNS`), the same table
#: shape as ``raw_oap.monthly_statistics``, so one rebuild and one staging shape serve both.
RAW_COLUMNS = oap.RAW_COLUMNS
_FIGURES = tuple(
    name for name, _ in RAW_COLUMNS if name not in ("period_month", "source_file", "source_row", "row_flags")
)

CHECK_COLUMNS: tuple[str, ...] = (
    "check_blank_required_cells",
    "check_unparseable_dates",
    "check_period_type",
    "check_end_not_month_end",
    "check_end_month",
    "check_name_month",
    "check_name_status",
    "check_name_family",
    "check_value_unreadable",
    "check_value_negative",
    "check_count_not_whole",
    "check_count_not_rounded",
    "check_conflicting_duplicate",
    "check_measure_name",
    "check_measure_period",
    "check_provider_code_format",
    "check_national_suppressed",
    "check_repeated_row",
    "check_england_los",
)
CHECK_LABELS: dict[str, str] = {
    "check_blank_required_cells": "BREAKDOWN, PRIMARY_LEVEL, SECONDARY_LEVEL, MEASURE_ID",
    "check_unparseable_dates": "REPORTING_PERIOD_START, REPORTING_PERIOD_END",
    "check_period_type": "REPORTING_PERIOD_START",
    "check_end_not_month_end": "REPORTING_PERIOD_END",
    "check_end_month": "REPORTING_PERIOD_END",
    "check_name_month": "REPORTING_PERIOD_END",
    "check_name_status": "STATUS",
    "check_name_family": "file name",
    "check_value_unreadable": "MEASURE_VALUE",
    "check_value_negative": "MEASURE_VALUE",
    "check_count_not_whole": "MEASURE_VALUE",
    "check_count_not_rounded": "MEASURE_VALUE",
    "check_conflicting_duplicate": ", ".join(oap.KEY_COLUMNS),
    "check_measure_name": "MEASURE_NAME",
    "check_measure_period": "REPORTING_PERIOD_START",
    "check_provider_code_format": "PRIMARY_LEVEL",
    "check_national_suppressed": "MEASURE_VALUE",
    "check_repeated_row": ", ".join(oap.KEY_COLUMNS),
    "check_england_los": "MEASURE_ID",
}


@cache
def _suite() -> dict:
    return json.loads((EXPECTATIONS_DIR / f"{SUITE}.json").read_text(encoding="utf-8"))


@cache
def rule_severities() -> dict[str, str]:
    """Each rule of the suite → ``error`` (critical) or ``warn`` (warning)."""
    found = {e["meta"]["rule"]: "warn" if e.get("severity") == "warning" else "error" for e in _suite()["expectations"]}
    for rule, spec in _suite()["meta"].get("load_rules", {}).items():
        found[rule] = "warn" if spec["severity"] == "warning" else "error"
    return found


@cache
def warning_checks() -> dict[str, str]:
    """``check_*`` column → rule, for the suite's warnings (rows whose column is not 0 carry the rule)."""
    return {
        e["kwargs"]["column"]: e["meta"]["rule"]
        for e in _suite()["expectations"]
        if e.get("severity") == "warning" and str(e["kwargs"].get("column", "")).startswith("check_")
    }


# --------------------------------------------------------------------------------------------------------------
# Files


def read_mhsds_los_file(path: Path) -> tuple[oap.OapFile, pd.DataFrame]:
    """Read a main MHSDS data file as text (the long layout's reader, :func:`oap.read_oap_file`)."""
    return oap.read_oap_file(path, example_name=EXAMPLE_NAME)


def discover_files(folder: Path) -> list[Path]:
    """The ``.csv``/``.zip`` files of ``folder`` by month and precedence (:func:`oap.discover_oap_files`)."""
    return oap.discover_oap_files(folder)


def month_in_file_name(path: Path) -> date | None:
    name = parse_file_name(path)
    return name.month if name else None


def months_in_folder(folder: Path) -> list[date]:
    """The months the files in ``folder`` hold (from their names, else from their rows), oldest first."""
    months = set()
    for path in discover_files(folder):
        month = month_in_file_name(path)
        if month is None:
            try:
                month = read_mhsds_los_file(path)[0].period_month
            except raw.ContractError:
                continue
        months.add(month)
    return sorted(months)


def sample_file_name(month: date, status: str = "Performance", *, version: int = 1, suffix: str = ".csv") -> str:
    """The publisher's name of the main file: ``MHSDS Data_AprPerf_2026.csv`` (``_v2`` for a re-publication)."""
    return file_name(month, status, version=version, suffix=suffix, family=MAIN)


# --------------------------------------------------------------------------------------------------------------
# The contract's derived checks


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    series = oap.column_of(frame, column)
    return series.str.strip() if series is not None else pd.Series([""] * len(frame), index=frame.index, dtype=object)


def taken_mask(frame: pd.DataFrame) -> np.ndarray:
    """Rows the feed loads: a length-of-stay measure at England or Provider level."""
    return (_text(frame, "MEASURE_ID").isin(LOS_MEASURES) & _text(frame, "BREAKDOWN").isin(TAKEN_BREAKDOWNS)).to_numpy(
        bool
    )


@raw.once_per_frame
def derived_checks(mfile: oap.OapFile, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every ``check_*`` column of the suite (0, or a value in the rule's set, where a rule holds).

    File-level rules look at every row; value rules only at the rows the feed takes (the other measures are
    counted, not read, so a quirk in one of them never stops the length-of-stay figures)."""
    month = mfile.period_month
    yyyymm = float(month.year * 100 + month.month)
    n = len(frame)
    checks: dict[str, np.ndarray] = {column: np.zeros(n) for column in CHECK_COLUMNS}
    checks["check_period_type"] = np.full(n, "month", dtype=object)
    checks["check_end_month"] = np.full(n, yyyymm)

    blank = np.zeros(n)
    for column in ("BREAKDOWN", "PRIMARY_LEVEL", "SECONDARY_LEVEL", "MEASURE_ID"):
        series = oap.column_of(frame, column)
        if series is not None:
            blank += (series.str.strip() == "").to_numpy()
    checks["check_blank_required_cells"] = blank

    starts_text, ends_text = (
        oap.column_of(frame, "REPORTING_PERIOD_START"),
        oap.column_of(frame, "REPORTING_PERIOD_END"),
    )
    starts = oap.parse_dates(starts_text) if starts_text is not None else None
    ends = oap.parse_dates(ends_text) if ends_text is not None else None
    unparseable = np.zeros(n)
    for parsed in (starts, ends):
        if parsed is not None:
            unparseable += parsed.isna().to_numpy()
    checks["check_unparseable_dates"] = unparseable
    kinds = pd.Series([None] * n, index=frame.index, dtype=object)
    if ends is not None:
        ok = ends.notna().to_numpy()
        checks["check_end_month"] = np.where(ok, (ends.dt.year * 100 + ends.dt.month).to_numpy(np.float64), yyyymm)
        checks["check_end_not_month_end"] = np.where(ok, ~ends.dt.is_month_end.fillna(True).to_numpy(bool), 0.0)
        if starts is not None:
            both = ok & starts.notna().to_numpy()
            back = (ends.dt.year - starts.dt.year) * 12 + ends.dt.month - starts.dt.month
            kinds = back.map(PERIOD_TYPES).where((starts.dt.day == 1) & (starts <= ends))
            checks["check_period_type"] = np.where(both, kinds.fillna("not an allowed start").to_numpy(object), "month")

    name = mfile.name
    if name is not None:
        checks["check_name_month"] = np.full(n, float(name.month != month))
        checks["check_name_status"] = np.full(n, float(mfile.status in STATUSES and name.status != mfile.status))
        checks["check_name_family"] = np.full(n, float(name.family != MAIN))

    taken = taken_mask(frame)
    measures = _text(frame, "MEASURE_ID")
    breakdowns = _text(frame, "BREAKDOWN")
    national = (breakdowns == ENGLAND).to_numpy(bool)
    is_count = measures.isin(COUNT_MEASURES).to_numpy(bool)
    value_text = _text(frame, "MEASURE_VALUE")
    number_like = value_text.str.match(oap._NUMBER).to_numpy(bool)
    numbers = np.nan_to_num(pd.to_numeric(value_text.where(number_like), errors="coerce").to_numpy(np.float64))
    star = (value_text == SUPPRESSED).to_numpy(bool)
    if oap.column_of(frame, "MEASURE_VALUE") is not None:
        checks["check_value_unreadable"] = (taken & ~(star | number_like)).astype(np.float64)
        checks["check_value_negative"] = (taken & number_like & (numbers < 0)).astype(np.float64)
        whole = ~number_like | (np.floor(numbers) == numbers)
        checks["check_count_not_whole"] = (taken & is_count & ~whole).astype(np.float64)
        rounded = ~number_like | ((numbers % 5 == 0) & (numbers >= 5))
        checks["check_count_not_rounded"] = (
            taken & is_count & ~national & whole & (~number_like | (numbers >= 0)) & ~rounded
        ).astype(np.float64)
        checks["check_national_suppressed"] = (taken & national & star).astype(np.float64)
        present = all(oap.column_of(frame, column) is not None for column in oap.KEY_COLUMNS)
        if present:
            keys = pd.DataFrame({column: _text(frame, column) for column in oap.KEY_COLUMNS})
            keys["_value"] = value_text
            distinct = keys.groupby(list(oap.KEY_COLUMNS), sort=False)["_value"].transform("nunique").to_numpy()
            checks["check_conflicting_duplicate"] = (taken & (distinct > 1)).astype(np.float64)
            repeated = keys.duplicated(keep="first").to_numpy(bool)
            checks["check_repeated_row"] = (taken & repeated & (distinct <= 1)).astype(np.float64)

    names = _text(frame, "MEASURE_NAME")
    checks["check_measure_name"] = (taken & (names != measures.map(MEASURE_NAMES).fillna(names)).to_numpy(bool)).astype(
        np.float64
    )
    expected_period = measures.map(MEASURE_PERIOD)
    checks["check_measure_period"] = (
        taken & kinds.notna().to_numpy(bool) & (kinds != expected_period).to_numpy(bool)
    ).astype(np.float64)
    codes = _text(frame, "PRIMARY_LEVEL")
    provider = (breakdowns == "Provider").to_numpy(bool)
    checks["check_provider_code_format"] = (
        taken & provider & ~codes.str.fullmatch(ORG_CODE).fillna(False).to_numpy(bool)
    ).astype(np.float64)
    # England rows of the required measures: the distinct-values rule reads this column
    england_los = national & measures.isin(REQUIRED_MEASURES).to_numpy(bool)
    checks["check_england_los"] = np.where(england_los, measures.to_numpy(object), "").astype(object)
    return checks


def row_flags(mfile: oap.OapFile, frame: pd.DataFrame) -> np.ndarray:
    """Per row, the warnings it carries (``"rule,rule"``), or ``None``."""
    checks = derived_checks(mfile, frame)
    flags = np.full(len(frame), "", dtype=object)
    for column, rule in warning_checks().items():
        hit = checks[column] != 0
        flags = np.where(hit, np.where(flags == "", rule, flags + "," + rule), flags)
    return np.where(flags == "", None, flags)


def contract_report(mfile: oap.OapFile, frame: pd.DataFrame, *, today: date | None = None) -> oap.ContractReport:
    """Check a read file against the contract, split by severity; each violation names file, line, column, rule."""
    month = mfile.period_month
    header = list(frame.columns)
    columns: dict[str, object] = {}
    for position, published in enumerate(frame.columns):
        column = RAW_NAMES.get(published, f"unpublished: {published}")
        if column in columns:
            column = f"{published} (column {position + 1})"
        columns[column] = frame.iloc[:, position].to_numpy(dtype=object)
    checks = derived_checks(mfile, frame)
    batch = pd.DataFrame({**columns, **checks}, index=frame.index)
    latest = today or date.today()
    status = mfile.status if mfile.status in STATUSES else None
    parameters = {
        "expected_columns": [RAW_NAMES[column] for column in HEADER] + list(CHECK_COLUMNS),
        "file_month": [month.year * 100 + month.month],
        "latest_month": latest.year * 100 + latest.month,
        "file_status": [status] if status else list(STATUSES),
    }
    failures = [f for f in validate_frame(batch, SUITE, parameters) if not (f.missing_columns and f.error)]
    labels = {raw_name: published for published, raw_name in RAW_NAMES.items()}
    labels.update(CHECK_LABELS)
    severities = rule_severities()

    def name_violation(what: str):
        def explain(_failure) -> list[ContractViolation]:
            name = mfile.name
            text = {
                "period": f"the file name says {name.month:%B %Y} but its REPORTING_PERIOD_END is in {month:%B %Y}",
                "status": f"the file name says {STATUS_TOKENS[name.status]} ({name.status}) but its rows' STATUS is "
                f"{mfile.status}",
                "family": f"the file name is of the MHSDS '{name.family}' file, not the main monthly data file "
                f"({EXAMPLE_NAME}) that carries the length-of-stay measures",
            }[what]
            column = {"period": "REPORTING_PERIOD_END", "status": "STATUS", "family": None}[what]
            return [ContractViolation(mfile.source_file, None, column, f"name_matches_{what}", text)]

        return explain

    def missing_england(_failure) -> list[ContractViolation]:
        present = set(_text(frame, "MEASURE_ID")[(_text(frame, "BREAKDOWN") == ENGLAND).to_numpy(bool)])
        missing = [m for m in REQUIRED_MEASURES if m not in present]
        return [
            ContractViolation(
                mfile.source_file,
                None,
                "MEASURE_ID",
                "england_los_measures_present",
                f"the file has no England row of {', '.join(missing)}, which every main MHSDS monthly data file has "
                "(18+ discharges, bed days and mean length of stay): it is another publication or a truncated one",
            )
        ]

    found: dict[str, list[ContractViolation]] = {}
    for severity in ("error", "warn"):
        chosen = [f for f in failures if severities.get(f.rule, f.severity) == severity]
        found[severity] = to_violations(
            mfile.source_file,
            chosen,
            column_labels=labels,
            table_explain={
                "header_matches_layout": lambda _f: oap.header_violations(mfile.source_file, header),
                "name_matches_period": name_violation("period"),
                "name_matches_status": name_violation("status"),
                "name_matches_family": name_violation("family"),
                "england_los_measures_present": missing_england,
            },
        )
    if header != list(HEADER) and not any(v.rule == "header_matches_layout" for v in found["error"]):
        found["error"][:0] = oap.header_violations(mfile.source_file, header)
    return oap.ContractReport(
        errors=[oap._with_severity(v, "error") for v in found["error"]],
        warnings=[oap._with_severity(v, "warn") for v in found["warn"]],
    )


def check_contract(mfile: oap.OapFile, frame: pd.DataFrame, *, today: date | None = None) -> list[ContractViolation]:
    report = contract_report(mfile, frame, today=today)
    return report.errors + report.warnings


# --------------------------------------------------------------------------------------------------------------
# Loading


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw_mhsds_los.monthly_statistics``, ``.rows_not_taken`` and ``.file_loads`` if missing."""
    raw.ensure_file_loads(con, SCHEMA)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in RAW_COLUMNS)
    con.execute(f"create table if not exists {SCHEMA}.{TABLE} (\n    {columns}\n)")
    con.execute(
        f"""create table if not exists {SCHEMA}.{NOT_TAKEN} (
            period_month date, source_file varchar, measure_id varchar, breakdown varchar, row_count integer)"""
    )


def _incoming(con: duckdb.DuckDBPyConnection, mfile: oap.OapFile, frame: pd.DataFrame) -> tuple[str, str, list]:
    """Register the taken rows with DuckDB, typed; (view, SELECT of raw rows, parameters)."""
    if list(frame.columns) != list(HEADER):
        raise ValueError(f"{mfile.source_file}: the header is not the published layout; check the contract first")
    flags = row_flags(mfile, frame)
    taken = taken_mask(frame)
    rows, flags = frame[taken], flags[taken]
    starts, ends = oap.parse_dates(rows["REPORTING_PERIOD_START"]), oap.parse_dates(rows["REPORTING_PERIOD_END"])
    value_text = rows["MEASURE_VALUE"].str.strip()
    suppressed = (value_text == SUPPRESSED).to_numpy(bool)
    values = pd.to_numeric(value_text.where(~suppressed), errors="raise").to_numpy(dtype=np.float64)
    back = (ends.dt.year - starts.dt.year) * 12 + ends.dt.month - starts.dt.month
    arrays = {
        "source_row": pa.array(rows.index.to_numpy(), pa.int32()),
        "reporting_period_start": pa.array(starts.dt.date.to_numpy(), pa.date32()),
        "reporting_period_end": pa.array(ends.dt.date.to_numpy(), pa.date32()),
        "period_type": pa.array(back.map(PERIOD_TYPES).to_numpy(object), pa.string()),
        "measure_value_published": pa.array(rows["MEASURE_VALUE"].to_numpy(object), pa.string()),
        "measure_value": pa.array(values, pa.float64(), mask=suppressed),
        "is_suppressed": pa.array(suppressed, pa.bool_()),
        "row_flags": pa.array(flags, pa.string(), from_pandas=True),
    }
    for column in HEADER:
        name = RAW_NAMES[column]
        if name not in arrays:
            arrays[name] = pa.array(rows[column].to_numpy(object), pa.string())
    view = f"incoming_mhsds_los_{uuid.uuid4().hex}"
    con.register(view, pa.table(arrays))
    constants = {"period_month": "cast(? as date)", "source_file": "cast(? as varchar)"}
    selects = [f"{constants[name]} as {name}" if name in constants else name for name, _ in RAW_COLUMNS]
    return view, f"select {', '.join(selects)} from {view}", [mfile.period_month, mfile.source_file]


def _count_not_taken(con: duckdb.DuckDBPyConnection, mfile: oap.OapFile, frame: pd.DataFrame) -> str:
    """Replace the month's count of rows not taken (other measures, other breakdowns); the text for the message."""
    rest = frame[~taken_mask(frame)]
    counts = (
        pd.DataFrame({"measure_id": _text(rest, "MEASURE_ID"), "breakdown": _text(rest, "BREAKDOWN")})
        .value_counts()
        .rename("row_count")
        .reset_index()
    )
    counts.insert(0, "source_file", mfile.source_file)
    counts.insert(0, "period_month", mfile.period_month)
    con.execute(f"delete from {SCHEMA}.{NOT_TAKEN} where period_month = ?", [mfile.period_month])
    con.register("not_taken_counts", counts)
    try:
        con.execute(f"insert into {SCHEMA}.{NOT_TAKEN} by name select * from not_taken_counts")
    finally:
        con.unregister("not_taken_counts")
    flagged = con.execute(
        f"""select flag, count(*) from (
                select unnest(string_split(row_flags, ',')) as flag from {SCHEMA}.{TABLE}
                where period_month = ? and row_flags is not null)
            group by flag order by flag""",
        [mfile.period_month],
    ).fetchall()
    text = f"; {len(rest)} rows of other measures or breakdowns counted, not loaded"
    if flagged:
        text += "; rows loaded and flagged: " + ", ".join(f"{flag} {count}" for flag, count in flagged)
    return text


def load_file(con: duckdb.DuckDBPyConnection, mfile: oap.OapFile, frame: pd.DataFrame) -> LoadOutcome:
    """Load a file that passed its contract (taken rows into ``monthly_statistics``, the rest counted), through
    the long layout's load (:func:`oap.load_publication`: unchanged / loaded / replaced / superseded / rejected)."""
    ensure_raw_tables(con)
    return oap.load_publication(
        con,
        mfile,
        frame,
        schema=SCHEMA,
        table=TABLE,
        incoming=_incoming,
        figures=_FIGURES,
        after_write=lambda _month: _count_not_taken(con, mfile, frame),
    )


def ingest_folder(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    quarantine_dir: Path,
    *,
    move_rejected: bool,
    months: tuple[date, date] | None = None,
) -> list[IngestResult]:
    """Read, check and load every main MHSDS file in ``folder``; quarantine the ones that fail."""
    ensure_raw_tables(con)
    return raw.ingest_files(
        con,
        discover_files(folder),
        schema=SCHEMA,
        source=SOURCE,
        read=read_mhsds_los_file,
        check=check_contract,
        load=load_file,
        month_in_name=month_in_file_name,
        quarantine_dir=Path(quarantine_dir),
        move=move_rejected,
        window=months,
    )


def check_loaded_months(
    con: duckdb.DuckDBPyConnection, *, run_id: str | None = None
) -> dict[date, list[ContractViolation]]:
    """Re-run the contract on every current month not yet checked (what the warehouse holds, not the file)."""
    ensure_raw_tables(con)
    return oap.recheck_loaded_months(
        con,
        source=SOURCE,
        schema=SCHEMA,
        rebuild=lambda c, month: oap.frame_from_raw(c, month, schema=SCHEMA, table=TABLE),
        errors=lambda mfile, frame: contract_report(mfile, frame).errors,
        run_id=run_id,
    )
