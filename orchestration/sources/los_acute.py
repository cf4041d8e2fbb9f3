"""Acute lengths of stay: read HES APC or SUS+ APC *episode* extracts, check their contract, load the episodes.

Built to the publishers' layouts (issue 16), not to a layout of our own:

* **HES APC** (NHS England's Hospital Episode Statistics, Admitted Patient Care; field names as in the HES APC
  data dictionary / metadata): one row per *episode* (a finished consultant episode): ``EPIKEY`` (episode key),
  ``EPIORDER`` (the episode's place in its spell), ``EPISTART`` / ``EPIEND``, ``ADMIDATE`` / ``DISDATE`` (spell
  admission and discharge; DISDATE is filled on the spell's last episode), ``PROCODE3`` (provider),
  ``SUSSPELLID`` (the SUS spell id, from the APC OTR table) or ``PROVSPNOPS`` (the provider's spell number),
  ``CLASSPAT``, ``ADMIMETH``, ``TRETSPEF``, ``SPELDUR``, ``IMD04_DECILE`` (as HES writes it: text bands
  "Most deprived 10%" … "Least deprived 10%"), ``ETHNOS`` and a pseudonymised person id (``ENCRYPTED_HESID``,
  or ``TOKEN_PERSON_ID`` in NHS England's DARS extracts).
* **SUS+ APC** (the Secondary Uses Service commissioning data set extract): the same facts under the NHS Data
  Model and Dictionary's names: ``Hospital Provider Spell Number``, ``Organisation Code (Code of Provider)``,
  ``Start Date (Hospital Provider Spell)``, ``Discharge Date (Hospital Provider Spell)``,
  ``Patient Classification Code``, ``Episode Number``, ``Start Date (Episode)``, ``End Date (Episode)``, … (see
  :data:`FIELDS`; SUS+ repeats the spell's discharge date on every episode, which is harmless here).

Columns are selected by name, case-insensitively (spaces, underscores and brackets ignored); extra columns are
normal in real extracts and ignored. A missing required column is a file contract error naming it. Dates are
``YYYY-MM-DD`` or ``dd/mm/yyyy``; HES's placeholder dates ``1800-01-01`` (not applicable / not supplied) and
``1801-01-01`` (invalid) are read as missing, counted (``placeholder_dates`` per row, the load message) and the row
kept. ``ADMIMETH`` 2A-2D (which replaced 28) are ordinary codes here: nothing rejects them.

**Months and cumulative files.** An episode belongs to the month its ``EPIEND`` falls in (else its ``DISDATE``,
else the file's month). Monthly provisional HES is cumulative for the financial year to date: a file named for
month M (``HES_APC_2024-06.zip``) holds the episodes of April..M, and loading it *replaces every month it holds*,
from its earliest episode's month to M (each a partition of ``raw_los_acute.apc_episodes`` with its own
``file_loads`` row carrying the file's SHA-256, all written in one transaction). A month already loaded from a
file named for a *later* month is left alone (``superseded``: the later cumulative file is the newer data); from
an earlier one it is replaced. Same name month: ``-revised`` replaces, an unmarked file with other rows is
rejected, with the same rows is ``unchanged``. Loading the same bytes twice changes nothing.

Spells are built from the episodes in dbt (``stg_los_acute__apc_spells``), as NHS England does: group by provider
and spell id, the last episode (highest EPIORDER) gives the discharge, LoS = DISDATE − ADMIDATE, counted for
ordinary admissions only (CLASSPAT 1); day cases (2) and regular day / night attenders (3, 4) are kept and
counted but have no length of stay in the measures.

Two levels of problems (the severity policy of :mod:`orchestration.raw`):

* **File contract** (quarantined, nothing loads), the GX suite ``expectations/los_acute_apc_episodes.json`` plus
  the header check here: a required column missing; required cells blank; dates neither ISO nor dd/mm/yyyy;
  EPIORDER / SPELDUR not whole numbers; IMD decile neither a HES band nor 1-10; an episode twice in the file
  (provider + spell + EPIORDER); a provider that is not an ODS code; an episode ending after the file's month or
  in the future.
* **Row problems** (loaded, flagged in ``row_problem``, counted, left out of the measures):
  ``unknown_provider``, ``discharged_before_admission``, ``spell_duration_disagrees`` (SPELDUR filled and ≠
  DISDATE − ADMIDATE).

The raw table holds patient-level, pseudonymised rows: build database only, never the serving database (SPEC §9).
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from orchestration import raw
from orchestration.contracts import to_violations, validate_frame
from orchestration.raw import ContractError, ContractViolation, IngestResult, LoadOutcome
from orchestration.sources.los import known_providers

log = logging.getLogger(__name__)

SOURCE = "los_acute"
SCHEMA = "raw_los_acute"
TABLE = "apc_episodes"
QUALIFIED_TABLE = f"{SCHEMA}.{TABLE}"
SUITE = "los_acute_apc_episodes"
FILE_PREFIX = "HES_APC_"


@dataclass(frozen=True)
class Field:
    """A fact the loader needs: its raw column, type, the names HES and SUS+ give it, and whether it is required."""

    name: str
    kind: str
    hes: tuple[str, ...]
    sus: tuple[str, ...]
    required: bool = False

    @property
    def aliases(self) -> tuple[str, ...]:
        return self.hes + self.sus

    @property
    def label(self) -> str:
        """How an error names the column: its HES name and its SUS+ name."""
        return " / ".join(dict.fromkeys(name for name in (self.hes[:1] + self.sus[:1])))


#: The fields read, in raw-table order. First alias found in the header wins (HES names before SUS+ names).
FIELDS: tuple[Field, ...] = (
    Field("epikey", "varchar", ("EPIKEY",), ("Episode Identifier",)),
    Field("spell_id", "varchar", ("SUSSPELLID", "PROVSPNOPS"), ("Hospital Provider Spell Number",), required=True),
    Field("episode_order", "integer", ("EPIORDER",), ("Episode Number",), required=True),
    Field(
        "person_id",
        "varchar",
        ("ENCRYPTED_HESID", "TOKEN_PERSON_ID", "HESID"),
        ("Pseudonymised NHS Number", "Token Person ID", "Person ID"),
        required=True,
    ),
    Field("provider", "varchar", ("PROCODE3", "PROCODE"), ("Organisation Code (Code of Provider)",), required=True),
    Field("episode_start", "date", ("EPISTART",), ("Start Date (Episode)",)),
    Field("episode_end", "date", ("EPIEND",), ("End Date (Episode)",)),
    Field("admission_date", "date", ("ADMIDATE",), ("Start Date (Hospital Provider Spell)",), required=True),
    Field("discharge_date", "date", ("DISDATE",), ("Discharge Date (Hospital Provider Spell)",), required=True),
    Field("patient_classification", "varchar", ("CLASSPAT",), ("Patient Classification Code",), required=True),
    Field("admission_method", "varchar", ("ADMIMETH",), ("Admission Method Code (Hospital Provider Spell)",)),
    Field("treatment_specialty", "varchar", ("TRETSPEF",), ("Treatment Function Code",)),
    Field("spell_duration_days", "integer", ("SPELDUR",), ()),
    Field("imd_decile", "integer", ("IMD04_DECILE",), ("Index of Multiple Deprivation Decile",)),
    Field("ethnicity", "varchar", ("ETHNOS",), ("Ethnic Category",)),
)
FIELDS_BY_NAME = {f.name: f for f in FIELDS}
#: Cells that must not be blank (the discharge date and an unfinished episode's end may be).
REQUIRED_CELLS = ("spell_id", "episode_order", "person_id", "provider", "admission_date", "patient_classification")
DATES = tuple(f.name for f in FIELDS if f.kind == "date")
NUMBERS = ("episode_order", "spell_duration_days")

#: HES's placeholder dates: 1800-01-01 "null / not applicable", 1801-01-01 "invalid". Read as missing, counted.
PLACEHOLDER_DATES = (np.datetime64("1800-01-01", "D"), np.datetime64("1801-01-01", "D"))

#: IMD04_DECILE as HES writes it (decile 1 = most deprived 10% of LSOAs).
IMD_BANDS: dict[str, int] = {
    "most deprived 10%": 1,
    "more deprived 10-20%": 2,
    "more deprived 20-30%": 3,
    "more deprived 30-40%": 4,
    "more deprived 40-50%": 5,
    "less deprived 40-50%": 6,
    "less deprived 30-40%": 7,
    "less deprived 20-30%": 8,
    "less deprived 10-20%": 9,
    "least deprived 10%": 10,
}
IMD_TEXT: tuple[str, ...] = ("",) + tuple(band[0].upper() + band[1:] for band in IMD_BANDS)

ROW_PROBLEMS: tuple[str, ...] = ("unknown_provider", "discharged_before_admission", "spell_duration_disagrees")
#: CLASSPAT codes: 1 ordinary admission (the only class with a length of stay in the measures), 2 day case,
#: 3 regular day attender, 4 regular night attender, 5 mothers and babies using only delivery facilities.
ORDINARY_ADMISSION = "1"
DAY_CASE_OR_REGULAR = ("2", "3", "4")

CHECK_COLUMNS: tuple[str, ...] = (
    "check_blank_required_cells",
    "check_unreadable_dates",
    "check_non_numeric_cells",
    "check_unknown_imd",
    "check_duplicate_episode",
    "check_episode_month",
)

RAW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("period_month", "date"),
    ("file_month", "date"),
    ("source_file", "varchar"),
    ("source_row", "integer"),
    *((f.name, f.kind) for f in FIELDS),
    ("placeholder_dates", "integer"),
    ("row_problem", "varchar"),
)


# --------------------------------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class AcuteFile:
    """A delivered extract: its month (the last month it covers), its layout and which column holds each field."""

    path: Path
    period_month: date
    is_revision: bool
    sha256: str
    source_file: str
    file_bytes: int = 0
    month_from_name: bool = True
    layout: str = "HES APC"
    #: field name → the column position in the file (absent fields are not in the file)
    positions: tuple[tuple[str, int], ...] = ()

    @property
    def columns(self) -> dict[str, int]:
        return dict(self.positions)


def file_name(month: date, revised: bool = False) -> str:
    return f"{FILE_PREFIX}{month:%Y-%m}{'-revised' if revised else ''}.csv"


def _stem(path: Path) -> str:
    name = Path(path).name
    for suffix in (".zip", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


_NAME = re.compile(rf"^{re.escape(FILE_PREFIX)}(\d{{4}})-(\d{{2}})(-revised)?$", re.IGNORECASE)


def month_in_file_name(path: Path) -> date | None:
    """``HES_APC_2024-06.zip`` → 2024-06-01 (the last month the file covers), or ``None``."""
    match = _NAME.match(_stem(Path(path)))
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    return date(year, month, 1) if 1 <= month <= 12 else None


def is_revision_name(path: Path) -> bool:
    return _stem(Path(path)).lower().endswith("-revised")


def discover_files(folder: Path) -> list[Path]:
    """``.csv``/``.zip`` files directly in ``folder``, by month (each original before its ``-revised``)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in (".csv", ".zip")
    ]
    return sorted(found, key=lambda p: (month_in_file_name(p) or date.max, is_revision_name(p), p.name))


