"""Synthetic MHSDS submissions for mental health lengths of stay: the tables MHS501, MHS502 and MHS001.

Everything is synthetic (seeded draws; identifiers are random tokens). The spells themselves (who, when, how long,
the planted SLP effect, the deliberate bad rows) are drawn by :mod:`orchestration.samples.los`; this module writes
them in the MHSDS layout (:mod:`orchestration.sources.los_mh`):

* ``out_dir/los_mh/MHSDS_<YYYY>-<MM>.zip`` holding ``MHS501HospProvSpell_<YYYY>-<MM>.csv``,
  ``MHS502WardStay_<YYYY>-<MM>.csv`` and ``MHS001MPI_<YYYY>-<MM>.csv`` for every mental health trust open in the
  month (``three_files=True`` writes ``MHS501_<YYYY>-<MM>.csv``, ``MHS502_…``, ``MHS001_…`` instead).
* Each submission has a ``UniqSubmissionID`` per provider and month and the month's ``UniqMonthID``
  (April 2024 = 1489); a person has one ``RecordNumber`` per submission, which MHS501 and MHS502 rows carry too.
* Bed types (``MHAdmittedPatientClass`` of the ward stay): MHSDS v5 codes before April 2024 (10 adult acute,
  11 older adult acute, 12 PICU; 13, 14, 19 and 30 for other beds), v6 codes from April 2024 (200, 201, 202;
  203, 204, 209 and 300 for other beds). A spell open across April 2024 changes code with the version, as a real
  submission would.
* Ward stays: most spells have one ward stay; about one adult acute spell in five of a week or more starts on a
  PICU for 1-5 days and moves to an adult acute bed (the stay that ends at discharge, which gives the spell its bed
  type); about one PICU spell in three starts on an adult acute ward. Open ward stays have a blank end date.
* Ages (``AgeRepPeriodEnd``, at the end of the month): adult acute 18-64 with about one in twenty 65-70 (outside
  MHS140's ages), older adult acute 65-92, children's beds 12-17, others 18-64; the same person ages with time.
* Resubmissions (:data:`RESUBMITTED_MONTHS`): ``MHSDS_<YYYY>-<MM>-revised.zip`` re-sends a month as known a month
  later, with a higher ``UniqSubmissionID``: spells open at the month's end that were discharged the next month
  now carry that later discharge date.
* A bed type of the wrong version (:data:`WRONG_VERSION_MONTHS`): one ward stay with a v5 code in a v6 month, loaded
  and flagged ``bed_type_not_in_version``.

Same arguments, same bytes; a month's files do not depend on which other months are written.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np

from orchestration.samples import los as spells_source
from orchestration.samples.common import (
    DEFAULT_FIRST_MONTH,
    DEFAULT_LAST_MONTH,
    DEFAULT_SEED,
    REFERENCE_DIR,
    ZIP_DATE_TIME,
    add_months,
    csv_bytes,
    month_end,
    month_range,
    month_start,
    stable_hash,
    write_csv_file,
)
from orchestration.sources.los_mh import MHS001, MHS501, MHS502, file_name, mhsds_version, uniq_month_id

SOURCE = spells_source.SOURCE_MH
FOLDER = "los_mh"

#: Months re-sent a month later (``-revised``) with the next month's discharges of spells open at month end.
RESUBMITTED_MONTHS: tuple[date, ...] = (date(2023, 9, 1), date(2024, 6, 1), date(2026, 8, 1))
#: Months where one ward stay carries a bed-type code of the other MHSDS version.
WRONG_VERSION_MONTHS: tuple[date, ...] = (date(2024, 5, 1),)

#: The drawn spell groups (orchestration.samples.los MH_CLASSES' patient classes) → bed type.
_KIND = {"10": "adult_acute", "11": "picu", "20": "older_adult_acute", "12": "other1", "14": "other2"}
_KIND_DEFAULT = "other3"
CODES: dict[str, dict[str, str]] = {
    "v5": {
        "adult_acute": "10",
        "older_adult_acute": "11",
        "picu": "12",
        "other1": "13",
        "other2": "14",
        "other3": "19",
        "children": "30",
    },
    "v6": {
        "adult_acute": "200",
        "older_adult_acute": "201",
        "picu": "202",
        "other1": "203",
        "other2": "204",
        "other3": "209",
        "children": "300",
    },
}


def _kind(patient_class: str) -> str:
    if patient_class == "30":
        return "children"
    return _KIND.get(patient_class, _KIND_DEFAULT)


def _age(seed: int, person: str, kind: str, month: date) -> int:
    """Age at the end of ``month``: drawn once per person (by the kind of bed of the spell it is first seen in)
    and one year older every twelve months from January 2021."""
    draw = stable_hash(seed, "los_mh_age", person)
    elapsed = (month.year - 2021) * 12 + month.month - 1
    if kind == "older_adult_acute":
        base = 65 + draw % 28
    elif kind == "children":
        return 12 + (draw + elapsed // 12) % 6
    elif kind == "adult_acute" and draw % 20 == 0:
        base = 65 + draw % 6
    else:
        base = 18 + draw % 40
    return int(base + elapsed // 12)


def _org_number(code: str) -> int:
    return stable_hash("los_mh_org", code) % 900 + 100


def submission_tables(
    month: date, *, seed: int = DEFAULT_SEED, reference_dir: Path = REFERENCE_DIR, revised: bool = False
) -> dict[str, bytes]:
    """The month's three tables as CSV bytes (``{"MHS501": …, "MHS502": …, "MHS001": …}``)."""
    month = month_start(month)
    known_until = add_months(month, 1) if revised else month
    last = np.datetime64(month_end(known_until), "D")
    period_end = np.datetime64(month_end(month), "D")
    month_id = uniq_month_id(month)
    codes = CODES[mhsds_version(month)]
    wrong = CODES["v5" if mhsds_version(month) == "v6" else "v6"]
    reporters = [org for org in spells_source._trusts(SOURCE, reference_dir) if org.is_open(month)]
    tables = [(org.code, spells_source._active_spells(seed, SOURCE, org, month, reference_dir)) for org in reporters]
    tables = spells_source._bad_rows(seed, SOURCE, month, tables)
    rows501, rows502, rows001 = [], [], []
    planted_wrong = month not in WRONG_VERSION_MONTHS
    for code, spells in tables:
        if not len(spells):
            continue
        submission_id = month_id * 10_000 + _org_number(code) * 10 + (2 if revised else 1)
        records: dict[str, str] = {}
        for i in range(len(spells)):
            person, spell_id = str(spells.person[i]), str(spells.spell_id[i])
            admitted, discharged = spells.admitted[i], spells.discharged[i]
            kind = _kind(str(spells.codes["MHAdmittedPatientClass"][i]))
            if person not in records:
                records[person] = f"{month_id}{_org_number(code)}{len(records) + 1:06d}"
                imd = spells.imd[i]
                rows001.append(
                    [
                        submission_id,
                        month_id,
                        records[person],
                        person,
                        code,
                        _age(seed, person, kind, month),
                        spells.ethnicity[i],
                        "" if imd == 0 else str(imd),
                    ]
                )
            record = records[person]
            is_open = discharged > last
            end_text = "" if is_open else str(discharged)
            rows501.append(
                [
                    submission_id,
                    month_id,
                    record,
                    code,
                    person,
                    spell_id,
                    str(admitted),
                    end_text,
                    spells.codes["MethAdmMHHospProvSpell"][i],
                    "" if is_open else spells.codes["MethOfDischMHHospProvSpell"][i],
                    "" if is_open else spells.codes["DestOfDischHospProvSpell"][i],
                ]
            )
            stay = int((discharged - admitted).astype(np.int64))
            draw = stable_hash(seed, "los_mh_wards", spell_id)
            stays = [(kind, admitted, end_text)]
            first_kind = {"adult_acute": "picu", "picu": "adult_acute"}.get(kind)
            every = 5 if kind == "adult_acute" else 3
            if first_kind and stay >= 7 and draw % every == 0:
                moved = admitted + np.timedelta64(1 + draw // 7 % 5, "D")
                if moved <= period_end:
                    stays = [(first_kind, admitted, str(moved)), (kind, moved, end_text)]
            for n, (ward_kind, start, end) in enumerate(stays, start=1):
                bed = codes[ward_kind]
                if not planted_wrong and ward_kind == "adult_acute" and end:
                    bed, planted_wrong = wrong[ward_kind], True
                rows502.append([submission_id, month_id, record, f"{spell_id}W{n}", spell_id, str(start), end, bed])
    header501 = [c.published for c in MHS501.columns]
    header502 = [c.published for c in MHS502.columns if c.published != "WardType"]
    header001 = [c.published for c in MHS001.columns]
    return {
        "MHS501": csv_bytes(header501, rows501),
        "MHS502": csv_bytes(header502, rows502),
        "MHS001": csv_bytes(header001, rows001),
    }


_MEMBER = {"MHS501": "MHS501HospProvSpell", "MHS502": "MHS502WardStay", "MHS001": "MHS001MPI"}


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    """A byte-deterministic zip of several members (fixed timestamps, permissions and compression)."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            for name, data in members.items():
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3
                info.external_attr = 0o100644 << 16
                archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def write_submission(
    month: date,
    out_dir: Path,
    *,
    seed: int = DEFAULT_SEED,
    reference_dir: Path = REFERENCE_DIR,
    revised: bool = False,
    three_files: bool = False,
) -> list[Path]:
    """Write one submission: ``MHSDS_<YYYY>-<MM>[-revised].zip``, or with ``three_files`` its three CSVs.
    Returns the paths written (the delivery the loader is pointed at first)."""
    month = month_start(month)
    tables = submission_tables(month, seed=seed, reference_dir=reference_dir, revised=revised)
    out_dir = Path(out_dir)
    if three_files:
        return [
            write_csv_file(out_dir / file_name(month, revised, table=key, suffix=".csv"), data)
            for key, data in tables.items()
        ]
    suffix = f"_{month:%Y-%m}{'-revised' if revised else ''}.csv"
    members = {_MEMBER[key] + suffix: data for key, data in tables.items()}
    return [_write_zip(out_dir / file_name(month, revised), members)]


def write_los_mh_files(
    out_dir: Path,
    *,
    first_month: date = DEFAULT_FIRST_MONTH,
    last_month: date = DEFAULT_LAST_MONTH,
    seed: int = DEFAULT_SEED,
    reference_dir: Path = REFERENCE_DIR,
    three_files: bool = False,
) -> list[Path]:
    """Every month's submission from ``first_month`` to ``last_month`` under ``out_dir/los_mh/``, plus the
    resubmissions of :data:`RESUBMITTED_MONTHS` in range; the deliveries in month order."""
    folder = Path(out_dir) / FOLDER
    written: list[Path] = []
    for month in month_range(first_month, last_month):
        written += write_submission(month, folder, seed=seed, reference_dir=reference_dir, three_files=three_files)[:1]
        if month in RESUBMITTED_MONTHS:
            written += write_submission(
                month, folder, seed=seed, reference_dir=reference_dir, revised=True, three_files=three_files
            )[:1]
    return written


def write_los_mh_month(
    month: date, out_dir: Path, *, seed: int = DEFAULT_SEED, reference_dir: Path = REFERENCE_DIR, compress: bool = True
) -> Path:
    """One month's submission (the national generator): the zip, or with ``compress=False`` the three plain CSVs
    (benchmarks read plain CSVs); returns the delivery (the zip or the MHS501 file)."""
    return write_submission(month, out_dir, seed=seed, reference_dir=reference_dir, three_files=not compress)[0]


__all__: Sequence[str] = ("submission_tables", "write_submission", "write_los_mh_files", "write_los_mh_month")
