"""The ODS organisation reference: NHS trusts (``etr.csv``) and successions (``succ.csv``), SPEC §3.4.

The warehouse's own reference (``seeds/reference/organisations.csv`` and ``successions.csv``) is what attribution
uses, because a programme office edits it. ODS is the national source of truth it should agree with, so this
module reads ODS's files and lists, in words a PMO can act on, where the two differ
(:func:`reconcile_reference`). :func:`write_sample_ods` writes ODS-layout files generated from the seeds, so the
bundled samples reconcile by construction and a user can drop in the real files from
``https://files.digital.nhs.uk/assets/ods/current/`` (``etr.zip``, ``succ.zip``) in their place.

Both files have no header. ``etr.csv`` uses NHS Digital's standard 27-field organisation layout; the positions the
warehouse reads are 1–12, the rest are kept under the names ODS's documentation gives them (``null_<n>`` where it
documents the position as unused for this file). ``succ.csv`` has five fields (see :data:`SUCC_FIELDS`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from orchestration.raw import MAX_ROWS_PER_RULE, ContractError, ContractViolation, open_source_file

REFERENCE_DIR = Path(__file__).resolve().parent.parent.parent / "seeds" / "reference"


@dataclass(frozen=True)
class OdsField:
    position: int  # 1-based, as ODS's documentation numbers them
    label: str  # as ODS's documentation names it
    column: str  # the column name in the frame read_etr returns


#: ``etr.csv``: the standard 27-field ODS layout. Positions 13–27 are mostly unused for NHS trusts.
ETR_FIELDS: tuple[OdsField, ...] = (
    OdsField(1, "Organisation Code", "org_code"),
    OdsField(2, "Name", "org_name"),
    OdsField(3, "National Grouping", "region_code"),
    OdsField(4, "High Level Health Geography", "icb_code"),
    OdsField(5, "Address Line 1", "address_line_1"),
    OdsField(6, "Address Line 2", "address_line_2"),
    OdsField(7, "Address Line 3", "address_line_3"),
    OdsField(8, "Address Line 4", "address_line_4"),
    OdsField(9, "Address Line 5", "address_line_5"),
    OdsField(10, "Postcode", "postcode"),
    OdsField(11, "Open Date", "open_date"),
    OdsField(12, "Close Date", "close_date"),
    OdsField(13, "Null", "null_13"),
    OdsField(14, "Organisation Sub-Type Code", "organisation_sub_type_code"),
    OdsField(15, "Parent Organisation Code", "parent_organisation_code"),
    OdsField(16, "Join Parent Date", "join_parent_date"),
    OdsField(17, "Left Parent Date", "left_parent_date"),
    OdsField(18, "Contact Telephone Number", "contact_telephone_number"),
    OdsField(19, "Null", "null_19"),
    OdsField(20, "Null", "null_20"),
    OdsField(21, "Null", "null_21"),
    OdsField(22, "Amended Record Indicator", "amended_record_indicator"),
    OdsField(23, "Null", "null_23"),
    OdsField(24, "GOR Code", "gor_code"),
    OdsField(25, "Null", "null_25"),
    OdsField(26, "Null", "null_26"),
    OdsField(27, "Null", "null_27"),
)
ETR_WIDTH = len(ETR_FIELDS)

#: ``succ.csv``: 1 predecessor (the organisation that closed), 2 its successor, 3 the succession reason code,
#: 4 the effective date (YYYYMMDD), 5 the succession indicator. Positions 3 and 5 are carried, not interpreted.
SUCC_FIELDS: tuple[OdsField, ...] = (
    OdsField(1, "Organisation Code", "predecessor_org_code"),
    OdsField(2, "Successor Organisation Code", "successor_org_code"),
    OdsField(3, "Succession Reason Code", "reason_code"),
    OdsField(4, "Effective Date", "effective_date"),
    OdsField(5, "Succession Indicator", "succession_indicator"),
)
SUCC_WIDTH = len(SUCC_FIELDS)

ETR_DATE_FIELDS = (11, 12, 16, 17)
SUCC_DATE_FIELDS = (4,)
#: Fields that every row must fill.
ETR_REQUIRED = (1, 2, 11)
SUCC_REQUIRED = (1, 2, 4)

ETR_FILE = "etr.csv"
SUCC_FILE = "succ.csv"


# --------------------------------------------------------------------------------------------------------------
# Reading


def read_etr(path: Path) -> pd.DataFrame:
    """Read an ODS trust file (``etr.csv``, or a ``.zip`` holding it) into a typed frame, one row per trust.

    Columns are those of :data:`ETR_FIELDS`: codes and text as strings (blank → missing), dates as
    ``datetime64`` (blank → ``NaT``). The index is the line number in the file. Raises :class:`ContractError`
    naming the file, line and field when a row has the wrong number of fields, a required field is blank, a date
    is not ``YYYYMMDD`` or an organisation code repeats.
    """
    return _read_headerless(Path(path), ETR_FIELDS, ETR_DATE_FIELDS, ETR_REQUIRED, unique=1)


def read_successions(path: Path) -> pd.DataFrame:
    """Read an ODS successions file (``succ.csv`` or a ``.zip`` holding it); columns as :data:`SUCC_FIELDS`."""
    return _read_headerless(Path(path), SUCC_FIELDS, SUCC_DATE_FIELDS, SUCC_REQUIRED)


def _read_headerless(
    path: Path,
    fields: Sequence[OdsField],
    date_fields: Sequence[int],
    required: Sequence[int],
    unique: int | None = None,
) -> pd.DataFrame:
    """Rows of exactly ``len(fields)`` fields; ``required`` positions filled; dates YYYYMMDD; ``unique`` unique."""
    source_file, data = open_source_file(path)
    text = _decode(source_file, data)
    if not text.strip():
        raise ContractError(source_file, "the file is empty", rule="not_empty")
    if text.lstrip()[:1] == "<":
        raise ContractError(
            source_file,
            "is an HTML or XML page saved under a .csv name, not the ODS data file (download it again)",
            rule="not_html",
        )

    width = len(fields)
    rows: list[list[str]] = []
    lines: list[int] = []
    violations: list[ContractViolation] = []
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        line = reader.line_num
        if not row:
            continue  # blank lines (a trailing newline) carry nothing
        if len(row) != width:
            violations.append(
                ContractViolation(
                    source_file,
                    line,
                    None,
                    "row_field_count",
                    f"line {line} has {len(row)} fields where the ODS layout has {width} (truncated or not this file?)",
                )
            )
            continue
        row = [cell.strip() for cell in row]
        for position in required:
            if not row[position - 1]:
                field = fields[position - 1]
                violations.append(
                    ContractViolation(
                        source_file, line, field.label, "required", f"line {line}: {field.label} is blank"
                    )
                )
        for position in date_fields:
            value = row[position - 1]
            if value and _parse_date(value) is None:
                field = fields[position - 1]
                violations.append(
                    ContractViolation(
                        source_file,
                        line,
                        field.label,
                        "date_yyyymmdd",
                        f"line {line}: {field.label} {value!r} is not a date written YYYYMMDD",
                    )
                )
        if unique is not None and row[unique - 1]:
            value, field = row[unique - 1], fields[unique - 1]
            if value in seen:
                violations.append(
                    ContractViolation(
                        source_file,
                        line,
                        field.label,
                        "unique",
                        f"line {line}: {field.label} {value} appears again (first on line {seen[value]})",
                    )
                )
            seen.setdefault(value, line)
        rows.append(row)
        lines.append(line)
    if violations:
        raise _contract_error(source_file, violations)
    if not rows:
        raise ContractError(source_file, "has no data rows", rule="has_rows")

    columns = [field.column for field in fields]
    raw = pd.DataFrame(rows, columns=columns, index=pd.Index(lines, name="line"), dtype="string")
    frame = raw.replace("", pd.NA)
    for position in date_fields:
        column = fields[position - 1].column
        frame[column] = pd.to_datetime(raw[column].replace("", pd.NA), format="%Y%m%d")
    return frame


def _decode(source_file: str, data: bytes) -> str:
    """ODS files are ASCII in practice; UTF-8 is tried first, then Windows-1252 (which decodes any byte)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _parse_date(value: str) -> date | None:
    try:
        return datetime.strptime(value, "%Y%m%d").date() if len(value) == 8 else None
    except ValueError:
        return None