def _norm(name: str) -> str:
    """A column name as compared: letters and digits only, case-folded, so ``Hospital Provider Spell Number``,
    ``HOSPITAL_PROVIDER_SPELL_NUMBER`` and ``HospitalProviderSpellNumber`` are the same column."""
    return re.sub(r"[^0-9a-z]", "", str(name).casefold())


def resolve_columns(header: list[str]) -> tuple[dict[str, int], str]:
    """``{field: column position}`` for the fields found in ``header`` (by name, case-insensitively), and the
    layout the header looks like (``HES APC`` or ``SUS+ APC``)."""
    where: dict[str, int] = {}
    for position, column in enumerate(header):
        where.setdefault(_norm(column), position)
    found: dict[str, int] = {}
    hes_hits = sus_hits = 0
    for field in FIELDS:
        for alias in field.aliases:
            if _norm(alias) in where:
                found[field.name] = where[_norm(alias)]
                hes_hits += alias in field.hes
                sus_hits += alias in field.sus
                break
    return found, "SUS+ APC" if sus_hits > hes_hits else "HES APC"


def missing_columns(source_file: str, header: list[str]) -> list[ContractViolation]:
    """One violation per required field the header lacks, naming the column(s) that would hold it."""
    found, _ = resolve_columns(header)
    return [
        ContractViolation(
            source_file,
            1,
            field.label,
            "required_column_present",
            f"required column {' or '.join(repr(a) for a in field.aliases)} is missing "
            f"(columns are matched by name, case-insensitively; extra columns are ignored)",
        )
        for field in FIELDS
        if field.required and field.name not in found
    ]


