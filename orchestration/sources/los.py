"""Lengths of stay: read patient-level spell extracts, check their contract, load them into ``raw_los_*``.

Two sources share this module, told apart by a ``source`` argument (SPEC §3.3):

* ``los_mh``: no longer here; MHSDS submissions are read as their tables by :mod:`orchestration.sources.los_mh`.
* ``los_acute``: acute admitted patient care spells, a HES APC style extract. Files
  ``HES_APC_<YYYY>-<MM>[-revised].csv|.zip``; loaded into ``raw_los_acute.apc_spells``.

A monthly file is a provider's monthly submission: every spell with activity in the month, i.e. spells discharged
in the month and spells still open at its end (blank discharge date). Length of stay = discharge date − start
date, in days. The file's month comes from its name when the name follows the pattern, else from the latest
discharge or start date in its rows.

The pattern is RTT's (:mod:`orchestration.sources.rtt`): ``discover_files`` → ``read_file`` → ``check_contract``
(the GX suite ``expectations/los_mh_hospital_spells.json`` or ``los_acute_apc_spells.json``, with rules that
span cells computed here as ``check_*`` columns) → ``load_file`` (idempotent per month) or quarantine, and
``ingest_folder`` running that loop so one bad file never stops the others.

Two levels of problems:

* **File contract** (the file is quarantined, nothing loads): exact header; dates ``YYYY-MM-DD`` (discharge may be
  blank); required identifiers present; numbers whole; IMD decile 1-10 or blank; spell id unique in the file;
  discharges in the file's month, starts by its end, nothing in the future; readable at all (not empty, HTML,
  non-UTF-8 or a truncated zip: :class:`~orchestration.raw.ContractError` naming the file).
* **Row problems** (the row IS loaded, flagged in ``row_problem`` and counted, never dropped): one rule name per
  row, first match in this order: ``unknown_provider`` (provider code not in ``seeds/reference/organisations.csv``),
  ``discharged_before_admission``, ``spell_duration_disagrees`` (acute: SPELDUR ≠ DISDATE − ADMIDATE, or SPELDUR
  filled for an open spell / blank for a closed one). Counts: the load's message and :func:`row_problem_counts`.

The raw tables hold patient-level, pseudonymised rows: they live in the build database only and must never be
copied to the serving database (SPEC §9).
"""

from __future__ import annotations

import csv
import difflib
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache, partial
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from orchestration import raw
from orchestration.contracts import to_violations, validate_frame
from orchestration.raw import ContractError, ContractViolation, IngestResult, LoadOutcome

log = logging.getLogger(__name__)

REFERENCE_ORGANISATIONS = Path(__file__).resolve().parents[2] / "seeds" / "reference" / "organisations.csv"

#: Row problems, in the order they are tested (a row carries the first that applies).
ROW_PROBLEMS: tuple[str, ...] = ("unknown_provider", "discharged_before_admission", "spell_duration_disagrees")

#: Derived columns the suites check, appended to the validated batch in this order.
CHECK_COLUMNS: tuple[str, ...] = (
    "check_blank_required_cells",
    "check_unreadable_dates",
    "check_non_numeric_cells",
    "check_start_month",
    "check_discharge_month",
)


# --------------------------------------------------------------------------------------------------------------
# Layouts


@dataclass(frozen=True)
class LosLayout:
    """One source's published layout and where it lands in the raw layer.

    ``columns`` maps each published column, in header order, to ``(raw name, raw type)``.
    """

    source: str
    schema: str
    table: str
    suite: str
    file_prefix: str
    columns: tuple[tuple[str, str, str], ...]
    spell_id: str
    person_id: str
    provider: str
    start: str
    discharge: str
    imd: str
    duration: str | None = None

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(published for published, _, _ in self.columns)

    @property
    def raw_names(self) -> dict[str, str]:
        return {published: name for published, name, _ in self.columns}

    @property
    def raw_columns(self) -> tuple[tuple[str, str], ...]:
        """The raw table's columns, in order."""
        return (
            ("period_month", "date"),
            ("source_file", "varchar"),
            ("source_row", "integer"),
            *((name, kind) for _, name, kind in self.columns),
            ("row_problem", "varchar"),
        )

    @property
    def numeric(self) -> tuple[str, ...]:
        return tuple(column for column in (self.duration, self.imd) if column)

    @property
    def required(self) -> tuple[str, ...]:
        return (self.spell_id, self.person_id, self.provider, self.start)

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}"