def _contract_error(source_file: str, violations: list[ContractViolation]) -> ContractError:
    """One error carrying every violation found; its message names the first one so that it reads on its own."""
    shown = violations[:MAX_ROWS_PER_RULE]
    first = shown[0]
    extra = f" (and {len(violations) - 1} more problem(s))" if len(violations) > 1 else ""
    where = f"row {first.row}" + (f", column {first.column}" if first.column else "")
    return ContractError(
        source_file,
        f"{where}: {first.message}{extra}",
        rule=first.rule,
        row=first.row,
        violations=shown,
    )


# --------------------------------------------------------------------------------------------------------------
# Reconciling our reference with ODS


def _normalise_name(name: object) -> str:
    """Names compared as ODS and a PMO would both accept: case, punctuation and ``&``/``and`` ignored."""
    text = str(name or "").upper().replace("&", " AND ")
    text = re.sub(r"[^A-Z0-9 ]+", "", text.replace("-", " "))
    return " ".join(text.split())


def _as_date(value: object) -> date | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        return date.fromisoformat(value) if "-" in value else _parse_date(value)
    return pd.Timestamp(value).date()


def _fmt(day: date | None) -> str:
    return day.isoformat() if day else "none (open)"


def _blank(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value).strip()


def reconcile_reference(etr: pd.DataFrame, successions: pd.DataFrame, reference_dir: Path = REFERENCE_DIR) -> list[str]:
    """Where ``organisations.csv`` / ``successions.csv`` in ``reference_dir`` disagree with ODS; ``[]`` if nowhere.

    Checked for each trust in our reference: present in ODS; name (ignoring case and punctuation); ICB;
    region; close date. For successions: each of ours is in ODS with the same effective date, and each ODS
    succession involving one of our trusts is in ours. Each discrepancy is one sentence naming the trust, both
    values and the file to change.
    """
    reference_dir = Path(reference_dir)
    orgs = pd.read_csv(reference_dir / "organisations.csv", dtype=str, keep_default_na=False)
    ours_succ = pd.read_csv(reference_dir / "successions.csv", dtype=str, keep_default_na=False)
    ods_by_code = {str(row.org_code): row for row in etr.itertuples(index=False)}
    problems: list[str] = []

    for org in orgs.itertuples(index=False):
        code, name = org.org_code.strip(), org.org_name.strip()
        who = f"{code} ({name})"
        ods = ods_by_code.get(code)
        if ods is None:
            problems.append(f"{who}: in organisations.csv but missing from the ODS trust file (etr.csv)")
            continue
        if _normalise_name(name) != _normalise_name(ods.org_name):
            problems.append(f"{who}: name differs from ODS, which has {ods.org_name!r}")
        for column, label in (("icb_code", "ICB"), ("region_code", "region")):
            ours, theirs = _blank(getattr(org, column)), _blank(getattr(ods, column))
            if ours != theirs:
                problems.append(
                    f"{who}: {label} is {ours or 'blank'} in organisations.csv but {theirs or 'blank'} in ODS"
                )
        ours_close, ods_close = _as_date(org.close_date), _as_date(ods.close_date)
        if ours_close != ods_close:
            problems.append(
                f"{who}: close date is {_fmt(ours_close)} in organisations.csv but {_fmt(ods_close)} in ODS"
            )

    def key(pred: object, succ: object) -> tuple[str, str]:
        return _blank(pred), _blank(succ)

    ods_succ = {
        key(row.predecessor_org_code, row.successor_org_code): _as_date(row.effective_date)
        for row in successions.itertuples(index=False)
    }
    ours_map = {
        key(row.predecessor_org_code, row.successor_org_code): _as_date(row.effective_date)
        for row in ours_succ.itertuples(index=False)
    }
    for (pred, succ), effective in ours_map.items():
        if (pred, succ) not in ods_succ:
            problems.append(
                f"succession {pred} → {succ} ({_fmt(effective)}): in successions.csv but not in the ODS "
                "successions file (succ.csv)"
            )
        elif ods_succ[(pred, succ)] != effective:
            problems.append(
                f"succession {pred} → {succ}: effective {_fmt(effective)} in successions.csv but "
                f"{_fmt(ods_succ[(pred, succ)])} in ODS"
            )
    our_codes = set(orgs.org_code.str.strip())
    for (pred, succ), effective in ods_succ.items():
        if (pred in our_codes or succ in our_codes) and (pred, succ) not in ours_map:
            problems.append(
                f"succession {pred} → {succ} ({_fmt(effective)}): recorded by ODS but missing from successions.csv "
                f"(the history of {pred} belongs to {succ})"
            )
    return problems