def read_file(path: Path) -> tuple[AcuteFile, pd.DataFrame]:
    """Read an extract as text (every cell a string, indexed by CSV line number). Raises :class:`ContractError`
    for an unreadable file or one whose month can be told neither from its name nor its dates."""
    path = Path(path)
    source_file, data = raw.open_source_file(path)
    frame = raw.read_csv_as_strings(source_file, data)
    positions, layout = resolve_columns(list(frame.columns))
    month = month_in_file_name(path)
    from_name = month is not None
    if month is None:
        latest = []
        for name in ("episode_end", "discharge_date", "admission_date"):
            if name in positions:
                values = _parse_dates(frame.iloc[:, positions[name]])[0]
                if (~np.isnat(values)).any():
                    latest.append(values[~np.isnat(values)].max())
        if not latest:
            raise ContractError(
                source_file,
                f"cannot tell which month the file holds: its name does not follow the pattern "
                f"(e.g. {FILE_PREFIX}2024-04.csv) and no EPIEND, DISDATE or ADMIDATE is a date",
                rule="month_determinable",
            )
        day = pd.Timestamp(max(latest)).date()
        month = day.replace(day=1)
    return (
        AcuteFile(
            path=path,
            period_month=month,
            is_revision=is_revision_name(path),
            sha256=raw.file_sha256(path),
            source_file=source_file,
            file_bytes=path.stat().st_size,
            month_from_name=from_name,
            layout=layout,
            positions=tuple(positions.items()),
        ),
        frame,
    )


# --------------------------------------------------------------------------------------------------------------
# Parsing


_ISO = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DMY = r"^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}$"


