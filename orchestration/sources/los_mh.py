"""Mental health lengths of stay: read an MHSDS submission as its tables, check its contract, load ``raw_los_mh``.

Built to the MHSDS tables as NHS England's monthly publication reads them (the code of the Mental Health
Monthly Statistics, ``NHSDigital/mental-health-monthly-statistics`` on GitHub: ``menh_bbrb/notebooks/
02_Specific_Prepare/01_los/los_prep.py`` and ``measure_metadata.py`` for MHS140/MHS156; the valid
``MHAdmittedPatientClass`` codes by version in ``menh_dq/notebooks/00.common_objects/00_version_change_tables.py``):

* **MHS501 Hospital Provider Spell**: one row per spell per submission, ``UniqHospProvSpellID``,
  ``StartDateHospProvSpell``, ``DischDateHospProvSpell`` (blank while open), ``OrgIDProv``, ``Person_ID``.
* **MHS502 Ward Stay**: the spell's ward stays, ``UniqWardStayID``, ``StartDateWardStay``, ``EndDateWardStay``
  and ``MHAdmittedPatientClass`` (the bed type). The publication takes the ward stay that ends on the spell's
  discharge date (``EndDateWardStay = DischDateHospProvSpell``, same ``RecordNumber``) as the spell's bed type.
* **MHS001 Master Patient Index**: the person in the submission (joined on ``RecordNumber``),
  ``AgeRepPeriodEnd`` (age at the end of the reporting period, the age the MHS140/MHS156 cohorts use), and the
  optional equity fields ``EthnicCategory`` and ``IMD_Decile`` (the publication derives the decile from
  ``LSOA2011``; an extract that carries the derived decile gives it here, otherwise it is blank).

Every table carries ``UniqSubmissionID``, ``UniqMonthID`` (1489 = April 2024; MHSDS v6 from then on, where the
bed types adult acute / older adult acute / PICU are ``200``/``201``/``202``; v5 before, ``10``/``11``/``12``) and
``RecordNumber``. Columns are selected by name, case-insensitively; extra columns are normal; a missing required
column is a file contract error naming it.

Files (``orchestration.samples.los_mh`` writes both forms): one zip ``MHSDS_<YYYY>-<MM>[-revised].zip`` holding
the three CSVs (each named by its table: a member whose name contains ``MHS501``, ``MHS502``, ``MHS001``), or three
files per submission month ``MHS501_<YYYY>-<MM>[-revised].csv``, ``MHS502_…``, ``MHS001_…`` side by side. The
delivery is named by its ``MHS501``/``MHSDS`` file; a three-file delivery's identity (SHA-256) covers all three
files, but only the MHS501 file is moved to quarantine. The month comes from the name, else from the
``UniqMonthID`` of the MHS501 rows.

Record versions: a spell appears in every monthly submission while it is active, and a month can be submitted
again (a resubmission, ``-revised``, replaces the month). In the warehouse the **latest record of a spell wins**:
the highest ``UniqMonthID``, then the highest ``UniqSubmissionID``, then the latest file month, then the later line
(``stg_los_mh__spells``). A discharge dated after the file's month loads: a resubmission made later can carry it,
and the spell counts in its discharge month.

Two levels of problems, as for every feed (:mod:`orchestration.raw`):

* **File contract** (quarantined, nothing loads): a table missing from the delivery; a required column missing;
  required cells blank; dates not ``YYYY-MM-DD`` (or ``DD/MM/YYYY``); whole numbers that are not; a spell starting
  after the file's month; anything later than the current month; unreadable files.
* **Row problems** (loaded, flagged in ``row_problem``, counted): MHS501 ``unknown_provider`` and
  ``discharged_before_admission``; MHS502 ``bed_type_not_in_version`` (an ``MHAdmittedPatientClass`` that is not a
  code of the MHSDS version of its ``UniqMonthID``, e.g. a v5 ``10`` in a v6 month: without the flag such a spell
  would silently drop out of the adult acute cohort).

Raw tables ``raw_los_mh.mhs501_hospital_spells``, ``raw_los_mh.mhs502_ward_stays``, ``raw_los_mh.mhs001_mpi``:
patient-level, pseudonymised; build database only (SPEC §9).
"""

from __future__ import annotations

import logging
import re
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
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

SOURCE = "los_mh"
SCHEMA = "raw_los_mh"

#: UniqMonthID of April 2024, the first month of MHSDS v6 (NHS England's code: ``UniqMonthID > 1488``).
FIRST_V6_MONTH_ID = 1489