# --------------------------------------------------------------------------------------------------------------
# Sample files


def _synthetic_postcode(index: int) -> str:
    """``ZZ99`` is the pseudo-postcode area NHS data uses for no fixed abode: never a real address."""
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return f"ZZ99 {index % 10}{letters[(index // 10) % 20]}{letters[index % 20]}"


def write_sample_ods(out_dir: Path, reference_dir: Path = REFERENCE_DIR) -> list[Path]:
    """Write ``out_dir/ods/etr.csv`` and ``succ.csv`` in ODS's layout, generated from the reference seeds.

    Names are upper case as ODS publishes them, addresses are ``SAMPLE ADDRESS`` and postcodes synthetic, so the
    files reconcile with the seeds by construction and carry nothing that looks like a real address. Returns the
    paths written.
    """
    reference_dir = Path(reference_dir)
    orgs = pd.read_csv(reference_dir / "organisations.csv", dtype=str, keep_default_na=False)
    succs = pd.read_csv(reference_dir / "successions.csv", dtype=str, keep_default_na=False)
    folder = Path(out_dir) / "ods"
    folder.mkdir(parents=True, exist_ok=True)

    def yyyymmdd(value: str) -> str:
        day = _as_date(value)
        return f"{day:%Y%m%d}" if day else ""

    etr_rows = []
    for index, org in enumerate(orgs.sort_values("org_code").itertuples(index=False)):
        row = [""] * ETR_WIDTH
        row[0] = org.org_code.strip()
        row[1] = org.org_name.strip().upper()
        row[2] = org.region_code.strip()
        row[3] = org.icb_code.strip()
        row[4] = "SAMPLE ADDRESS"
        row[5] = f"{org.org_code.strip()} HOSPITAL SITE"
        row[7] = "SAMPLE TOWN"
        row[9] = _synthetic_postcode(index)
        row[10] = yyyymmdd(org.open_date)
        row[11] = yyyymmdd(org.close_date)
        row[21] = "0"  # Amended Record Indicator: not amended since the previous release
        etr_rows.append(row)
    succ_rows = [
        [
            s.predecessor_org_code.strip(),
            s.successor_org_code.strip(),
            "",  # Succession Reason Code: not interpreted by the warehouse, left blank in samples
            yyyymmdd(s.effective_date),
            "",  # Succession Indicator: likewise
        ]
        for s in succs.itertuples(index=False)
    ]
    return [_write_rows(folder / ETR_FILE, etr_rows), _write_rows(folder / SUCC_FILE, succ_rows)]


def _write_rows(path: Path, rows: list[list[str]]) -> Path:
    """Every field quoted and CRLF line ends, as ODS's downloads are written."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return path
