"""The ODS organisation reference: NHS trusts (``etr.csv``), care trusts (``ect.csv``) and successions (``succ.csv``).

The warehouse's own reference (``seeds/reference``: organisations, ICBs and their successions) is what attribution
uses, because a programme office edits it. ODS is the national source of truth it should agree with, so this
module reads ODS's files as published and lists, in words a PMO can act on, where the two differ
(:func:`reconcile_reference`). :func:`write_sample_ods` writes ODS-layout files generated from the seeds, so the
bundled samples reconcile by construction and a user can drop in the real files from
``https://files.digital.nhs.uk/assets/ods/current/`` (``etr.zip``, ``ect.zip``, ``succ.zip``) in their place.

ODS lists NHS trusts in ``etr.csv`` and care trusts in ``ect.csv``: a trust that was established as a care trust
keeps its ``TA…`` code and its place in ``ect.csv`` after it becomes an NHS foundation trust (Bradford District
Care, TAD; Black Country Healthcare, TAJ). Both files use NHS Digital's standard 27-field organisation layout; the
positions the warehouse reads are 1–12, the rest are kept under the names ODS's documentation gives them
(``null_<n>`` where it documents the position as unused). ``succ.csv`` has five fields (see :data:`SUCC_FIELDS`).
None of the files has a header; every field is quoted and lines end in CRLF.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from orchestration.raw import FIRST_MONTH, MAX_ROWS_PER_RULE, ContractError, ContractViolation, open_source_file

REFERENCE_DIR = Path(__file__).resolve().parent.parent.parent / "seeds" / "reference"


@dataclass(frozen=True)
class OdsField:
    position: int  # 1-based, as ODS's documentation numbers them
    label: str  # as ODS's documentation names it
    column: str  # the column name in the frame read_etr returns


#: ``etr.csv`` and ``ect.csv``: the standard 27-field ODS layout. Positions 13–27 are mostly unused for trusts.
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

#: ``succ.csv``: 1 the predecessor (the organisation that closed legally), 2 its successor, 3 a reason code that ODS
#: leaves blank, 4 the effective date (YYYYMMDD: the successor's legal start), 5 the forward succession indicator:
#: ``1`` when the successor has itself been succeeded since (its own record holds a further succession, so a chain
#: continues), ``0`` when it has not. ODS's reference data catalogue (Succession: "a data item 'forwardSuccession'
#: is supplied that indicates whether there is any further forward succession held on the target") describes it;
#: in the real file 491 of the 498 rows marked ``1`` have a successor that is a predecessor elsewhere in the file
#: and 11,032 of the 11,039 rows marked ``0`` do not. The warehouse follows chains itself and does not rely on it.
SUCC_FIELDS: tuple[OdsField, ...] = (
    OdsField(1, "Organisation Code", "predecessor_org_code"),
    OdsField(2, "Successor Organisation Code", "successor_org_code"),
    OdsField(3, "Succession Reason Code", "reason_code"),
    OdsField(4, "Effective Date", "effective_date"),
    OdsField(5, "Forward Succession Indicator", "forward_succession"),
)
SUCC_WIDTH = len(SUCC_FIELDS)

ETR_DATE_FIELDS = (11, 12, 16, 17)
SUCC_DATE_FIELDS = (4,)
#: Fields that every row must fill.
ETR_REQUIRED = (1, 2, 11)
SUCC_REQUIRED = (1, 2, 4, 5)
#: Fields holding ODS codes (when filled): three to five letters and digits for organisations and ICBs (``RR8``,
#: ``G6V2S``, ``QWO``, ``D7T5G``), up to nine in ``succ.csv``, which also records sites, practices and councils.
ETR_CODE_FIELDS = {1: 5, 3: 3, 4: 5}
SUCC_CODE_FIELDS = {1: 9, 2: 9}
#: Fields restricted to a few values.
SUCC_VALUES = {5: ("0", "1")}

ETR_FILE = "etr.csv"
ECT_FILE = "ect.csv"
SUCC_FILE = "succ.csv"
#: The ODS files that list the trusts of ``organisations.csv``, in the same layout: NHS trusts, then care trusts.
ORGANISATION_FILES = (ETR_FILE, ECT_FILE)

#: A care trust's ODS code (TAC … TAP): ODS lists these organisations in ``ect.csv``, not ``etr.csv``.
CARE_TRUST_CODE = re.compile(r"TA[A-Z0-9]")
#: The Health and Care Act 2022 established the 42 integrated care boards on 1 July 2022. Successions among the same
#: Q-codes before then joined sustainability and transformation partnerships or NHS England's local offices.
ICBS_ESTABLISHED = date(2022, 7, 1)


# --------------------------------------------------------------------------------------------------------------
# Reading


def read_etr(path: Path) -> pd.DataFrame:
    """Read an ODS trust file (``etr.csv``, or a ``.zip`` holding it) into a typed frame, one row per trust.

    Columns are those of :data:`ETR_FIELDS`: codes and text as strings (blank → missing), dates as
    ``datetime64`` (blank → ``NaT``). The index is the line number in the file. Raises :class:`ContractError`
    naming the file, line and field when a row has the wrong number of fields, a required field is blank, a code
    is not letters and digits, a date is not ``YYYYMMDD`` or an organisation code repeats.
    """
    return _read_headerless(Path(path), ETR_FIELDS, ETR_DATE_FIELDS, ETR_REQUIRED, ETR_CODE_FIELDS, unique=1)


def read_ect(path: Path) -> pd.DataFrame:
    """Read an ODS care trusts file (``ect.csv`` or a ``.zip`` holding it): the same layout as :func:`read_etr`."""
    return read_etr(path)


def read_successions(path: Path) -> pd.DataFrame:
    """Read an ODS successions file (``succ.csv`` or a ``.zip`` holding it); columns as :data:`SUCC_FIELDS`.

    ``forward_succession`` is a boolean; the other rules are those of :func:`read_etr`.
    """
    frame = _read_headerless(
        Path(path), SUCC_FIELDS, SUCC_DATE_FIELDS, SUCC_REQUIRED, SUCC_CODE_FIELDS, values=SUCC_VALUES
    )
    frame["forward_succession"] = (frame["forward_succession"] == "1").astype(bool)
    return frame


@dataclass(frozen=True)
class OdsFiles:
    """What an ODS folder holds: its trusts (etr and ect together, ``ods_file`` naming each row's file), its
    successions (empty when there is no ``succ.csv``) and the names of the files read."""

    organisations: pd.DataFrame
    successions: pd.DataFrame
    files: tuple[str, ...]


def find_ods_file(folder: Path, name: str) -> Path | None:
    """``folder/etr.csv`` or ``folder/etr.zip`` (``name`` without its suffix decides), ``None`` when neither."""
    stem = Path(name).stem
    found = sorted(p for p in Path(folder).glob(f"{stem}.*") if p.suffix.lower() in (".csv", ".zip"))
    return found[0] if found else None


def read_ods_folder(folder: Path) -> OdsFiles | None:
    """Read ``etr``, ``ect`` and ``succ`` (each ``.csv`` or ``.zip``) from ``folder``; ``None`` without an ``etr``.

    A trust code in both ``etr`` and ``ect`` is refused like a code repeated within one file.
    """
    etr = find_ods_file(folder, ETR_FILE) if Path(folder).is_dir() else None
    if etr is None:
        return None
    frames, files = [], []
    for name in ORGANISATION_FILES:
        path = find_ods_file(folder, name)
        if path is not None:
            frame = read_etr(path)
            frames.append(frame.assign(ods_file=path.name).reset_index())
            files.append(path.name)
    organisations = pd.concat(frames, ignore_index=True)
    repeated = organisations[organisations.duplicated("org_code", keep=False)]
    if not repeated.empty:
        first, again = repeated.iloc[0], repeated.iloc[1]
        raise ContractError(
            again.ods_file,
            f"row {again.line}, column Organisation Code: {again.org_code} is also in {first.ods_file} (line "
            f"{first.line}); ODS lists a trust in one file only",
            rule="unique",
            row=int(again.line),
        )
    succ = find_ods_file(folder, SUCC_FILE)
    if succ is not None:
        successions = read_successions(succ)
        files.append(succ.name)
    else:
        successions = pd.DataFrame({field.column: pd.Series(dtype=object) for field in SUCC_FIELDS})
    return OdsFiles(organisations.set_index("line"), successions, tuple(files))


def _read_headerless(
    path: Path,
    fields: Sequence[OdsField],
    date_fields: Sequence[int],
    required: Sequence[int],
    code_fields: dict[int, int],
    unique: int | None = None,
    values: dict[int, tuple[str, ...]] | None = None,
) -> pd.DataFrame:
    """Rows of exactly ``len(fields)`` fields; ``required`` positions filled; codes of letters and digits no longer
    than ``code_fields`` gives; dates YYYYMMDD; ``values`` among those allowed; ``unique`` unique."""
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

    def violation(line: int, position: int, rule: str, message: str) -> None:
        label = fields[position - 1].label
        violations.append(ContractViolation(source_file, line, label, rule, f"line {line}: {label} {message}"))

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
                violation(line, position, "required", "is blank")
        for position, longest in code_fields.items():
            value = row[position - 1]
            if value and not re.fullmatch(rf"[A-Z0-9]{{3,{longest}}}", value):
                violation(line, position, "code_format", f"{value!r} is not an ODS code (3 to {longest} A-Z, 0-9)")
        for position in date_fields:
            value = row[position - 1]
            if value and _parse_date(value) is None:
                violation(line, position, "date_yyyymmdd", f"{value!r} is not a date written YYYYMMDD")
        for position, allowed in (values or {}).items():
            value = row[position - 1]
            if value and value not in allowed:
                violation(line, position, "accepted_values", f"{value!r} is not one of {', '.join(allowed)}")
        if unique is not None and row[unique - 1]:
            value = row[unique - 1]
            if value in seen:
                violation(line, unique, "unique", f"{value} appears again (first on line {seen[value]})")
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


@dataclass(frozen=True)
class _SeedRow:
    """A row of a reference seed, with the line a PMO opens the file at (the header is line 1)."""

    line: int
    values: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return (self.values.get(column) or "").strip()


def _read_seed(path: Path) -> list[_SeedRow]:
    """A seed's rows, or none when the file does not exist (an older reference folder)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [_SeedRow(line, row) for line, row in enumerate(csv.DictReader(handle), start=2)]


@dataclass(frozen=True)
class _Succession:
    predecessor: str
    successor: str
    effective: date | None


def _ods_successions(successions: pd.DataFrame) -> dict[tuple[str, str], date | None]:
    return {
        (_blank(row.predecessor_org_code), _blank(row.successor_org_code)): _as_date(row.effective_date)
        for row in successions.itertuples(index=False)
    }


def _linked(start: Iterable[str], edges: Iterable[tuple[str, str]]) -> set[str]:
    """``start`` with everything whose history ends up with it or that carries its history: its successors
    (transitively), then every predecessor (transitively) of any of those. A predecessor's other successors (the
    rest of a split) are not followed: their history is not ours."""
    forward: dict[str, set[str]] = defaultdict(set)
    backward: dict[str, set[str]] = defaultdict(set)
    for predecessor, successor in edges:
        forward[predecessor].add(successor)
        backward[successor].add(predecessor)

    def close(codes: set[str], graph: dict[str, set[str]]) -> set[str]:
        found, todo = set(codes), list(codes)
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in found:
                    found.add(nxt)
                    todo.append(nxt)
        return found

    return close(close(set(start), forward), backward)


def reconcile_reference(
    organisations: pd.DataFrame,
    successions: pd.DataFrame,
    reference_dir: Path = REFERENCE_DIR,
    *,
    since: date = FIRST_MONTH,
) -> list[str]:
    """Where ``seeds/reference`` (in ``reference_dir``) disagrees with ODS, one line per discrepancy; ``[]`` if nowhere.

    ``organisations`` is ODS's trusts (:func:`read_etr`, or :attr:`OdsFiles.organisations` with etr and ect
    together), ``successions`` its ``succ.csv``. Only what can matter to the reference data is checked:

    - each trust of ``organisations.csv``: listed by ODS; name (ignoring case and punctuation); ICB and region
      (unless its ``icb_basis`` is ``host_system``); close date;
    - successions among those trusts, their successors and their predecessors (transitively) that took effect
      after ``since`` (the warehouse's first month: an organisation that closed before it cannot appear in any
      month the warehouse holds): each in ``successions.csv`` with ODS's date, and each of ours in ODS;
    - the ICBs of ``icbs.csv`` and of those trusts: each ICB succession since the ICBs were established in
      ``icb_successions.csv`` with ODS's date, a succeeded ICB closed in ``icbs.csv``, every ICB named in
      ``icbs.csv``.

    Each line names what differs, both values, and the seed file and line to edit.
    """
    reference_dir = Path(reference_dir)
    orgs = _read_seed(reference_dir / "organisations.csv")
    icbs = {row["icb_code"]: row for row in _read_seed(reference_dir / "icbs.csv")}
    if "ods_file" not in organisations.columns:
        organisations = organisations.assign(ods_file=ETR_FILE)
    ods_orgs = {_blank(row.org_code): row for row in organisations.itertuples()}
    files_read = sorted(set(organisations["ods_file"]), key=lambda name: (name != ETR_FILE, name))
    ods_succ = _ods_successions(successions)

    our_icb_codes = {row["icb_code"] for row in orgs} | {
        _blank(ods_orgs[row["org_code"]].icb_code) for row in orgs if row["org_code"] in ods_orgs
    }
    icb_universe = (set(icbs) | our_icb_codes) - {""}
    icb_edges = {
        key: effective
        for key, effective in ods_succ.items()
        if effective is not None
        and effective >= ICBS_ESTABLISHED
        and (key[0] in icb_universe or key[1] in icb_universe)
    }
    # an ICB some ODS succession ends, with the successions that end it
    icb_succeeded: dict[str, list[tuple[str, date]]] = defaultdict(list)
    for (predecessor, successor), effective in sorted(icb_edges.items()):
        icb_succeeded[predecessor].append((successor, effective))

    problems = _reconcile_trusts(orgs, icbs, ods_orgs, files_read, icb_succeeded)
    problems += _reconcile_trust_successions(orgs, ods_orgs, ods_succ, icb_universe, since, reference_dir)
    problems += _reconcile_icbs(icbs, icb_universe, icb_edges, icb_succeeded, reference_dir)
    return problems


def _who(code: str, name: str) -> str:
    return f"{code} ({name})" if name else code


def _reconcile_trusts(
    orgs: list[_SeedRow],
    icbs: dict[str, _SeedRow],
    ods_orgs: dict[str, object],
    files_read: list[str],
    icb_succeeded: dict[str, list[tuple[str, date]]],
) -> list[str]:
    problems: list[str] = []
    care_trusts_unchecked: list[str] = []
    for org in orgs:
        code, who, at = org["org_code"], _who(org["org_code"], org["org_name"]), f"organisations.csv line {org.line}"
        if code not in ods_orgs:
            if CARE_TRUST_CODE.fullmatch(code) and ECT_FILE not in files_read:
                care_trusts_unchecked.append(who)
            else:
                problems.append(
                    f"{who}: not in ODS's trust files ({', '.join(files_read)}), which keep a closed trust with its "
                    f"close date → check the code on {at} (a typing error, or not an NHS trust?)"
                )
            continue
        ods = ods_orgs[code]
        where = f"{ods.ods_file} line {ods.Index}"
        if _normalise_name(org["org_name"]) != _normalise_name(ods.org_name):
            problems.append(
                f"{who}: name differs from ODS, which has {ods.org_name!r} ({where}) → {at}: org_name as ODS has it "
                "(any capitalisation)"
            )
        ours_icb, ours_region = org["icb_code"], org["region_code"]
        theirs_icb, theirs_region = _blank(ods.icb_code), _blank(ods.region_code)
        if org["icb_basis"] == "host_system":
            for successor, effective in icb_succeeded.get(ours_icb, []):
                problems.append(
                    f"{who}: its host ICB {ours_icb} was succeeded by {successor} on {effective} (ODS succ.csv) → "
                    f"{at}: icb_code of the ICB that hosts it now"
                )
        else:
            differ = [
                (label, column, ours, theirs)
                for label, column, ours, theirs in (
                    ("ICB", "icb_code", ours_icb, theirs_icb),
                    ("region", "region_code", ours_region, theirs_region),
                )
                if ours != theirs
            ]
            if differ:
                labels = " and ".join(label for label, _, _, _ in differ)
                ours_text = "/".join(ours or "blank" for _, _, ours, _ in differ)
                theirs_text = "/".join(theirs or "blank" for _, _, _, theirs in differ)
                fix = ", ".join(f"{column} {theirs or 'blank'}" for _, column, _, theirs in differ)
                if theirs_icb and theirs_icb not in icbs:
                    fix += f" and add {theirs_icb} to icbs.csv"
                problems.append(
                    f"{who}: {labels} {ours_text} in organisations.csv but {theirs_text} in ODS ({where}) → {at}: "
                    f"{fix} (or icb_basis host_system if the trust's host system is not where ODS places it)"
                )
        ours_close, ods_close = _as_date(org["close_date"]), _as_date(ods.close_date)
        if ours_close != ods_close:
            if ours_close is None:
                problems.append(
                    f"{who}: closed on {ods_close} in ODS ({where}) but open in organisations.csv → {at}: close_date "
                    f"{ods_close}, and record its successor in successions.csv"
                )
            else:
                problems.append(
                    f"{who}: close date is {_fmt(ours_close)} in organisations.csv but {_fmt(ods_close)} in ODS "
                    f"({where}) → {at}: close_date {ods_close or 'blank'}"
                )
    if care_trusts_unchecked:
        problems.insert(
            0,
            f"{', '.join(care_trusts_unchecked)}: care trusts, which ODS lists in its care trusts file {ECT_FILE}, "
            f"not in {ETR_FILE}, so they were not checked → put {ECT_FILE} (from ODS's ect.zip) beside {ETR_FILE}",
        )
    return problems


def _reconcile_trust_successions(
    orgs: list[_SeedRow],
    ods_orgs: dict[str, object],
    ods_succ: dict[tuple[str, str], date | None],
    icb_universe: set[str],
    since: date,
    reference_dir: Path,
) -> list[str]:
    ours = [
        (row, _Succession(row["predecessor_org_code"], row["successor_org_code"], _as_date(row["effective_date"])))
        for row in _read_seed(reference_dir / "successions.csv")
    ]
    our_keys = {(s.predecessor, s.successor) for _, s in ours}
    our_codes = {row["org_code"] for row in orgs}
    problems: list[str] = []
    for row, s in ours:
        at = f"successions.csv line {row.line}"
        if (s.predecessor, s.successor) not in ods_succ:
            problems.append(
                f"succession {s.predecessor} → {s.successor} ({_fmt(s.effective)}): on {at} but not in ODS's "
                f"{SUCC_FILE} → check the codes on {at}"
            )
        elif ods_succ[(s.predecessor, s.successor)] != s.effective:
            theirs = ods_succ[(s.predecessor, s.successor)]
            problems.append(
                f"succession {s.predecessor} → {s.successor}: effective {_fmt(s.effective)} on {at} but "
                f"{_fmt(theirs)} in ODS → {at}: effective_date {theirs}"
            )
    relevant_edges = {
        key: effective
        for key, effective in ods_succ.items()
        if effective is not None and effective > since and not ({key[0], key[1]} & icb_universe)
    }
    linked = _linked(our_codes | {p for p, _ in our_keys} | {s for _, s in our_keys}, relevant_edges)
    for (predecessor, successor), effective in sorted(relevant_edges.items(), key=lambda item: (item[1], item[0])):
        if predecessor not in linked or successor not in linked or (predecessor, successor) in our_keys:
            continue
        also = [
            f"{code}{_ods_description(ods_orgs, code)}" for code in (predecessor, successor) if code not in our_codes
        ]
        problems.append(
            f"succession {predecessor} → {successor} ({effective}): recorded by ODS but missing from successions.csv, "
            f"so {predecessor}'s history is not attributed to {successor} → add the row "
            f"{predecessor},{successor},{effective} to successions.csv"
            + (f", and add {' and '.join(also)} to organisations.csv" if also else "")
        )
    return problems


def _ods_description(ods_orgs: dict[str, object], code: str) -> str:
    """`` (NAME, closed 2024-12-31)`` from ODS's trust files, or nothing for a code they do not list."""
    if code not in ods_orgs:
        return ""
    ods = ods_orgs[code]
    closed = _as_date(ods.close_date)
    return f" ({ods.org_name}" + (f", closed {closed}" if closed else "") + ")"


def _reconcile_icbs(
    icbs: dict[str, _SeedRow],
    icb_universe: set[str],
    icb_edges: dict[tuple[str, str], date],
    icb_succeeded: dict[str, list[tuple[str, date]]],
    reference_dir: Path,
) -> list[str]:
    problems: list[str] = []
    ours = {
        (row["predecessor_icb_code"], row["successor_icb_code"]): row
        for row in _read_seed(reference_dir / "icb_successions.csv")
    }
    for (predecessor, successor), row in ours.items():
        at, effective = f"icb_successions.csv line {row.line}", _as_date(row["effective_date"])
        if (predecessor, successor) not in icb_edges:
            problems.append(
                f"ICB succession {predecessor} → {successor} ({_fmt(effective)}): on {at} but not in ODS's "
                f"{SUCC_FILE} → check the codes on {at}"
            )
        elif icb_edges[(predecessor, successor)] != effective:
            theirs = icb_edges[(predecessor, successor)]
            problems.append(
                f"ICB succession {predecessor} → {successor}: effective {_fmt(effective)} on {at} but {theirs} in "
                f"ODS → {at}: effective_date {theirs}"
            )
    linked = _linked(icb_universe, icb_edges)
    for (predecessor, successor), effective in sorted(icb_edges.items(), key=lambda item: (item[1], item[0])):
        if (predecessor, successor) in ours or not {predecessor, successor} & linked:
            continue
        missing = [code for code in (predecessor, successor) if code not in icbs]
        problems.append(
            f"ICB succession {predecessor} → {successor} ({effective}): recorded by ODS but missing from "
            f"icb_successions.csv → add the row {predecessor},{successor},{effective} to icb_successions.csv"
            + (f", and add {' and '.join(missing)} to icbs.csv" if missing else "")
        )
    for code, ended_by in icb_succeeded.items():
        if code not in icbs:
            continue
        row, last_day = icbs[code], max(effective for _, effective in ended_by) - timedelta(days=1)
        ours_close = _as_date(row["close_date"])
        if ours_close != last_day:
            successors = ", ".join(successor for successor, _ in ended_by)
            state = f"closes {ours_close}" if ours_close else "is open"
            problems.append(
                f"ICB {_who(code, row['icb_name'])}: succeeded by {successors} from {last_day + timedelta(days=1)} "
                f"(ODS {SUCC_FILE}) but {state} in icbs.csv → icbs.csv line {row.line}: close_date {last_day}"
            )
    return problems


# --------------------------------------------------------------------------------------------------------------
# Sample files


def _synthetic_postcode(index: int) -> str:
    """``ZZ99`` is the pseudo-postcode area NHS data uses for no fixed abode: never a real address."""
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return f"ZZ99 {index % 10}{letters[(index // 10) % 20]}{letters[index % 20]}"


def write_sample_ods(out_dir: Path, reference_dir: Path = REFERENCE_DIR) -> list[Path]:
    """Write ``out_dir/ods/etr.csv``, ``ect.csv`` and ``succ.csv`` as ODS publishes them, from the reference seeds.

    Trusts with a care trust's code go to ``ect.csv``, the others to ``etr.csv``, both sorted by code as ODS's
    files are. Names are upper case as ODS publishes them, addresses are ``SAMPLE ADDRESS`` and postcodes synthetic,
    so the files reconcile with the seeds by construction and carry nothing that looks like a real address.
    ``succ.csv`` holds the trust and ICB successions (``successions.csv``, ``icb_successions.csv``) sorted by
    predecessor, with the forward succession indicator set as ODS sets it. Returns the paths written.
    """
    reference_dir = Path(reference_dir)
    orgs = pd.read_csv(reference_dir / "organisations.csv", dtype=str, keep_default_na=False)
    folder = Path(out_dir) / "ods"
    folder.mkdir(parents=True, exist_ok=True)

    def yyyymmdd(value: str) -> str:
        day = _as_date(value)
        return f"{day:%Y%m%d}" if day else ""

    etr_rows, ect_rows = [], []
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
        row[21] = "1"  # Amended Record Indicator: 1 on every row of the real etr.csv
        (ect_rows if CARE_TRUST_CODE.fullmatch(row[0]) else etr_rows).append(row)

    pairs = [
        (row["predecessor_org_code"], row["successor_org_code"], row["effective_date"])
        for row in _read_seed(reference_dir / "successions.csv")
    ] + [
        (row["predecessor_icb_code"], row["successor_icb_code"], row["effective_date"])
        for row in _read_seed(reference_dir / "icb_successions.csv")
    ]
    predecessors = {predecessor for predecessor, _, _ in pairs}
    succ_rows = [
        [predecessor, successor, "", yyyymmdd(effective), "1" if successor in predecessors else "0"]
        for predecessor, successor, effective in sorted(pairs)
    ]
    return [
        _write_rows(folder / ETR_FILE, etr_rows),
        _write_rows(folder / ECT_FILE, ect_rows),
        _write_rows(folder / SUCC_FILE, succ_rows),
    ]


def _write_rows(path: Path, rows: list[list[str]]) -> Path:
    """Every field quoted and CRLF line ends, as ODS's downloads are written."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return path