#: MHAdmittedPatientClass codes of the MHS140/MHS141/MHS156 cohorts by version (los_prep.py ``Acute_Bed``).
BED_TYPES: dict[str, dict[str, str]] = {
    "v5": {"10": "adult_acute", "11": "older_adult_acute", "12": "picu"},
    "v6": {"200": "adult_acute", "201": "older_adult_acute", "202": "picu"},
}
#: Every valid MHAdmittedPatientClass by version (00_version_change_tables.py, MHS-DQM31).
VALID_BED_TYPES: dict[str, frozenset[str]] = {
    "v5": frozenset(str(code) for code in range(10, 41)),
    "v6": frozenset([str(code) for code in range(200, 214)] + [str(code) for code in range(300, 312)]),
}


def uniq_month_id(month: date) -> int:
    """MHSDS ``UniqMonthID`` of a month: April 2024 → 1489, October 2021 → 1459."""
    return (month.year - 1900) * 12 + month.month - 3


def month_of_uniq_month_id(value: int) -> date:
    months = int(value) + 2  # months since January 1900
    return date(1900 + months // 12, months % 12 + 1, 1)


def mhsds_version(month: date) -> str:
    return "v6" if uniq_month_id(month) >= FIRST_V6_MONTH_ID else "v5"


# --------------------------------------------------------------------------------------------------------------
# Tables


@dataclass(frozen=True)
class Column:
    published: str
    name: str
    kind: str = "varchar"  # varchar | date | integer
    required: bool = True
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    key: str  # MHS501
    title: str
    table: str
    suite: str
    columns: tuple[Column, ...]

    @property
    def qualified_table(self) -> str:
        return f"{SCHEMA}.{self.table}"

    @property
    def raw_columns(self) -> tuple[tuple[str, str], ...]:
        return (
            ("period_month", "date"),
            ("source_file", "varchar"),
            ("source_row", "integer"),
            *((c.name, c.kind) for c in self.columns),
            ("row_problem", "varchar"),
        )

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


_SUBMISSION = (
    Column("UniqSubmissionID", "uniq_submission_id", "integer"),
    Column("UniqMonthID", "uniq_month_id", "integer"),
    Column("RecordNumber", "record_number", "varchar"),
)

MHS501 = Table(
    "MHS501",
    "Hospital Provider Spell",
    "mhs501_hospital_spells",
    "los_mh_mhs501_hospital_spells",
    (
        *_SUBMISSION,
        Column("OrgIDProv", "org_id_prov"),
        Column("Person_ID", "person_id"),
        Column("UniqHospProvSpellID", "uniq_hosp_prov_spell_id", aliases=("UniqHospProvSpellNum",)),
        Column("StartDateHospProvSpell", "start_date", "date"),
        Column("DischDateHospProvSpell", "discharge_date", "date"),
        Column("MethAdmMHHospProvSpell", "method_of_admission", required=False),
        Column("MethOfDischMHHospProvSpell", "method_of_discharge", required=False),
        Column("DestOfDischHospProvSpell", "destination_of_discharge", required=False),
    ),
)
MHS502 = Table(
    "MHS502",
    "Ward Stay",
    "mhs502_ward_stays",
    "los_mh_mhs502_ward_stays",
    (
        *_SUBMISSION,
        Column("UniqWardStayID", "uniq_ward_stay_id"),
        Column("UniqHospProvSpellID", "uniq_hosp_prov_spell_id", aliases=("UniqHospProvSpellNum",)),
        Column("StartDateWardStay", "start_date", "date"),
        Column("EndDateWardStay", "end_date", "date"),
        Column("MHAdmittedPatientClass", "admitted_patient_class"),
        Column("WardType", "ward_type", required=False),
    ),
)
MHS001 = Table(
    "MHS001",
    "Master Patient Index",
    "mhs001_mpi",
    "los_mh_mhs001_mpi",
    (
        *_SUBMISSION,
        Column("Person_ID", "person_id"),
        Column("OrgIDProv", "org_id_prov", required=False),
        Column("AgeRepPeriodEnd", "age_rep_period_end", "integer"),
        Column("EthnicCategory", "ethnic_category", required=False),
        Column("IMD_Decile", "imd_decile", "integer", required=False),
    ),
)
TABLES: tuple[Table, ...] = (MHS501, MHS502, MHS001)

#: Columns that may be blank: the discharge (open spell), the ward stay's end (open ward stay), optional fields.
_MAY_BE_BLANK = {("MHS501", "discharge_date"), ("MHS502", "end_date"), ("MHS502", "ward_type")}

ROW_PROBLEMS: dict[str, tuple[str, ...]] = {
    "MHS501": ("unknown_provider", "discharged_before_admission"),
    "MHS502": ("bed_type_not_in_version",),
    "MHS001": (),
}


# --------------------------------------------------------------------------------------------------------------
# Files

_NAME = re.compile(r"^(MHSDS|MHS501)_(\d{4})-(\d{2})(-revised)?$", re.IGNORECASE)


def _stem(path: Path) -> str:
    name = Path(path).name
    for suffix in (".zip", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def month_in_file_name(path: Path) -> date | None:
    """The month a delivery's name states (``MHSDS_2024-04.zip``, ``MHS501_2024-04.csv`` → 2024-04-01)."""
    match = _NAME.match(_stem(Path(path)))
    if not match or not 1 <= int(match.group(3)) <= 12:
        return None
    return date(int(match.group(2)), int(match.group(3)), 1)


def is_revision_name(path: Path) -> bool:
    return _stem(Path(path)).lower().endswith("-revised")


def file_name(month: date, revised: bool = False, table: str = "MHSDS", suffix: str = ".zip") -> str:
    """``MHSDS_2024-04.zip`` (one zip of three tables) or ``MHS502_2024-04-revised.csv`` (one table's file)."""
    return f"{table}_{month:%Y-%m}{'-revised' if revised else ''}{suffix}"


def _is_delivery(path: Path) -> bool:
    """A zip (unless named as one table's file) or a CSV naming MHS501: the files a submission is named by."""
    lower = path.name.lower()
    if path.name.startswith(".") or not path.is_file():
        return False
    if lower.endswith(".zip"):
        return not (lower.startswith("mhs502") or lower.startswith("mhs001"))
    return lower.endswith(".csv") and "mhs501" in lower


def discover_files(folder: Path) -> list[Path]:
    """The deliveries directly in ``folder`` by month, each original before its ``-revised``; MHS502/MHS001
    CSVs are read with the MHS501 file whose name they share."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if _is_delivery(path)]
    return sorted(found, key=lambda p: (month_in_file_name(p) or date.max, is_revision_name(p), p.name))


def _sibling(path: Path, key: str) -> Path | None:
    """The ``key`` table's file beside an MHS501 CSV: the same name with MHS501 replaced (any case)."""
    name = re.sub("mhs501", key, path.name, count=1, flags=re.IGNORECASE)
    for candidate in path.parent.iterdir():
        if candidate.name.lower() == name.lower() and candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class MhFile:
    """A delivered submission, as far as can be told before checking its rows."""

    path: Path
    period_month: date
    is_revision: bool
    sha256: str
    source_file: str
    file_bytes: int = 0
    month_from_name: bool = True
    members: dict[str, str] = field(default_factory=dict)  # table key → file name as violations cite it
    source: str = SOURCE


@dataclass
class Submission:
    """The three tables of a submission as text frames indexed by CSV line number, under their published names
    (the layout's spelling, whatever the file's case or alias)."""

    tables: dict[str, pd.DataFrame]
    missing: dict[str, list[str]] = field(default_factory=dict)  # table key → required columns not found

    def __len__(self) -> int:
        return len(self.tables["MHS501"])


def _table_of_member(name: str) -> str | None:
    upper = Path(name).name.upper()
    found = [table.key for table in TABLES if table.key in upper]
    return found[0] if len(found) == 1 else None


def _read_members(path: Path) -> dict[str, tuple[str, bytes]]:
    """``{table key: (source_file, bytes)}`` of a delivery; :class:`ContractError` naming what is missing."""
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                members = {}
                for info in archive.infolist():
                    if info.is_dir() or not info.filename.lower().endswith(".csv") or "__MACOSX" in info.filename:
                        continue
                    key = _table_of_member(info.filename)
                    if key is None:
                        continue
                    if key in members:
                        raise ContractError(path.name, f"holds two {key} files", rule="one_file_per_table")
                    members[key] = (f"{path.name}/{Path(info.filename).name}", archive.read(info))
        except ContractError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as error:
            raise ContractError(
                path.name,
                f"is not a readable zip archive (truncated or corrupt download?): {error}",
                rule="readable_zip",
            ) from error
        missing = [table.key for table in TABLES if table.key not in members]
        if missing:
            raise ContractError(
                path.name,
                f"an MHSDS submission zip must hold the tables MHS501, MHS502 and MHS001 (a .csv whose name names "
                f"the table); missing: {', '.join(missing)}",
                rule="tables_present",
            )
        return members
    members = {"MHS501": raw.open_source_file(path)}
    for table in TABLES[1:]:
        sibling = _sibling(path, table.key)
        if sibling is None:
            expected = re.sub("mhs501", table.key, path.name, count=1, flags=re.IGNORECASE)
            raise ContractError(
                path.name,
                f"the {table.key} {table.title} file {expected} of this submission is not beside it",
                rule="tables_present",
            )
        members[table.key] = raw.open_source_file(sibling)
    return members


def _combined_sha256(path: Path) -> str:
    if path.suffix.lower() == ".zip":
        return raw.file_sha256(path)
    import hashlib

    digest = hashlib.sha256()
    for key in ("MHS501", "MHS502", "MHS001"):
        sibling = path if key == "MHS501" else _sibling(path, key)
        digest.update(key.encode() + (raw.file_sha256(sibling).encode() if sibling else b"-"))
    return digest.hexdigest()


def _select(table: Table, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The layout's columns of ``frame``, found by name case-insensitively (or an alias), under their published
    names; optional columns not in the file come back blank. Returns the frame and the required columns missing."""
    by_name: dict[str, int] = {}
    for position, name in enumerate(frame.columns):
        by_name.setdefault(str(name).strip().lower(), position)
    selected, missing = {}, []
    for column in table.columns:
        position = next((by_name[n.lower()] for n in (column.published, *column.aliases) if n.lower() in by_name), None)
        if position is None:
            if column.required:
                missing.append(column.published)
            selected[column.published] = pd.Series("", index=frame.index, dtype=object)
        else:
            selected[column.published] = frame.iloc[:, position].astype(str)
    return pd.DataFrame(selected, index=frame.index), missing


def read_file(path: Path) -> tuple[MhFile, Submission]:
    """Read a delivery's three tables as text. :class:`ContractError` for a delivery that cannot be read (a table
    missing, an unreadable zip, empty/HTML/non-UTF-8 CSVs) or whose month cannot be told."""
    path = Path(path)
    members = _read_members(path)
    tables, missing = {}, {}
    for table in TABLES:
        source_file, data = members[table.key]
        frame, absent = _select(table, raw.read_csv_as_strings(source_file, data))
        tables[table.key] = frame
        if absent:
            missing[table.key] = absent
    month = month_in_file_name(path)
    from_name = month is not None
    if month is None:
        ids = pd.to_numeric(tables["MHS501"]["UniqMonthID"].str.strip(), errors="coerce").dropna()
        if ids.empty:
            raise ContractError(
                path.name,
                "cannot tell which month the submission holds: its name does not follow the pattern "
                "(e.g. MHSDS_2024-04.zip) and no UniqMonthID in MHS501 is a number",
                rule="month_determinable",
            )
        month = month_of_uniq_month_id(int(ids.max()))
    files = sorted({source_file for source_file, _ in members.values()})
    mh_file = MhFile(
        path=path,
        period_month=month,
        is_revision=is_revision_name(path),
        sha256=_combined_sha256(path),
        source_file=members["MHS501"][0] if path.suffix.lower() != ".zip" else path.name,
        file_bytes=sum(len(data) for _, data in members.values())
        if path.suffix.lower() != ".zip"
        else path.stat().st_size,
        month_from_name=from_name,
        members={key: source_file for key, (source_file, _) in members.items()},
    )
    log.debug("read %s (%s)", mh_file.source_file, ", ".join(files))
    return mh_file, Submission(tables, missing)


# --------------------------------------------------------------------------------------------------------------
# Parsing

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UK = re.compile(r"^\d{2}/\d{2}/\d{4}$")


def _dates(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``datetime64[D]`` values (NaT when blank or unreadable), blank mask, unreadable mask. YYYY-MM-DD, or
    DD/MM/YYYY as some extract tools write it."""
    text = series.str.strip()
    blank = (text == "").to_numpy()
    iso = pd.to_datetime(text.where(text.str.match(_ISO)), format="%Y-%m-%d", errors="coerce")
    uk = pd.to_datetime(text.where(text.str.match(_UK)), format="%d/%m/%Y", errors="coerce")
    values = iso.fillna(uk).to_numpy(dtype="datetime64[D]")
    return values, blank, ~blank & np.isnat(values)


def _ints(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    text = series.str.strip()
    blank = (text == "").to_numpy()
    whole = text.str.fullmatch(r"[-+]?[0-9]{1,12}").to_numpy()
    values = pd.to_numeric(text.where(whole), errors="coerce").to_numpy(dtype=np.float64)
    return values, blank, ~blank & ~whole


@dataclass
class _Parsed:
    frame: pd.DataFrame
    values: dict[str, np.ndarray]  # raw name → typed values (dates, floats) for date and integer columns
    blank_required: np.ndarray  # per row: how many required cells are blank
    blank_columns: dict[str, np.ndarray]
    unreadable_dates: dict[str, np.ndarray]
    unreadable_numbers: dict[str, np.ndarray]
    row_problem: np.ndarray


@raw.once_per_frame
def _parse(table: Table, submission: Submission) -> _Parsed:
    """The typed cells of one of the submission's tables, and what is blank or unreadable in them. Remembered per
    submission, not per table: its three tables are one file, read ahead, checked and loaded together, and
    :func:`raw.once_per_frame` keeps two files' results (keyed by each table's frame, the third table's parse
    pushed out the first's, and the load parsed all three again: 5.4 s of the bundled samples' ingest)."""
    frame = submission.tables[table.key]
    n = len(frame)
    values, blank_columns, bad_dates, bad_numbers = {}, {}, {}, {}
    blank_required = np.zeros(n, dtype=np.float64)
    for column in table.columns:
        series = frame[column.published]
        if column.kind == "date":
            values[column.name], blank, bad_dates[column.published] = _dates(series)
        elif column.kind == "integer":
            values[column.name], blank, bad_numbers[column.published] = _ints(series)
        else:
            blank = (series.str.strip() == "").to_numpy()
        if column.required and (table.key, column.name) not in _MAY_BE_BLANK:
            blank_columns[column.published] = blank
            blank_required += blank
    problem = np.full(n, None, dtype=object)
    if table is MHS501:
        codes = frame["OrgIDProv"].str.strip().str.upper()
        problem[((codes != "") & ~codes.isin(known_providers())).to_numpy()] = "unknown_provider"
        start, end = values["start_date"], values["discharge_date"]
        before = ~np.isnat(start) & ~np.isnat(end) & (end < start)
        problem[before & (problem == None)] = "discharged_before_admission"  # noqa: E711 (elementwise)
    elif table is MHS502:
        month_ids = values["uniq_month_id"]
        codes = frame["MHAdmittedPatientClass"].str.strip().to_numpy()
        v6 = np.nan_to_num(month_ids, nan=0) >= FIRST_V6_MONTH_ID
        valid = np.where(v6, np.isin(codes, list(VALID_BED_TYPES["v6"])), np.isin(codes, list(VALID_BED_TYPES["v5"])))
        problem[(codes != "") & ~np.isnan(month_ids) & ~valid] = "bed_type_not_in_version"
    return _Parsed(frame, values, blank_required, blank_columns, bad_dates, bad_numbers, problem)


def _yyyymm(values: np.ndarray, fill: int) -> np.ndarray:
    months = values.astype("datetime64[M]").astype(np.int64)
    out = (months // 12 + 1970) * 100 + months % 12 + 1
    return np.where(np.isnat(values), fill, out).astype(np.float64)


# --------------------------------------------------------------------------------------------------------------
# The contract


def _batch(table: Table, parsed: _Parsed, month: date) -> pd.DataFrame:
    """What the table's GX suite validates: its columns under raw names (numbers as numbers, blank as null) and
    the derived ``check_*`` columns."""
    frame, n = parsed.frame, len(parsed.frame)
    file_month = month.year * 100 + month.month
    columns: dict[str, object] = {}
    for column in table.columns:
        if column.kind == "integer":
            columns[column.name] = parsed.values[column.name]
        else:
            series = frame[column.published].str.strip()
            columns[column.name] = series.where(series != "")
    columns["check_blank_required_cells"] = parsed.blank_required
    columns["check_unreadable_dates"] = (
        np.sum(list(parsed.unreadable_dates.values()), axis=0, dtype=np.float64) if parsed.unreadable_dates else 0.0
    )
    columns["check_non_numeric_cells"] = np.sum(list(parsed.unreadable_numbers.values()), axis=0, dtype=np.float64)
    starts = [c.name for c in table.columns if c.kind == "date"]
    latest = np.full(n, file_month, dtype=np.float64)
    for name in starts:
        latest = np.maximum(latest, _yyyymm(parsed.values[name], file_month))
    if "start_date" in parsed.values:
        columns["check_start_month"] = _yyyymm(parsed.values["start_date"], file_month)
        columns["check_latest_month"] = latest
    return pd.DataFrame(columns, index=frame.index)


def check_contract(mh_file: MhFile, submission: Submission, *, today: date | None = None) -> list[ContractViolation]:
    """Check a read submission against its file contract (SPEC §8); ``[]`` means it may be loaded.

    A required column missing from a table is named first (nothing else can be checked in that table). Each
    table's GX suite (``expectations/los_mh_mhs501_hospital_spells.json``, ``…_mhs502_ward_stays``,
    ``…_mhs001_mpi``) then runs once over its rows; violations name the table's file, line, column and rule.
    """
    now = today or date.today()
    month = mh_file.period_month
    found: list[ContractViolation] = []
    for table in TABLES:
        # violations name the delivery as its load does; the message says which table (and file) the row is in
        source_file = mh_file.source_file
        member = Path(mh_file.members.get(table.key, table.key)).name
        missing = submission.missing.get(table.key, [])
        for name in missing:
            found.append(
                ContractViolation(
                    source_file,
                    1,
                    name,
                    "required_column_present",
                    f"the {table.key} {table.title} table ({member}) has no column '{name}' (required; columns are "
                    "matched by name, any case, in any order)",
                )
            )
        if missing:
            continue
        parsed = _parse(table, submission)
        parameters = {
            "file_month_max": month.year * 100 + month.month,
            "latest_month": now.year * 100 + now.month,
        }
        failures = validate_frame(_batch(table, parsed, month), table.suite, parameters)
        labels = {c.name: c.published for c in table.columns}
        required = [c.published for c in table.columns if c.required and (table.key, c.name) not in _MAY_BE_BLANK]
        dates = [c.published for c in table.columns if c.kind == "date"]
        labels.update(
            {
                "check_blank_required_cells": ", ".join(required),
                "check_unreadable_dates": ", ".join(dates),
                "check_non_numeric_cells": ", ".join(c.published for c in table.columns if c.kind == "integer"),
                "check_start_month": next((c.published for c in table.columns if c.name == "start_date"), ""),
                "check_latest_month": ", ".join(dates),
            }
        )
        found += [
            replace(violation, message=f"{table.key} ({member}) line {violation.row}: {violation.message}")
            if violation.row is not None
            else replace(violation, message=f"{table.key} ({member}): {violation.message}")
            for violation in to_violations(
                source_file, failures, column_labels=labels, explain=_explainers(table, parsed, mh_file)
            )
        ]
    return found


def _explainers(table: Table, parsed: _Parsed, mh_file: MhFile) -> dict:
    frame = parsed.frame
    month = mh_file.period_month

    def at(line: int) -> int:
        return int(frame.index.get_loc(line))

    def blank(_failure, line, _value):
        return [(c, f"{c} is blank (required)") for c, mask in parsed.blank_columns.items() if mask[at(line)]]

    def bad_date(_failure, line, _value):
        return [
            (c, f"'{frame[c].loc[line]}' is not a date like 2024-04-30 (YYYY-MM-DD)")
            for c, mask in parsed.unreadable_dates.items()
            if mask[at(line)]
        ]

    def not_number(_failure, line, _value):
        return [
            (c, f"'{frame[c].loc[line]}' is not a whole number")
            for c, mask in parsed.unreadable_numbers.items()
            if mask[at(line)]
        ]

    start = next((c.published for c in table.columns if c.name == "start_date"), "")

    def start_month(_failure, line, _value):
        return [(start, f"start date {frame[start].loc[line]} is after {month:%B %Y}, the submission's month")]

    def future(_failure, line, _value):
        return [(start, "a date in this row is later than the current month")]

    def age(_failure, line, _value):
        return [("AgeRepPeriodEnd", f"AgeRepPeriodEnd '{frame['AgeRepPeriodEnd'].loc[line]}' is not an age 0-125")]

    return {
        "required_value_present": blank,
        "date_parses": bad_date,
        "number_is_whole": not_number,
        "started_by_file_month": start_month,
        "period_not_in_future": future,
        "age_range": age,
    }


# --------------------------------------------------------------------------------------------------------------
# Loading


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the three raw tables and ``raw_los_mh.file_loads`` if missing."""
    raw.ensure_file_loads(con, SCHEMA)
    for table in TABLES:
        columns = ",\n    ".join(f"{name} {kind}" for name, kind in table.raw_columns)
        con.execute(f"create table if not exists {table.qualified_table} (\n    {columns}\n)")


def _arrow(table: Table, parsed: _Parsed) -> pa.Table:
    frame = parsed.frame
    arrays: dict[str, pa.Array] = {"source_row": pa.array(frame.index.to_numpy(), pa.int32())}
    for column in table.columns:
        if column.kind == "date":
            arrays[column.name] = pa.array(parsed.values[column.name], pa.date32(), from_pandas=True)
        elif column.kind == "integer":
            values = parsed.values[column.name]
            arrays[column.name] = pa.array(
                np.where(np.isnan(values), 0, values).astype(np.int64), mask=np.isnan(values)
            )
        else:
            series = frame[column.published].str.strip()
            arrays[column.name] = pa.array(series.where(series != "", None), pa.string(), from_pandas=True)
    arrays["row_problem"] = pa.array(parsed.row_problem, pa.string(), from_pandas=True)
    return pa.table(arrays)


def _counts(parsed: dict[str, _Parsed]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key, rules in ROW_PROBLEMS.items():
        for rule in rules:
            count = int(np.sum(parsed[key].row_problem == rule))
            if count:
                counts[rule] = count
    return counts


def load_file(con: duckdb.DuckDBPyConnection, mh_file: MhFile, submission: Submission) -> LoadOutcome:
    """Load a submission that passed its contract, its three tables and its ``file_loads`` row in one
    transaction, idempotently (the same rules as every feed: :func:`orchestration.raw.plan_load`)."""
    ensure_raw_tables(con)
    month = mh_file.period_month

    def outcome(action: str, rows: int, message: str = "", violations=()) -> LoadOutcome:
        return LoadOutcome(action, mh_file.source_file, month, rows, mh_file.sha256, tuple(violations), message)

    plan = raw.plan_load(con, SCHEMA, month, mh_file.sha256, mh_file.is_revision)
    if plan.action in ("unchanged", "superseded"):
        return outcome(plan.action, len(submission), plan.message)
    parsed = {table.key: _parse(table, submission) for table in TABLES}
    views = {}
    try:
        for table in TABLES:
            views[table.key] = f"incoming_los_mh_{table.key}_{uuid.uuid4().hex}"
            con.register(views[table.key], _arrow(table, parsed[table.key]))

        def select(table: Table) -> str:
            names = [
                "cast(? as date) as period_month"
                if c == "period_month"
                else "cast(? as varchar) as source_file"
                if c == "source_file"
                else c
                for c, _ in table.raw_columns
            ]
            return f"select {', '.join(names)} from {views[table.key]}"

        params = [month, mh_file.source_file]
        if plan.action == "conflict":
            same = all(
                raw.same_rows(
                    con,
                    table.qualified_table,
                    month,
                    select(table),
                    params,
                    [c.name for c in table.columns] + ["row_problem"],
                )
                for table in TABLES
            )
            if same:
                return outcome("unchanged", len(submission), f"same rows as {plan.current.source_file}")
            violation = ContractViolation(
                mh_file.source_file,
                None,
                None,
                "revision_named_revised",
                f"period already loaded from {plan.current.source_file} with different rows; "
                "a re-submission must be named -revised",
            )
            return outcome("rejected", len(submission), violation.message, (violation,))
        con.begin()
        try:
            for table in TABLES:
                con.execute(f"delete from {table.qualified_table} where period_month = ?", [month])
                con.execute(f"insert into {table.qualified_table} by name {select(table)}", params)
            rows = con.execute(f"select count(*) from {MHS501.qualified_table} where period_month = ?", [month])
            rows = rows.fetchone()[0]
            con.execute(
                f"update {SCHEMA}.file_loads set is_current = false where period_month = ? and is_current", [month]
            )
            con.execute(
                f"""insert into {SCHEMA}.file_loads
                    select coalesce(max(load_id), 0) + 1, ?, ?, ?, ?, ?, ?, ?, true, ? from {SCHEMA}.file_loads""",
                [
                    mh_file.source_file,
                    month,
                    mh_file.sha256,
                    mh_file.file_bytes,
                    rows,
                    mh_file.is_revision,
                    plan.action,
                    datetime.now(UTC).replace(tzinfo=None),
                ],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        counts = _counts(parsed)
        summary = (
            f"{sum(counts.values())} row problem(s) loaded and flagged: "
            + ", ".join(f"{rule} {count}" for rule, count in counts.items())
            if counts
            else "no row problems"
        )
        return outcome(plan.action, rows, f"{plan.message}; {summary}" if plan.message else summary)
    finally:
        for view in views.values():
            con.unregister(view)


def row_problem_counts(con: duckdb.DuckDBPyConnection, *, period_month: date | None = None) -> dict[str, int]:
    """``{rule: rows}`` of flagged rows over the three tables' current loads (one month if ``period_month``)."""
    ensure_raw_tables(con)
    where, params = "row_problem is not null", []
    if period_month is not None:
        where += " and period_month = ?"
        params.append(period_month)
    union = " union all ".join(f"select row_problem from {t.qualified_table} where {where}" for t in TABLES)
    rows = con.execute(
        f"select row_problem, count(*) from ({union}) group by 1 order by 1", params * len(TABLES)
    ).fetchall()
    return {rule: int(count) for rule, count in rows}


_PROBLEM_COLUMN = {
    "unknown_provider": "OrgIDProv",
    "discharged_before_admission": "DischDateHospProvSpell",
    "bed_type_not_in_version": "MHAdmittedPatientClass",
}


def flagged_rows(con: duckdb.DuckDBPyConnection, *, run_id: str, limit: int = raw.MAX_ROWS_PER_RULE) -> list[dict]:
    """The flagged rows of the submissions ``run_id`` loaded, each named by file, line, column and rule."""
    from orchestration.audit import ensure_audit_schema

    ensure_raw_tables(con)
    ensure_audit_schema(con)
    found = []
    details = {
        MHS501: "org_id_prov, cast(start_date as varchar), cast(discharge_date as varchar)",
        MHS502: "admitted_patient_class, cast(uniq_month_id as varchar), null",
        MHS001: "null, null, null",
    }
    for table in TABLES:
        rows = con.execute(
            f"""
            with loaded as (
                select l.period_month, l.source_file
                from {SCHEMA}.file_loads l
                join audit.contract_checks c
                    on c.source = ? and c.run_id = ? and c.period_month = l.period_month and c.sha256 = l.sha256
                where l.is_current
            ),
            flagged as (
                select r.source_file, r.source_row, r.row_problem, {details[table]},
                       row_number() over (partition by r.source_file, r.row_problem order by r.source_row) as nth
                from {table.qualified_table} r join loaded using (period_month, source_file)
                where r.row_problem is not null
            )
            select * exclude (nth) from flagged where nth <= ? order by source_file, source_row
            """,
            [SOURCE, run_id, limit],
        ).fetchall()
        for source_file, line, rule, a, b, c in rows:
            if rule == "unknown_provider":
                message = f"'{a}' is not an organisation in seeds/reference"
            elif rule == "discharged_before_admission":
                message = f"discharged {c}, before the admission on {b}"
            else:
                version = "v6" if b and int(b) >= FIRST_V6_MONTH_ID else "v5"
                message = f"MHAdmittedPatientClass '{a}' is not an MHSDS {version} code (UniqMonthID {b})"
            found.append(
                {
                    "source": SOURCE,
                    "source_file": source_file,
                    "source_row": line,
                    "source_column": _PROBLEM_COLUMN[rule],
                    "rule": rule,
                    "message": f"{message} (the {table.key} {table.title} table; loaded, flagged and left out "
                    "of the measures)",
                }
            )
    return found


# --------------------------------------------------------------------------------------------------------------
# The loop and re-checking what is loaded


def months_in_folder(folder: Path) -> list[date]:
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
    """Read, check and load every submission in ``folder``; quarantine (to ``quarantine_dir/los_mh/``) the ones
    that fail (a three-file submission: its MHS501 file is quarantined, the reason file names the others)."""
    ensure_raw_tables(con)
    return raw.ingest_files(
        con,
        discover_files(folder),
        schema=SCHEMA,
        source=SOURCE,
        read=read_file,
        check=lambda mh_file, submission: check_contract(mh_file, submission, today=today),
        load=load_file,
        month_in_name=month_in_file_name,
        quarantine_dir=Path(quarantine_dir),
        move=move_rejected,
        window=months,
    )


def submission_from_raw(con: duckdb.DuckDBPyConnection, period_month: date) -> tuple[MhFile, Submission] | None:
    """The current load of ``period_month`` rebuilt as the tables it came from (text cells, by line number)."""
    ensure_raw_tables(con)
    load = raw.current_load(con, SCHEMA, period_month)
    if load is None:
        return None
    tables = {}
    for table in TABLES:
        selects = ["source_row"] + [
            f"coalesce(strftime({c.name}, '%Y-%m-%d'), '') as c{i}"
            if c.kind == "date"
            else f"coalesce(cast({c.name} as varchar), '') as c{i}"
            for i, c in enumerate(table.columns)
        ]
        arrow = con.execute(
            f"select {', '.join(selects)} from {table.qualified_table} where period_month = ? order by source_row",
            [period_month],
        ).fetch_arrow_table()
        frame = arrow.drop(["source_row"]).to_pandas().astype(object)
        frame.columns = [c.published for c in table.columns]
        frame.index = pd.Index(arrow.column("source_row").to_numpy(), name="line")
        tables[table.key] = frame.astype(str)
    mh_file = MhFile(
        path=Path(load.source_file),
        period_month=period_month,
        is_revision=load.is_revision,
        sha256=load.sha256,
        source_file=load.source_file,
    )
    return mh_file, Submission(tables)


def check_loaded_months(
    con: duckdb.DuckDBPyConnection, *, run_id: str | None = None, today: date | None = None
) -> dict[date, list[ContractViolation]]:
    """Re-run the file contract on every current month not yet checked in ``audit.contract_checks`` (keyed by
    the load's SHA-256), record each result, and return ``{month: violations}`` for the months checked now."""
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
        rebuilt = submission_from_raw(con, month)
        if rebuilt is None:
            continue
        mh_file, submission = rebuilt
        violations = check_contract(mh_file, submission, today=today)
        raw.forget_frame(submission)
        errors = raw.errors_of(violations)
        con.execute(
            "insert into audit.contract_checks values (?, ?, ?, ?, ?, ?, ?)",
            [run_id, SOURCE, month, mh_file.sha256, not errors, len(errors), datetime.now(UTC).replace(tzinfo=None)],
        )
        outcomes[month] = violations
    return outcomes