ACUTE = LosLayout(
    source="los_acute",
    schema="raw_los_acute",
    table="apc_spells",
    suite="los_acute_apc_spells",
    file_prefix="HES_APC_",
    columns=(
        ("EPIKEY", "epikey", "varchar"),
        ("ENCRYPTED_HESID", "encrypted_hesid", "varchar"),
        ("PROCODE3", "procode3", "varchar"),
        ("ADMIDATE", "admission_date", "date"),
        ("DISDATE", "discharge_date", "date"),
        ("ADMIMETH", "admission_method", "varchar"),
        ("CLASSPAT", "patient_classification", "varchar"),
        ("TRETSPEF", "treatment_specialty", "varchar"),
        ("SPELDUR", "spell_duration_days", "integer"),
        ("IMD04_DECILE", "imd_decile", "integer"),
        ("ETHNOS", "ethnicity", "varchar"),
    ),
    spell_id="EPIKEY",
    person_id="ENCRYPTED_HESID",
    provider="PROCODE3",
    start="ADMIDATE",
    discharge="DISDATE",
    imd="IMD04_DECILE",
    duration="SPELDUR",
)

#: Both length-of-stay feeds have modules of their own, in their real layouts: HES APC / SUS+ APC episodes
#: (:mod:`orchestration.sources.los_acute`) and MHSDS MHS501 + MHS502 + MHS001 (:mod:`orchestration.sources.los_mh`).
#: ``ACUTE`` is the old one-row-per-spell layout, kept only as the shape the national benchmark's volumes are drawn in.
LAYOUTS: dict[str, LosLayout] = {ACUTE.source: ACUTE}
SOURCES: tuple[str, ...] = tuple(LAYOUTS)


def layout(source: str) -> LosLayout:
    """The layout of ``los_acute`` (``los_mh``: :mod:`orchestration.sources.los_mh`)."""
    try:
        return LAYOUTS[source]
    except KeyError:
        raise ValueError(f"unknown length-of-stay source {source!r}; expected one of {SOURCES}") from None


def file_name(source: str, month: date, revised: bool = False) -> str:
    """The file name of a month's extract: ``MHS501_2024-04.csv`` / ``HES_APC_2024-04-revised.csv``."""
    return f"{layout(source).file_prefix}{month:%Y-%m}{'-revised' if revised else ''}.csv"


@lru_cache(maxsize=4)
def known_providers(path: Path = REFERENCE_ORGANISATIONS) -> frozenset[str]:
    """Organisation codes in ``seeds/reference/organisations.csv`` (read directly, any type, open or closed)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return frozenset(row["org_code"].strip() for row in csv.DictReader(handle) if row.get("org_code"))


# --------------------------------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class LosFile:
    """A delivered extract, as far as can be told before checking its rows."""

    source: str
    path: Path
    period_month: date
    is_revision: bool
    sha256: str
    source_file: str = ""
    file_bytes: int = 0
    month_from_name: bool = True

    def __post_init__(self) -> None:
        if not self.source_file:
            object.__setattr__(self, "source_file", Path(self.path).name)


def _stem(path: Path) -> str:
    name = Path(path).name
    for suffix in (".zip", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


@lru_cache(maxsize=8)
def _name_pattern(source: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(layout(source).file_prefix)}(\d{{4}})-(\d{{2}})(-revised)?$", re.IGNORECASE)


def month_in_file_name(source: str, path: Path) -> date | None:
    """The month a file name states (``MHS501_2024-04.zip`` → 2024-04-01), or ``None``."""
    match = _name_pattern(source).match(_stem(Path(path)))
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    return date(year, month, 1) if 1 <= month <= 12 else None


def is_revision_name(path: Path) -> bool:
    return _stem(Path(path)).lower().endswith("-revised")


def discover_files(source: str, folder: Path) -> list[Path]:
    """The ``.csv``/``.zip`` files directly in ``folder``, by month, each original before its ``-revised``;
    files whose names state no month come last, by name."""
    layout(source)
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in (".csv", ".zip")
    ]
    return sorted(
        found, key=lambda path: (month_in_file_name(source, path) or date.max, is_revision_name(path), path.name)
    )


def read_file(source: str, path: Path) -> tuple[LosFile, pd.DataFrame]:
    """Read a delivered extract as text (every cell a string, indexed by CSV line number).

    Raises :class:`ContractError` for a file that is not a readable CSV (empty, header only, HTML, corrupt zip,
    not UTF-8, ragged rows) or whose month can be told neither from its name nor from its dates.
    """
    spec = layout(source)
    path = Path(path)
    source_file, data = raw.open_source_file(path)
    frame = raw.read_csv_as_strings(source_file, data)
    month = month_in_file_name(source, path)
    from_name = month is not None
    if month is None:
        month = _month_from_rows(spec, source_file, frame)
    los_file = LosFile(
        source=source,
        path=path,
        period_month=month,
        is_revision=is_revision_name(path),
        sha256=raw.file_sha256(path),
        source_file=source_file,
        file_bytes=path.stat().st_size,
        month_from_name=from_name,
    )
    return los_file, frame


def _column(frame: pd.DataFrame, name: str) -> pd.Series | None:
    positions = [i for i, column in enumerate(frame.columns) if column == name]
    return frame.iloc[:, positions[0]] if positions else None


_DATE_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _parse_dates(series: pd.Series | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dates as ``datetime64[D]`` (NaT when blank or unreadable), a blank mask and an unreadable mask."""
    if series is None:
        return np.full(n, np.datetime64("NaT"), "datetime64[D]"), np.ones(n, bool), np.zeros(n, bool)
    text = series.astype(str).str.strip()
    blank = (text == "").to_numpy()
    shaped = text.str.match(_DATE_TEXT).to_numpy()
    parsed = pd.to_datetime(text.where(shaped), format="%Y-%m-%d", errors="coerce")
    values = parsed.to_numpy(dtype="datetime64[D]")
    unreadable = ~blank & np.isnat(values)
    return values, blank, unreadable