def _parse_dates(series: pd.Series | None, n: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dates (``datetime64[D]``, NaT when blank, unreadable or a placeholder), and masks: blank, unreadable,
    placeholder. ``YYYY-MM-DD`` (an ISO timestamp's date part too) or ``dd/mm/yyyy``."""
    if series is None:
        nat = np.full(n, np.datetime64("NaT"), "datetime64[D]")
        return nat, np.ones(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    text = series.astype(str).str.strip()
    text = text.str.replace(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[T ][0-9:.]+$", r"\1", regex=True)
    blank = (text == "").to_numpy()
    iso = pd.to_datetime(text.where(text.str.match(_ISO)), format="%Y-%m-%d", errors="coerce")
    dmy = pd.to_datetime(text.where(text.str.match(_DMY)), format="%d/%m/%Y", errors="coerce")
    values = iso.fillna(dmy).to_numpy(dtype="datetime64[D]")
    unreadable = ~blank & np.isnat(values)
    placeholder = np.isin(values, PLACEHOLDER_DATES)
    values = np.where(placeholder, np.datetime64("NaT"), values).astype("datetime64[D]")
    return values, blank, unreadable, placeholder


def _parse_ints(series: pd.Series | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    if series is None:
        return np.full(n, np.nan), np.zeros(n, bool)
    text = series.astype(str).str.strip()
    blank = (text == "").to_numpy()
    whole = text.str.fullmatch(r"[-+]?[0-9]{1,9}").to_numpy()
    return pd.to_numeric(text.where(whole), errors="coerce").to_numpy(dtype=np.float64), ~blank & ~whole


def _parse_imd(series: pd.Series | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """IMD decile 1-10 from a HES text band or a number (NaN when blank), and a mask of cells that are neither."""
    if series is None:
        return np.full(n, np.nan), np.zeros(n, bool)
    text = series.astype(str).str.strip()
    band = text.str.casefold().map(IMD_BANDS)
    number = pd.to_numeric(text.where(text.str.fullmatch(r"[0-9]{1,2}")), errors="coerce")
    number = number.where((number >= 1) & (number <= 10))
    values = band.fillna(number).to_numpy(dtype=np.float64)
    return values, (text != "").to_numpy() & np.isnan(values)


@dataclass
class _Parsed:
    frame: pd.DataFrame
    text: dict[str, pd.Series]
    dates: dict[str, np.ndarray]
    unreadable_dates: dict[str, np.ndarray]
    placeholders: np.ndarray
    numbers: dict[str, np.ndarray]
    unreadable_numbers: dict[str, np.ndarray]
    imd: np.ndarray
    unknown_imd: np.ndarray
    blank_required: dict[str, np.ndarray]
    duplicate: np.ndarray
    period_month: np.ndarray  # datetime64[M]
    row_problem: np.ndarray

    def position(self, line: int) -> int:
        return int(self.frame.index.get_loc(line))


@raw.once_per_frame
def _parse(acute: AcuteFile, frame: pd.DataFrame) -> _Parsed:
    n = len(frame)
    columns = acute.columns
    text = {name: frame.iloc[:, position].astype(str).str.strip() for name, position in columns.items()}
    dates, unreadable_dates, placeholders = {}, {}, np.zeros(n, np.int32)
    for name in DATES:
        values, _, bad, placeholder = _parse_dates(text.get(name), n)
        dates[name], placeholders = values, placeholders + placeholder
        if name in text:
            unreadable_dates[name] = bad
    numbers, unreadable_numbers = {}, {}
    for name in NUMBERS:
        numbers[name], bad = _parse_ints(text.get(name), n)
        if name in text:
            unreadable_numbers[name] = bad
    imd, unknown_imd = _parse_imd(text.get("imd_decile"), n)
    blank_required = {name: (text[name] == "").to_numpy() for name in REQUIRED_CELLS if name in text}
    key = pd.DataFrame({k: text.get(k, pd.Series([""] * n, index=frame.index)) for k in ("provider", "spell_id")})
    key["order"] = numbers["episode_order"]
    duplicate = key.duplicated(keep=False).to_numpy() & ~np.isnan(numbers["episode_order"])

    file_month = np.datetime64(acute.period_month, "M")
    month = dates["episode_end"].astype("datetime64[M]")
    month = np.where(np.isnat(month), dates["discharge_date"].astype("datetime64[M]"), month)
    month = np.where(np.isnat(month), file_month, month).astype("datetime64[M]")

    problem = np.full(n, None, dtype=object)
    if "provider" in text:
        codes = text["provider"].str.upper()
        problem[((codes != "") & ~codes.isin(known_providers())).to_numpy()] = "unknown_provider"
    admitted, discharged = dates["admission_date"], dates["discharge_date"]
    stay = (discharged - admitted).astype("timedelta64[D]").astype(np.float64)
    stay[np.isnat(discharged) | np.isnat(admitted)] = np.nan
    problem[(np.nan_to_num(stay, nan=0.0) < 0) & (problem == None)] = "discharged_before_admission"  # noqa: E711
    duration = numbers["spell_duration_days"]
    disagrees = ~np.isnan(stay) & ~np.isnan(duration) & (np.nan_to_num(duration) != np.nan_to_num(stay))
    problem[disagrees & (problem == None)] = "spell_duration_disagrees"  # noqa: E711
    return _Parsed(
        frame,
        text,
        dates,
        unreadable_dates,
        placeholders,
        numbers,
        unreadable_numbers,
        imd,
        unknown_imd,
        blank_required,
        duplicate,
        month,
        problem,
    )


def _yyyymm(months: np.ndarray) -> np.ndarray:
    m = months.astype("datetime64[M]").astype(np.int64)
    return ((m // 12 + 1970) * 100 + m % 12 + 1).astype(np.float64)


# --------------------------------------------------------------------------------------------------------------
# The contract


def check_contract(acute: AcuteFile, frame: pd.DataFrame, *, today: date | None = None) -> list[ContractViolation]:
    """Check a read extract against its file contract; ``[]`` means it may be loaded. Missing required columns
    are reported first (and alone: without them no row can be read); then the GX suite runs over the file's
    fields under their raw names plus the ``check_*`` columns. Row problems are not violations."""
    missing = missing_columns(acute.source_file, list(frame.columns))
    if missing:
        return missing
    parsed = _parse(acute, frame)
    n = len(frame)
    batch: dict[str, object] = {}
    for name in acute.columns:
        if name == "imd_decile":
            batch[name] = parsed.imd
        elif name in NUMBERS:
            batch[name] = parsed.numbers[name]
        else:
            series = parsed.text[name]
            batch[name] = series.where(series != "")
    zeros = np.zeros(n)

    def total(masks: dict[str, np.ndarray]) -> np.ndarray:
        return np.sum(list(masks.values()), axis=0, dtype=np.float64) if masks else zeros

    batch.update(
        {
            "check_blank_required_cells": total(parsed.blank_required),
            "check_unreadable_dates": total(parsed.unreadable_dates),
            "check_non_numeric_cells": total(parsed.unreadable_numbers),
            "check_unknown_imd": parsed.unknown_imd.astype(np.float64),
            "check_duplicate_episode": parsed.duplicate.astype(np.float64),
            "check_episode_month": _yyyymm(parsed.period_month),
        }
    )
    now = today or date.today()
    month = acute.period_month
    parameters = {"file_month_max": month.year * 100 + month.month, "latest_month": now.year * 100 + now.month}
    failures = validate_frame(pd.DataFrame(batch, index=frame.index), SUITE, parameters)
    failures = [failure for failure in failures if not (failure.missing_columns and failure.error)]
    header = list(frame.columns)
    labels = {name: header[position] for name, position in acute.columns.items()}
    labels.update(
        {
            "check_blank_required_cells": ", ".join(labels.get(c, c) for c in REQUIRED_CELLS),
            "check_unreadable_dates": ", ".join(labels[c] for c in DATES if c in labels),
            "check_non_numeric_cells": ", ".join(labels[c] for c in NUMBERS if c in labels),
            "check_unknown_imd": labels.get("imd_decile", "IMD04_DECILE"),
            "check_duplicate_episode": labels.get("spell_id", "spell id"),
            "check_episode_month": labels.get("episode_end", labels.get("discharge_date", "EPIEND")),
        }
    )
    return to_violations(acute.source_file, failures, column_labels=labels, explain=_explainers(acute, parsed, labels))


def _explainers(acute: AcuteFile, parsed: _Parsed, labels: dict[str, str]) -> dict:
    def cell(name: str, line: int) -> str:
        series = parsed.text.get(name)
        return "" if series is None else str(series.loc[line])

    def blank(_f, line, _v):
        p = parsed.position(line)
        return [(labels[c], f"{labels[c]} is blank (required)") for c, m in parsed.blank_required.items() if m[p]]

    def bad_date(_f, line, _v):
        p = parsed.position(line)
        return [
            (labels[c], f"'{cell(c, line)}' is not a date like 2024-04-30 or 30/04/2024")
            for c, m in parsed.unreadable_dates.items()
            if m[p]
        ]

    def not_number(_f, line, _v):
        p = parsed.position(line)
        return [
            (labels[c], f"'{cell(c, line)}' is not a whole number")
            for c, m in parsed.unreadable_numbers.items()
            if m[p]
        ]

    def imd(_f, line, _v):
        column = labels.get("imd_decile", "IMD04_DECILE")
        return [(column, f"'{cell('imd_decile', line)}' is neither a HES IMD band (e.g. 'Most deprived 10%') nor 1-10")]

    def duplicate(_f, line, _v):
        spell, order = cell("spell_id", line), cell("episode_order", line)
        return [
            (
                labels["spell_id"],
                f"episode {order} of spell '{spell}' at {cell('provider', line)} appears more than once in the file",
            )
        ]

    said = "the month in its file name" if acute.month_from_name else "the month of its latest date"

    def after(_f, line, _v):
        column = labels.get("episode_end", labels["discharge_date"])
        p = parsed.position(line)
        month = pd.Timestamp(parsed.period_month[p]).date()
        return [(column, f"the episode ends in {month:%B %Y}, after {acute.period_month:%B %Y}, {said}")]

    def future(_f, line, _v):
        column = labels.get("episode_end", labels["discharge_date"])
        return [(column, f"'{cell('episode_end', line) or cell('discharge_date', line)}' is in the future")]

    return {
        "required_value_present": blank,
        "date_parses": bad_date,
        "number_is_whole": not_number,
        "imd_decile_known": imd,
        "unique_episode": duplicate,
        "episode_by_file_month": after,
        "period_not_in_future": future,
    }


# --------------------------------------------------------------------------------------------------------------
# Loading


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw_los_acute.apc_episodes`` and its ``file_loads`` audit table if missing."""
    raw.ensure_file_loads(con, SCHEMA)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in RAW_COLUMNS)
    con.execute(f"create table if not exists {QUALIFIED_TABLE} (\n    {columns}\n)")


def _arrow_table(acute: AcuteFile, frame: pd.DataFrame, parsed: _Parsed) -> pa.Table:
    n = len(frame)
    arrays: dict[str, pa.Array] = {
        "period_month": pa.array(parsed.period_month.astype("datetime64[D]"), pa.date32()),
        "source_row": pa.array(frame.index.to_numpy(), pa.int32()),
    }
    for field in FIELDS:
        if field.kind == "date":
            arrays[field.name] = pa.array(parsed.dates[field.name], pa.date32(), from_pandas=True)
        elif field.kind == "integer":
            values = parsed.imd if field.name == "imd_decile" else parsed.numbers[field.name]
            arrays[field.name] = pa.array(np.where(np.isnan(values), 0, values).astype(np.int32), mask=np.isnan(values))
        else:
            series = parsed.text.get(field.name, pd.Series([""] * n, index=frame.index))
            arrays[field.name] = pa.array(series.where(series != "", None), pa.string(), from_pandas=True)
    arrays["placeholder_dates"] = pa.array(parsed.placeholders.astype(np.int32))
    arrays["row_problem"] = pa.array(parsed.row_problem, pa.string(), from_pandas=True)
    return pa.table(arrays)


def months_of(acute: AcuteFile, parsed: _Parsed) -> list[date]:
    """The months a file holds: from its earliest episode month to the month it is named for (every month in
    between, so a cumulative file also clears a month that no longer has episodes)."""
    last = np.datetime64(acute.period_month, "M")
    first = min(parsed.period_month.min(), last) if len(parsed.period_month) else last
    return [pd.Timestamp(m).date() for m in np.arange(first, last + 1)]


def _as_of(con: duckdb.DuckDBPyConnection, sha256: str) -> date:
    """The last month covered by the file with these bytes (its latest partition)."""
    return con.execute(f"select max(period_month) from {SCHEMA}.file_loads where sha256 = ?", [sha256]).fetchone()[0]


def _summary(parsed: _Parsed, counts: dict[str, int]) -> str:
    classes = parsed.text.get("patient_classification", pd.Series(dtype=str))
    not_ordinary = int(classes.isin(DAY_CASE_OR_REGULAR).sum())
    spells = len(
        pd.DataFrame({"p": parsed.text.get("provider", ""), "s": parsed.text.get("spell_id", "")}).drop_duplicates()
    )
    parts = [
        f"{len(parsed.frame)} episodes in {spells} spells",
        f"{not_ordinary} day case / regular attender episodes (no length of stay)",
        f"{int(parsed.placeholders.sum())} placeholder dates read as missing",
    ]
    if counts:
        listed = ", ".join(f"{rule} {count}" for rule, count in counts.items())
        parts.append(f"{sum(counts.values())} row problem(s) loaded and flagged: {listed}")
    else:
        parts.append("no row problems")
    return "; ".join(parts)


def load_file(con: duckdb.DuckDBPyConnection, acute: AcuteFile, frame: pd.DataFrame) -> LoadOutcome:
    """Load an extract that passed its contract, replacing every month it holds (see the module docstring for
    which of two cumulative files wins). Idempotent: the same bytes again are ``unchanged``."""
    ensure_raw_tables(con)
    parsed = _parse(acute, frame)
    months = months_of(acute, parsed)

    def outcome(action: str, rows: int, message: str = "", violations=()) -> LoadOutcome:
        return LoadOutcome(
            action, acute.source_file, acute.period_month, rows, acute.sha256, tuple(violations), message
        )

    view = f"incoming_los_acute_{uuid.uuid4().hex}"
    con.register(view, _arrow_table(acute, frame, parsed))
    try:
        constants = {"file_month": "cast(? as date)", "source_file": "cast(? as varchar)"}
        selects = ", ".join(f"{constants[c]} as {c}" if c in constants else c for c, _ in RAW_COLUMNS)
        plans: list[tuple[date, str, str]] = []
        for month in months:
            select_sql = f"select {selects} from {view} where period_month = cast(? as date)"
            params = [acute.period_month, acute.source_file, month]
            current = raw.current_load(con, SCHEMA, month)
            if current is None:
                plans.append((month, "loaded", ""))
            elif current.sha256 == acute.sha256:
                plans.append((month, "unchanged", ""))
            elif raw.loads_of(con, SCHEMA, acute.sha256):
                plans.append((month, "superseded", f"{month:%B %Y} has since been replaced"))
            else:
                held = _as_of(con, current.sha256)
                if held > acute.period_month:
                    plans.append((month, "superseded", f"{month:%B %Y} is loaded from the later {current.source_file}"))
                elif held < acute.period_month or acute.is_revision:
                    plans.append((month, "replaced", f"replaces {current.source_file}"))
                elif current.is_revision:
                    plans.append(
                        (month, "superseded", f"{month:%B %Y} is loaded from the revision {current.source_file}")
                    )
                else:
                    figures = [c for c, _ in RAW_COLUMNS if c not in ("file_month", "source_file")]
                    if raw.same_rows(con, QUALIFIED_TABLE, month, select_sql, params, figures):
                        plans.append((month, "unchanged", f"same rows as {current.source_file}"))
                    else:
                        violation = ContractViolation(
                            acute.source_file,
                            None,
                            None,
                            "revision_named_revised",
                            f"{month:%B %Y} is already loaded from {current.source_file} with different rows; "
                            "a re-submission for the same month must be named -revised",
                        )
                        return outcome("rejected", len(frame), violation.message, (violation,))
        writes = [(month, action) for month, action, _ in plans if action in ("loaded", "replaced")]
        rows = _write_months(con, acute, view, selects, writes)
    finally:
        con.unregister(view)
    actions = [action for _, action, _ in plans]
    action = next((a for a in ("replaced", "loaded", "unchanged") if a in actions), "superseded")
    first, last = months[0], months[-1]
    span = f"{first:%B %Y}" if first == last else f"{first:%B %Y} to {last:%B %Y}"
    notes = sorted({note for _, _, note in plans if note})
    message = f"{acute.layout}, {span}; " + _summary(parsed, _counts(parsed.row_problem))
    if notes:
        message += "; " + "; ".join(notes)
    return outcome(action, rows if action in ("loaded", "replaced") else len(frame), message)


def _write_months(
    con: duckdb.DuckDBPyConnection, acute: AcuteFile, view: str, selects: str, writes: list[tuple[date, str]]
) -> int:
    """Put the file's rows of each month in ``writes`` in place of that month's earlier rows and record each load
    in ``file_loads``, all in one transaction (as :func:`orchestration.raw.write_partition` does for one month):
    a reader never sees a cumulative file half applied, and a failure leaves the previous figures. Returns the
    number of rows written."""
    if not writes:
        return 0
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    total = 0
    con.begin()
    try:
        for month, action in writes:
            con.execute(f"delete from {QUALIFIED_TABLE} where period_month = ?", [month])
            con.execute(
                f"insert into {QUALIFIED_TABLE} by name select {selects} from {view} "
                "where period_month = cast(? as date)",
                [acute.period_month, acute.source_file, month],
            )
            rows = con.execute(f"select count(*) from {QUALIFIED_TABLE} where period_month = ?", [month]).fetchone()[0]
            con.execute(
                f"update {SCHEMA}.file_loads set is_current = false where period_month = ? and is_current", [month]
            )
            con.execute(
                f"""insert into {SCHEMA}.file_loads
                    select coalesce(max(load_id), 0) + 1, ?, ?, ?, ?, ?, ?, ?, true, ? from {SCHEMA}.file_loads""",
                [acute.source_file, month, acute.sha256, acute.file_bytes, rows, acute.is_revision, action, loaded_at],
            )
            total += rows
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return total


def _counts(problems: np.ndarray) -> dict[str, int]:
    return {rule: int(np.sum(problems == rule)) for rule in ROW_PROBLEMS if np.any(problems == rule)}


def row_problem_counts(con: duckdb.DuckDBPyConnection, *, period_month: date | None = None) -> dict[str, int]:
    """``{rule: rows}`` of flagged episodes in the current loads (one month if ``period_month``)."""
    ensure_raw_tables(con)
    where, params = "row_problem is not null", []
    if period_month is not None:
        where += " and period_month = ?"
        params.append(period_month)
    rows = con.execute(
        f"select row_problem, count(*) from {QUALIFIED_TABLE} where {where} group by 1 order by 1", params
    ).fetchall()
    return {rule: int(count) for rule, count in rows}


_PROBLEM_COLUMN = {
    "unknown_provider": "PROCODE3",
    "discharged_before_admission": "DISDATE",
    "spell_duration_disagrees": "SPELDUR",
}


def flagged_rows(con: duckdb.DuckDBPyConnection, *, run_id: str, limit: int = raw.MAX_ROWS_PER_RULE) -> list[dict]:
    """The flagged rows of the files ``run_id`` loaded, named by file, line, column and rule."""
    from orchestration.audit import ensure_audit_schema

    ensure_raw_tables(con)
    ensure_audit_schema(con)
    rows = con.execute(
        f"""
        with loaded as (
            select distinct l.period_month, l.source_file
            from {SCHEMA}.file_loads l
            join audit.contract_checks c
                on c.source = ? and c.run_id = ? and c.period_month = l.period_month and c.sha256 = l.sha256
            where l.is_current
        ),
        flagged as (
            select r.source_file, r.source_row, r.row_problem, r.provider, r.admission_date, r.discharge_date,
                   r.spell_duration_days,
                   row_number() over (partition by r.source_file, r.row_problem order by r.source_row) as nth
            from {QUALIFIED_TABLE} r
            join loaded using (period_month, source_file)
            where r.row_problem is not null
        )
        select source_file, source_row, row_problem, provider, admission_date, discharge_date, spell_duration_days
        from flagged where nth <= ? order by source_file, source_row
        """,
        [SOURCE, run_id, limit],
    ).fetchall()
    found = []
    for source_file, line, rule, provider, started, discharged, duration in rows:
        if rule == "unknown_provider":
            message = f"'{provider}' is not an organisation in seeds/reference"
        elif rule == "discharged_before_admission":
            message = f"discharged {discharged}, before the admission on {started}"
        else:
            message = f"SPELDUR is {duration} but DISDATE − ADMIDATE is {(discharged - started).days} days"
        found.append(
            {
                "source": SOURCE,
                "source_file": source_file,
                "source_row": line,
                "source_column": _PROBLEM_COLUMN[rule],
                "rule": rule,
                "message": message + " (loaded, flagged and left out of the measures)",
            }
        )
    return found


# --------------------------------------------------------------------------------------------------------------
# The loop


def months_in_folder(folder: Path) -> list[date]:
    """The months the files in ``folder`` are named for (else their latest date), oldest first."""
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
    today: date | None = None,
) -> list[IngestResult]:
    """Read, check and load every acute extract in ``folder``; quarantine the ones that fail."""
    ensure_raw_tables(con)
    return raw.ingest_files(
        con,
        discover_files(folder),
        schema=SCHEMA,
        source=SOURCE,
        read=read_file,
        check=lambda acute, frame: check_contract(acute, frame, today=today),
        load=load_file,
        month_in_name=month_in_file_name,
        quarantine_dir=Path(quarantine_dir),
        move=move_rejected,
        window=months,
    )


# --------------------------------------------------------------------------------------------------------------
# Re-checking what is loaded (the blocking asset check)

#: The HES name of each field, for rebuilding a loaded file as a HES-layout frame.
_HES_HEADER = {f.name: f.hes[0] for f in FIELDS if f.hes}


@lru_cache(maxsize=1)
def _rebuild_columns() -> tuple[str, ...]:
    return tuple(f.name for f in FIELDS if f.hes)


def frame_from_raw(con: duckdb.DuckDBPyConnection, sha256: str) -> tuple[AcuteFile, pd.DataFrame] | None:
    """The current rows loaded from the file with ``sha256`` rebuilt as a HES-layout file (ISO dates)."""
    ensure_raw_tables(con)
    loads = raw.loads_of(con, SCHEMA, sha256)
    current = [load for load in loads if load.is_current]
    if not current:
        return None
    names = _rebuild_columns()
    # A placeholder date was loaded as NULL; the required ADMIDATE is written back as one (the counts say so).
    placeholder = "case when placeholder_dates > 0 then '1800-01-01' else '' end"
    selects = ["source_row"] + [
        f"coalesce(strftime({name}, '%Y-%m-%d'), {placeholder if name == 'admission_date' else repr('')}) as c{i}"
        if FIELDS_BY_NAME[name].kind == "date"
        else f"coalesce(cast({name} as varchar), '') as c{i}"
        for i, name in enumerate(names)
    ]
    table = con.execute(
        f"""select {", ".join(selects)}, file_month from {QUALIFIED_TABLE}
            where (period_month, source_file) in (
                select (period_month, source_file) from {SCHEMA}.file_loads where sha256 = ? and is_current)
            order by source_row""",
        [sha256],
    ).fetch_arrow_table()
    file_month = max(load.period_month for load in loads)
    frame = table.drop(["source_row", "file_month"]).to_pandas()
    frame.columns = [_HES_HEADER[name] for name in names]
    frame.index = pd.Index(table.column("source_row").to_numpy(), name="line")
    positions, layout = resolve_columns(list(frame.columns))
    first = current[0]
    return (
        AcuteFile(
            path=Path(first.source_file),
            period_month=file_month,
            is_revision=first.is_revision,
            sha256=sha256,
            source_file=first.source_file,
            layout=layout,
            positions=tuple(positions.items()),
        ),
        frame,
    )


def check_loaded_months(
    con: duckdb.DuckDBPyConnection, *, run_id: str | None = None, today: date | None = None
) -> dict[date, list[ContractViolation]]:
    """Re-run the file contract on the current loads not yet checked in ``audit.contract_checks`` (one check per
    file, recorded for each month it holds); ``{month: violations}`` for the months checked now."""
    from orchestration.audit import ensure_audit_schema

    ensure_raw_tables(con)
    ensure_audit_schema(con)
    pending = con.execute(
        f"""select l.sha256, list(l.period_month order by l.period_month) from {SCHEMA}.file_loads l
            where l.is_current and not exists (
                select 1 from audit.contract_checks c
                where c.source = ? and c.period_month = l.period_month and c.sha256 = l.sha256 and c.passed)
            group by l.sha256 order by min(l.period_month)""",
        [SOURCE],
    ).fetchall()
    outcomes: dict[date, list[ContractViolation]] = {}
    for sha256, months in pending:
        rebuilt = frame_from_raw(con, sha256)
        if rebuilt is None:
            continue
        acute, frame = rebuilt
        violations = check_contract(acute, frame, today=today) if len(frame) else []
        raw.forget_frame(frame)
        errors = raw.errors_of(violations)
        for month in months:
            con.execute(
                "insert into audit.contract_checks values (?, ?, ?, ?, ?, ?, ?)",
                [run_id, SOURCE, month, sha256, not errors, len(errors), datetime.now(UTC).replace(tzinfo=None)],
            )
            outcomes[month] = violations
    return outcomes