def _parse_ints(series: pd.Series | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole numbers as float64 (NaN when blank or unreadable) and a mask of unreadable cells."""
    if series is None:
        return np.full(n, np.nan), np.zeros(n, bool)
    text = series.astype(str).str.strip()
    blank = (text == "").to_numpy()
    whole = text.str.fullmatch(r"[-+]?[0-9]{1,9}").to_numpy()
    values = pd.to_numeric(text.where(whole), errors="coerce").to_numpy(dtype=np.float64)
    return values, ~blank & ~whole


def _month_from_rows(spec: LosLayout, source_file: str, frame: pd.DataFrame) -> date:
    n = len(frame)
    latest = []
    for column in (spec.discharge, spec.start):
        values = _parse_dates(_column(frame, column), n)[0]
        if (~np.isnat(values)).any():
            latest.append(values[~np.isnat(values)].max())
    if not latest:
        raise ContractError(
            source_file,
            f"cannot tell which month the file holds: its name does not follow the pattern "
            f"(e.g. {spec.file_prefix}2024-04.csv) and no {spec.discharge} or {spec.start} parses as YYYY-MM-DD",
            rule="month_determinable",
        )
    day = pd.Timestamp(max(latest)).date()
    return day.replace(day=1)


# --------------------------------------------------------------------------------------------------------------
# Parsing shared by the contract and the load


@dataclass
class _Parsed:
    """The file's cells as values, the masks the contract needs, and each row's problem (or None)."""

    frame: pd.DataFrame
    start: np.ndarray
    discharge: np.ndarray
    unreadable_dates: dict[str, np.ndarray]
    numbers: dict[str, np.ndarray]
    unreadable_numbers: dict[str, np.ndarray]
    blank_required: dict[str, np.ndarray]
    row_problem: np.ndarray

    def position(self, line: int) -> int:
        return int(self.frame.index.get_loc(line))


def _parse(spec: LosLayout, frame: pd.DataFrame) -> _Parsed:
    n = len(frame)
    start, _, start_bad = _parse_dates(_column(frame, spec.start), n)
    discharge, discharge_blank, discharge_bad = _parse_dates(_column(frame, spec.discharge), n)
    numbers, unreadable_numbers = {}, {}
    for column in spec.numeric:
        numbers[column], unreadable_numbers[column] = _parse_ints(_column(frame, column), n)
    blank_required = {}
    for column in spec.required:
        series = _column(frame, column)
        blank_required[column] = np.zeros(n, bool) if series is None else (series.str.strip() == "").to_numpy()

    problem = np.full(n, None, dtype=object)
    provider = _column(frame, spec.provider)
    if provider is not None:
        codes = provider.str.strip()
        unknown = ((codes != "") & ~codes.isin(known_providers())).to_numpy()
        problem[unknown] = "unknown_provider"
    stay = (discharge - start).astype("timedelta64[D]").astype(np.float64)
    stay[np.isnat(discharge) | np.isnat(start)] = np.nan
    before = np.nan_to_num(stay, nan=0.0) < 0
    problem[before & (problem == None)] = "discharged_before_admission"  # noqa: E711 (elementwise)
    if spec.duration:
        duration = numbers[spec.duration]
        closed = ~np.isnat(discharge) & ~np.isnat(start)
        disagrees = np.where(
            closed,
            np.isnan(duration) | (np.nan_to_num(duration, nan=-1e9) != np.nan_to_num(stay, nan=-2e9)),
            discharge_blank & ~np.isnan(duration),
        )
        disagrees &= ~unreadable_numbers[spec.duration]
        problem[disagrees & (problem == None)] = "spell_duration_disagrees"  # noqa: E711
    return _Parsed(
        frame=frame,
        start=start,
        discharge=discharge,
        unreadable_dates={spec.start: start_bad, spec.discharge: discharge_bad},
        numbers=numbers,
        unreadable_numbers=unreadable_numbers,
        blank_required=blank_required,
        row_problem=problem,
    )


def _yyyymm(values: np.ndarray, fill: int) -> np.ndarray:
    """``datetime64[D]`` → yyyymm as float64, ``fill`` where NaT."""
    months = values.astype("datetime64[M]")
    out = (months.astype(np.int64) // 12 + 1970) * 100 + months.astype(np.int64) % 12 + 1
    return np.where(np.isnat(values), fill, out).astype(np.float64)


# --------------------------------------------------------------------------------------------------------------
# The contract


def _validation_batch(spec: LosLayout, frame: pd.DataFrame, month: date) -> tuple[pd.DataFrame, _Parsed]:
    """The frame GX validates: the file's columns under raw names (numbers as numbers, blank text as null), then
    the ``check_*`` columns. Columns the layout does not know keep their name behind ``unpublished:``."""
    parsed = _parse(spec, frame)
    n = len(frame)
    names = spec.raw_names
    columns: dict[str, object] = {}
    for position, published in enumerate(frame.columns):
        series = frame.iloc[:, position]
        name = names.get(published, f"unpublished: {published}")
        if name in columns:
            name = f"{published} (column {position + 1})"
        if published in parsed.numbers and published in names:
            columns[name] = parsed.numbers[published]
        else:
            columns[name] = series.where(series != "")
    file_month = month.year * 100 + month.month
    checks = {
        "check_blank_required_cells": np.sum(list(parsed.blank_required.values()), axis=0, dtype=np.float64),
        "check_unreadable_dates": np.sum(list(parsed.unreadable_dates.values()), axis=0, dtype=np.float64),
        "check_non_numeric_cells": (
            np.sum(list(parsed.unreadable_numbers.values()), axis=0, dtype=np.float64)
            if parsed.unreadable_numbers
            else np.zeros(n)
        ),
        "check_start_month": _yyyymm(parsed.start, file_month),
        "check_discharge_month": _yyyymm(parsed.discharge, file_month),
    }
    return pd.DataFrame({**columns, **checks}, index=frame.index), parsed


def check_contract(
    source: str, los_file: LosFile, frame: pd.DataFrame, *, today: date | None = None
) -> list[ContractViolation]:
    """Check a read extract against its file contract (SPEC §8); ``[]`` means it may be loaded.

    Runs the source's GX suite once over the file and names each violation's file, line, column (as the file
    names it) and rule. ``today`` fixes "the current month" for the no-future rule (default: today). Row problems
    (unknown provider, discharge before admission, SPELDUR disagreeing) are not contract violations: such rows
    are loaded and flagged.
    """
    spec = layout(source)
    month = los_file.period_month
    header = list(frame.columns)
    batch, parsed = _validation_batch(spec, frame, month)
    now = today or date.today()
    file_month = month.year * 100 + month.month
    parameters = {
        "expected_columns": [name for _, name, _ in spec.columns] + list(CHECK_COLUMNS),
        "file_month": [file_month],
        "file_month_max": file_month,
        "latest_month": now.year * 100 + now.month,
    }
    failures = validate_frame(batch, spec.suite, parameters)
    failures = [failure for failure in failures if not (failure.missing_columns and failure.error)]
    labels = {name: published for published, name, _ in spec.columns}
    labels.update(
        {
            "check_blank_required_cells": ", ".join(spec.required),
            "check_unreadable_dates": f"{spec.start}, {spec.discharge}",
            "check_non_numeric_cells": ", ".join(spec.numeric),
            "check_start_month": spec.start,
            "check_discharge_month": spec.discharge,
        }
    )
    violations = to_violations(
        los_file.source_file,
        failures,
        column_labels=labels,
        explain=_explainers(spec, los_file, parsed),
        table_explain={"header_matches_layout": lambda _failure: header_violations(spec, los_file.source_file, header)},
    )
    if header != list(spec.header) and not any(v.rule == "header_matches_layout" for v in violations):
        violations[:0] = header_violations(spec, los_file.source_file, header)
    return violations


def header_violations(spec: LosLayout, source_file: str, header: Sequence[str]) -> list[ContractViolation]:
    """How a header differs from the layout: missing, renamed, unexpected, duplicated or out-of-place columns."""
    expected, header = list(spec.header), list(header)
    if header == expected:
        return []

    def violation(column: str | None, message: str) -> ContractViolation:
        return ContractViolation(source_file, 1, column, "header_matches_layout", message)

    found = [
        violation(column, f"column '{column}' appears {header.count(column)} times")
        for column in sorted({c for c in header if header.count(c) > 1})
    ]
    matcher = difflib.SequenceMatcher(a=expected, b=header, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and a1 - a0 == b1 - b0:
            for offset in range(a1 - a0):
                want, got = expected[a0 + offset], header[b0 + offset]
                if got in expected:
                    found.append(
                        violation(
                            got,
                            f"column '{got}' is column {b0 + offset + 1} but the layout has it at column "
                            f"{expected.index(got) + 1}: columns are out of order",
                        )
                    )
                else:
                    found.append(violation(got, f"column {b0 + offset + 1} is named '{got}' but should be '{want}'"))
            continue
        for i in range(a0, a1):
            if expected[i] not in header:
                found.append(violation(expected[i], f"column '{expected[i]}' is missing (layout column {i + 1})"))
        for i in range(b0, b1):
            if header[i] not in expected:
                found.append(violation(header[i], f"column '{header[i]}' (column {i + 1}) is not in the layout"))
            elif header.count(header[i]) == 1:
                found.append(
                    violation(
                        header[i],
                        f"column '{header[i]}' is column {i + 1} but the layout has it at column "
                        f"{expected.index(header[i]) + 1}: columns are out of order",
                    )
                )
    if not found:
        found.append(violation(None, f"the header does not match the {spec.source} layout"))
    return found


def _explainers(spec: LosLayout, los_file: LosFile, parsed: _Parsed) -> dict:
    frame = parsed.frame
    month = los_file.period_month

    def cell(column: str, line: int) -> str:
        series = _column(frame, column)
        return "" if series is None else str(series.loc[line])

    def blank(_failure, line: int, _value):
        position = parsed.position(line)
        return [(c, f"{c} is blank (required)") for c, mask in parsed.blank_required.items() if mask[position]]

    def bad_date(_failure, line: int, _value):
        position = parsed.position(line)
        return [
            (c, f"'{cell(c, line)}' is not a date like 2024-04-30 (YYYY-MM-DD)")
            for c, mask in parsed.unreadable_dates.items()
            if mask[position]
        ]

    def not_number(_failure, line: int, _value):
        position = parsed.position(line)
        return [
            (c, f"'{cell(c, line)}' is not a whole number")
            for c, mask in parsed.unreadable_numbers.items()
            if mask[position]
        ]

    def imd(_failure, line: int, _value):
        return [(spec.imd, f"IMD decile '{cell(spec.imd, line)}' is not between 1 and 10 (or blank)")]

    def duplicate(failure, line: int, value):
        others = [str(r) for r, v in zip(failure.rows, failure.values, strict=False) if v == value and r != line]
        also = f" (also on line {', '.join(others)})" if others else ""
        return [(spec.spell_id, f"spell id '{value}' appears more than once in the file{also}")]

    said = "the month in its file name" if los_file.month_from_name else "the month of its latest date"

    def discharge_month(_failure, line: int, _value):
        return [(spec.discharge, f"discharge date {cell(spec.discharge, line)} is not in {month:%B %Y}, {said}")]

    def start_month(_failure, line: int, _value):
        return [(spec.start, f"start date {cell(spec.start, line)} is after {month:%B %Y}, {said}")]

    def future(_failure, line: int, _value):
        text = cell(spec.discharge, line) or f"(open spell in {month:%B %Y})"
        return [(spec.discharge, f"{text} is later than the current month")]

    return {
        "required_value_present": blank,
        "date_parses": bad_date,
        "number_is_whole": not_number,
        "imd_decile_range": imd,
        "unique_spell_id": duplicate,
        "discharge_in_file_month": discharge_month,
        "started_by_file_month": start_month,
        "period_not_in_future": future,
    }


# --------------------------------------------------------------------------------------------------------------
# Loading


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create both sources' raw tables and their ``file_loads`` audit tables if missing."""
    for spec in LAYOUTS.values():
        raw.ensure_file_loads(con, spec.schema)
        columns = ",\n    ".join(f"{name} {kind}" for name, kind in spec.raw_columns)
        con.execute(f"create table if not exists {spec.qualified_table} (\n    {columns}\n)")


def _arrow_table(spec: LosLayout, frame: pd.DataFrame, parsed: _Parsed) -> pa.Table:
    arrays: dict[str, pa.Array] = {"source_row": pa.array(frame.index.to_numpy(), pa.int32())}
    for published, name, kind in spec.columns:
        if kind == "date":
            values = parsed.start if published == spec.start else parsed.discharge
            arrays[name] = pa.array(values, pa.date32(), from_pandas=True)
        elif kind == "integer":
            values = parsed.numbers[published]
            arrays[name] = pa.array(np.where(np.isnan(values), 0, values).astype(np.int32), mask=np.isnan(values))
        else:
            series = frame[published]
            arrays[name] = pa.array(series.where(series != "", None), pa.string(), from_pandas=True)
    arrays["row_problem"] = pa.array(parsed.row_problem, pa.string(), from_pandas=True)
    return pa.table(arrays)


def _incoming(con, spec: LosLayout, los_file: LosFile, frame: pd.DataFrame) -> tuple[str, str, list, _Parsed]:
    if list(frame.columns) != list(spec.header):
        raise ValueError(
            f"{los_file.source_file}: the header is not the {spec.source} layout; check the contract first"
        )
    parsed = _parse(spec, frame)
    view = f"incoming_{spec.source}_{uuid.uuid4().hex}"
    con.register(view, _arrow_table(spec, frame, parsed))
    constants = {"period_month": "cast(? as date)", "source_file": "cast(? as varchar)"}
    selects = [f"{constants[c]} as {c}" if c in constants else c for c, _ in spec.raw_columns]
    return view, f"select {', '.join(selects)} from {view}", [los_file.period_month, los_file.source_file], parsed


def _problem_summary(counts: dict[str, int]) -> str:
    if not counts:
        return "no row problems"
    listed = ", ".join(f"{rule} {count}" for rule, count in counts.items())
    return f"{sum(counts.values())} row problem(s) loaded and flagged: {listed}"


def _counts(problems: np.ndarray) -> dict[str, int]:
    return {rule: int(np.sum(problems == rule)) for rule in ROW_PROBLEMS if np.any(problems == rule)}


def load_file(con: duckdb.DuckDBPyConnection, source: str, los_file: LosFile, frame: pd.DataFrame) -> LoadOutcome:
    """Load an extract that passed its contract into the source's raw table, idempotently (SPEC §2).

    Same bytes already current → ``unchanged``; bytes since replaced → ``superseded``; first file of its month →
    ``loaded``; ``-revised`` → ``replaced`` (the month swapped in one transaction); an unmarked file with other
    rows for a loaded month → ``rejected`` (with the same rows → ``unchanged``). The message of a load says how
    many rows carry each row problem.
    """
    spec = layout(source)
    ensure_raw_tables(con)
    month = los_file.period_month

    def outcome(action: str, rows: int, message: str = "", violations=()) -> LoadOutcome:
        return LoadOutcome(action, los_file.source_file, month, rows, los_file.sha256, tuple(violations), message)

    plan = raw.plan_load(con, spec.schema, month, los_file.sha256, los_file.is_revision)
    if plan.action in ("unchanged", "superseded"):
        return outcome(plan.action, len(frame), plan.message)
    view, select_sql, params, parsed = _incoming(con, spec, los_file, frame)
    try:
        if plan.action == "conflict":
            figures = [name for _, name, _ in spec.columns] + ["row_problem"]
            if raw.same_rows(con, spec.qualified_table, month, select_sql, params, figures):
                return outcome("unchanged", len(frame), f"same rows as {plan.current.source_file}")
            violation = ContractViolation(
                los_file.source_file,
                None,
                None,
                "revision_named_revised",
                f"period already loaded from {plan.current.source_file} with different rows; "
                "a re-submission must be named -revised",
            )
            return outcome("rejected", len(frame), violation.message, (violation,))
        audit = raw.AuditEntry(los_file.source_file, month, los_file.sha256, los_file.file_bytes, los_file.is_revision)
        rows = raw.write_partition(con, spec.schema, spec.table, select_sql, params, audit, action=plan.action)
        summary = _problem_summary(_counts(parsed.row_problem))
        return outcome(plan.action, rows, f"{plan.message}; {summary}" if plan.message else summary)
    finally:
        con.unregister(view)


def row_problem_counts(
    con: duckdb.DuckDBPyConnection, source: str, *, period_month: date | None = None
) -> dict[str, int]:
    """``{rule: rows}`` of flagged rows in the current loads of ``source`` (one month if ``period_month``)."""
    spec = layout(source)
    ensure_raw_tables(con)
    where, params = "row_problem is not null", []
    if period_month is not None:
        where += " and period_month = ?"
        params.append(period_month)
    rows = con.execute(
        f"select row_problem, count(*) from {spec.qualified_table} where {where} group by 1 order by 1", params
    ).fetchall()
    return {rule: int(count) for rule, count in rows}


def problem_column(spec: LosLayout, rule: str) -> str:
    """The column (as the file names it) a row problem is about."""
    return {
        "unknown_provider": spec.provider,
        "discharged_before_admission": spec.discharge,
        "spell_duration_disagrees": spec.duration or spec.discharge,
    }[rule]


def flagged_rows(
    con: duckdb.DuckDBPyConnection, source: str, *, run_id: str, limit: int = raw.MAX_ROWS_PER_RULE
) -> list[dict]:
    """The flagged rows of the files ``run_id`` loaded, each named by file, line, column and rule with a message
    saying what is wrong (at most ``limit`` per file and rule; :func:`row_problem_counts` counts them all).

    A run knows which files it loaded from ``audit.contract_checks`` (each load records its SHA-256 there).
    """
    from orchestration.audit import ensure_audit_schema

    spec = layout(source)
    ensure_raw_tables(con)
    ensure_audit_schema(con)
    names = spec.raw_names
    duration = names[spec.duration] if spec.duration else "null"
    rows = con.execute(
        f"""
        with loaded as (
            select l.period_month, l.source_file
            from {spec.schema}.file_loads l
            join audit.contract_checks c
                on c.source = ? and c.run_id = ? and c.period_month = l.period_month and c.sha256 = l.sha256
            where l.is_current
        ),
        flagged as (
            select r.source_file, r.source_row, r.row_problem,
                   r.{names[spec.provider]} as provider, r.{names[spec.start]} as started,
                   r.{names[spec.discharge]} as discharged, {duration} as duration,
                   row_number() over (partition by r.source_file, r.row_problem order by r.source_row) as nth
            from {spec.qualified_table} r
            join loaded using (period_month, source_file)
            where r.row_problem is not null
        )
        select source_file, source_row, row_problem, provider, started, discharged, duration
        from flagged where nth <= ? order by source_file, source_row
        """,
        [source, run_id, limit],
    ).fetchall()
    found = []
    for source_file, line, rule, provider, started, discharged, duration in rows:
        if rule == "unknown_provider":
            message = f"'{provider}' is not an organisation in seeds/reference"
        elif rule == "discharged_before_admission":
            message = f"discharged {discharged}, before the admission on {started}"
        elif discharged is None:
            message = f"{spec.duration} is {duration} but the spell has not been discharged"
        else:
            stay = (discharged - started).days
            shown = "blank" if duration is None else duration
            message = f"{spec.duration} is {shown} but {spec.discharge} − {spec.start} is {stay} days"
        found.append(
            {
                "source": source,
                "source_file": source_file,
                "source_row": line,
                "source_column": problem_column(spec, rule),
                "rule": rule,
                "message": message + " (loaded, flagged and left out of the measures)",
            }
        )
    return found


# --------------------------------------------------------------------------------------------------------------
# The loop


def months_in_folder(source: str, folder: Path) -> list[date]:
    """The months the source's files in ``folder`` hold (from their names, else their rows), oldest first."""
    months = set()
    for path in discover_files(source, folder):
        month = month_in_file_name(source, path)
        if month is None:
            try:
                month = read_file(source, path)[0].period_month
            except ContractError:
                continue
        months.add(month)
    return sorted(months)


def ingest_folder(
    con: duckdb.DuckDBPyConnection,
    source: str,
    folder: Path,
    quarantine_dir: Path,
    *,
    move_rejected: bool,
    months: tuple[date, date] | None = None,
    today: date | None = None,
) -> list[IngestResult]:
    """Read, check and load every ``source`` file in ``folder``; quarantine (to ``quarantine_dir/<source>/``)
    the ones that fail. Files already loaded (by SHA-256) are recognised before they are read. ``months`` limits
    the run to files for months in ``[start, end)``; ``move_rejected`` moves rejects instead of copying them."""
    layout(source)
    ensure_raw_tables(con)
    return raw.ingest_files(
        con,
        discover_files(source, folder),
        schema=layout(source).schema,
        source=source,
        read=partial(read_file, source),
        check=partial(check_contract, source, today=today),
        load=lambda con, los_file, frame: load_file(con, source, los_file, frame),
        month_in_name=partial(month_in_file_name, source),
        quarantine_dir=Path(quarantine_dir),
        move=move_rejected,
        window=months,
    )


# --------------------------------------------------------------------------------------------------------------
# Re-checking what is loaded (the blocking asset check)


def frame_from_raw(
    con: duckdb.DuckDBPyConnection, source: str, period_month: date
) -> tuple[LosFile, pd.DataFrame] | None:
    """The current load of ``period_month`` rebuilt as the file it came from (published header, text cells,
    indexed by line number); ``None`` when nothing is loaded for the month."""
    spec = layout(source)
    ensure_raw_tables(con)
    load = raw.current_load(con, spec.schema, period_month)
    if load is None:
        return None
    selects = ["source_row"] + [
        f"coalesce(strftime({name}, '%Y-%m-%d'), '') as c{i}"
        if kind == "date"
        else f"coalesce(cast({name} as varchar), '') as c{i}"
        for i, (_, name, kind) in enumerate(spec.columns)
    ]
    table = con.execute(
        f"select {', '.join(selects)} from {spec.qualified_table} where period_month = ? order by source_row",
        [period_month],
    ).fetch_arrow_table()
    frame = table.drop(["source_row"]).to_pandas()
    frame.columns = list(spec.header)
    frame.index = pd.Index(table.column("source_row").to_numpy(), name="line")
    los_file = LosFile(
        source=source,
        path=Path(load.source_file),
        period_month=period_month,
        is_revision=load.is_revision,
        sha256=load.sha256,
        source_file=load.source_file,
    )
    return los_file, frame


def check_loaded_months(
    con: duckdb.DuckDBPyConnection, source: str, *, run_id: str | None = None, today: date | None = None
) -> dict[date, list[ContractViolation]]:
    """Re-run the file contract on every current month of ``source`` not yet checked in
    ``audit.contract_checks`` (keyed by the load's SHA-256), record each result, and return
    ``{month: violations}`` for the months checked now (``[]`` = passed)."""
    from orchestration.audit import ensure_audit_schema

    spec = layout(source)
    ensure_raw_tables(con)
    ensure_audit_schema(con)
    pending = con.execute(
        f"""select l.period_month from {spec.schema}.file_loads l
            where l.is_current and not exists (
                select 1 from audit.contract_checks c
                where c.source = ? and c.period_month = l.period_month and c.sha256 = l.sha256 and c.passed)
            order by l.period_month""",
        [source],
    ).fetchall()
    outcomes: dict[date, list[ContractViolation]] = {}
    for (month,) in pending:
        rebuilt = frame_from_raw(con, source, month)
        if rebuilt is None:
            continue
        los_file, frame = rebuilt
        violations = check_contract(source, los_file, frame, today=today)
        raw.forget_frame(frame)
        con.execute(
            "insert into audit.contract_checks values (?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                source,
                month,
                los_file.sha256,
                not raw.errors_of(violations),
                len(raw.errors_of(violations)),
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
        outcomes[month] = violations
    return outcomes
