"""Mental health lengths of stay from MHSDS submissions as their tables (MHS501, MHS502, MHS001).

Hand-written submissions (the tables as an extract tool writes them, extra columns and another column case
included) and generated ones, loaded into a real DuckDB file; the MHS140-style figure is computed by the dbt
models themselves (dbt build of int_los__discharged_spells and what it reads).
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.samples import los_mh as samples
from orchestration.sources import los, los_acute, los_mh

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"

MHS501_HEADER = [
    "UniqSubmissionID",
    "UniqMonthID",
    "RecordNumber",
    "OrgIDProv",
    "Person_ID",
    "UniqHospProvSpellID",
    "StartDateHospProvSpell",
    "DischDateHospProvSpell",
    "HospProvSpellID",  # an extra column: normal in real extracts
]
MHS502_HEADER = [
    "UniqSubmissionID",
    "UniqMonthID",
    "RecordNumber",
    "UniqWardStayID",
    "UniqHospProvSpellID",
    "StartDateWardStay",
    "EndDateWardStay",
    "MHAdmittedPatientClass",
    "SiteIDOfTreat",
]
MHS001_HEADER = ["UniqSubmissionID", "UniqMonthID", "RecordNumber", "Person_ID", "AgeRepPeriodEnd", "Gender"]


def _csv(header: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[str(cell) for cell in row] for row in rows])
    return buffer.getvalue().encode("utf-8")


def _spell(sub, month_id, record, person, spell, start, end, org="RV5"):
    return [sub, month_id, record, org, person, spell, start, end, spell.lower()]


def _ward(sub, month_id, record, spell, n, start, end, bed):
    return [sub, month_id, record, f"{spell}W{n}", spell, start, end, bed, "RV5XX"]


def _person(sub, month_id, record, person, age):
    return [sub, month_id, record, person, age, "1"]


def april_2024() -> dict[str, bytes]:
    """April 2024 (UniqMonthID 1489, MHSDS v6): S1 and S3 still open; S9 discharged in April."""
    s, m = 1489001, 1489
    return {
        "MHS501": _csv(
            MHS501_HEADER,
            [
                _spell(s, m, "R1", "P1", "S1", "2024-04-01", ""),
                _spell(s, m, "R3", "P3", "S3", "2024-03-15", ""),
                _spell(s, m, "R9", "P9", "S9", "2024-04-02", "2024-04-12"),
            ],
        ),
        "MHS502": _csv(
            MHS502_HEADER,
            [
                _ward(s, m, "R1", "S1", 1, "2024-04-01", "", "200"),
                _ward(s, m, "R3", "S3", 1, "2024-03-15", "", "200"),
                _ward(s, m, "R9", "S9", 1, "2024-04-02", "2024-04-12", "200"),
            ],
        ),
        "MHS001": _csv(
            MHS001_HEADER,
            [_person(s, m, "R1", "P1", 30), _person(s, m, "R3", "P3", 41), _person(s, m, "R9", "P9", 50)],
        ),
    }


def may_2024(*, resubmission: bool = False) -> dict[str, bytes]:
    """May 2024 (UniqMonthID 1490, v6). The resubmission (UniqSubmissionID 1490002) adds S7, discharged on
    3 June 2024, after the file's month."""
    s, m = (1490002 if resubmission else 1490001), 1490
    spells = [
        _spell(s, m, "R1", "P1", "S1", "2024-04-01", "2024-05-11"),  # 40 days, adult acute, 30: in
        _spell(s, m, "R2", "P2", "S2", "2024-05-01", "2024-05-21"),  # 20 days, PICU then adult acute, 25: in
        _spell(s, m, "R3", "P3", "S3", "2024-03-15", "2024-05-15"),  # 61 days, adult acute then PICU: out
        _spell(s, m, "R4", "P4", "S4", "2024-05-02", "2024-05-12"),  # 10 days, adult acute, aged 70: out
        _spell(s, m, "R5", "P5", "S5", "2024-05-05", ""),  # open: out
        _spell(s, m, "R6", "P6", "S6", "2024-05-03", "2024-05-09"),  # v5 code 10 in a v6 month: flagged, out
    ]
    wards = [
        _ward(s, m, "R1", "S1", 1, "2024-04-01", "2024-05-11", "200"),
        _ward(s, m, "R2", "S2", 1, "2024-05-01", "2024-05-04", "202"),
        _ward(s, m, "R2", "S2", 2, "2024-05-04", "2024-05-21", "200"),
        _ward(s, m, "R3", "S3", 1, "2024-03-15", "2024-04-20", "200"),
        _ward(s, m, "R3", "S3", 2, "2024-04-20", "2024-05-15", "202"),
        _ward(s, m, "R4", "S4", 1, "2024-05-02", "2024-05-12", "200"),
        _ward(s, m, "R5", "S5", 1, "2024-05-05", "", "200"),
        _ward(s, m, "R6", "S6", 1, "2024-05-03", "2024-05-09", "10"),
    ]
    people = [
        _person(s, m, "R1", "P1", 30),
        _person(s, m, "R2", "P2", 25),
        _person(s, m, "R3", "P3", 41),
        _person(s, m, "R4", "P4", 70),
        _person(s, m, "R5", "P5", 33),
        _person(s, m, "R6", "P6", 44),
    ]
    if resubmission:
        spells.append(_spell(s, m, "R7", "P7", "S7", "2024-05-20", "2024-06-03"))  # 14 days, after May
        wards.append(_ward(s, m, "R7", "S7", 1, "2024-05-20", "2024-06-03", "200"))
        people.append(_person(s, m, "R7", "P7", 40))
    return {
        "MHS501": _csv(MHS501_HEADER, spells),
        "MHS502": _csv(MHS502_HEADER, wards),
        "MHS001": _csv(MHS001_HEADER, people),
    }


def write_zip(path: Path, tables: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, data in tables.items():
            archive.writestr(f"{key}_extract.csv", data)
    return path


def write_three(folder: Path, stem: str, tables: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, data in tables.items():
        (folder / f"{key}_{stem}.csv").write_bytes(data)
    return folder / f"MHS501_{stem}.csv"


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "build.duckdb"))
    yield connection
    connection.close()


def ingest(con, folder: Path, tmp_path: Path):
    los_acute.ensure_raw_tables(con)  # int_los__discharged_spells reads the acute episodes too (none here)
    return los_mh.ingest_folder(con, folder, tmp_path / "q", move_rejected=False, today=date(2026, 12, 1))


def dbt_build(db_path: Path, tmp_path: Path) -> None:
    """dbt build of int_los__discharged_spells and everything upstream of it, on ``db_path``."""
    from dbt.cli.main import dbtRunner

    previous = os.environ.get("COLLAB_BUILD_DB")
    os.environ["COLLAB_BUILD_DB"] = str(db_path)
    try:
        result = dbtRunner().invoke(
            [
                "build",
                "--select",
                "+int_los__discharged_spells",
                "--indirect-selection",
                "cautious",
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--target-path",
                str(tmp_path / "target"),
                "--log-path",
                str(tmp_path / "logs"),
                "--no-partial-parse",
                "--quiet",
            ]
        )
    finally:
        if previous is None:
            os.environ.pop("COLLAB_BUILD_DB", None)
        else:
            os.environ["COLLAB_BUILD_DB"] = previous
    assert result.success, result.exception or [str(r.message) for r in result.result if r.status != "success"]


# --------------------------------------------------------------------------------------------------------------


def test_v6_adult_acute_los_equals_the_hand_computed_mhs140_answer(tmp_path):
    """May 2024, RV5, MHS140-style (final ward stay on an adult acute bed, v6 code 200; AgeRepPeriodEnd 18-64;
    discharged in the month; DischDateHospProvSpell − StartDateHospProvSpell):

    * S1 2024-04-01 → 2024-05-11 = 30 + 10 = 40 days (its April record, still open, is superseded by May's);
    * S2 2024-05-01 → 2024-05-21 = 20 days (PICU then adult acute: the stay ending at discharge counts);
    * S3 (ends on PICU), S4 (aged 70), S5 (open), S6 (v5 code 10 in a v6 month, flagged) are out.

    So 2 discharges, 60 bed days, mean 30, median 30. June 2024: S7 (resubmitted May file, discharged
    2024-06-03, started 2024-05-20) = 11 + 3 = 14 days. April 2024: S9 = 10 days.
    """
    db_path = tmp_path / "build.duckdb"
    con = duckdb.connect(str(db_path))
    folder = tmp_path / "landing"
    write_zip(folder / "MHSDS_2024-04.zip", april_2024())
    write_zip(folder / "MHSDS_2024-05.zip", may_2024())
    write_zip(folder / "MHSDS_2024-05-revised.zip", may_2024(resubmission=True))
    results = ingest(con, folder, tmp_path)
    assert [r.action for r in results] == ["loaded", "loaded", "replaced"], [r.message for r in results]
    assert los_mh.row_problem_counts(con) == {"bed_type_not_in_version": 1}
    los.ensure_raw_tables(con)  # the acute source dbt reads beside it (empty here)
    con.close()

    dbt_build(db_path, tmp_path)
    con = duckdb.connect(str(db_path))  # dbt's adapter may still hold the file in this process
    rows = con.execute(
        """select discharge_month, org_code, count(*), sum(los_days), avg(los_days), median(los_days),
                  list(spell_id order by spell_id)
           from intermediate.int_los__discharged_spells where setting = 'mental_health'
           group by 1, 2 order by 1"""
    ).fetchall()
    con.close()
    assert rows == [
        (date(2024, 4, 1), "RV5", 1, 10, 10.0, 10.0, ["S9"]),
        (date(2024, 5, 1), "RV5", 2, 60, 30.0, 30.0, ["S1", "S2"]),
        (date(2024, 6, 1), "RV5", 1, 14, 14.0, 14.0, ["S7"]),
    ]


def test_three_separate_files_load_like_one_zip(tmp_path, con):
    folder = tmp_path / "three"
    path = write_three(folder, "2024-05", may_2024())
    assert los_mh.discover_files(folder) == [path]
    results = ingest(con, folder, tmp_path)
    assert [r.action for r in results] == ["loaded"] and results[0].rows == 6
    counts = [con.execute(f"select count(*) from {t.qualified_table}").fetchone()[0] for t in los_mh.TABLES]
    assert counts == [6, 8, 6]

    other = duckdb.connect(str(tmp_path / "zip.duckdb"))
    zipped = ingest(other, write_zip(tmp_path / "zip" / "MHSDS_2024-05.zip", may_2024()).parent, tmp_path / "z")
    assert [r.action for r in zipped] == ["loaded"]
    columns = "uniq_hosp_prov_spell_id, start_date, discharge_date, record_number, row_problem"
    query = f"select {columns} from raw_los_mh.mhs501_hospital_spells order by 1"
    assert con.execute(query).fetchall() == other.execute(query).fetchall()
    other.close()

    # a three-file delivery missing one of its tables is refused, naming the file it looked for
    (folder / "MHS001_2024-05.csv").unlink()
    with pytest.raises(los_mh.ContractError, match="MHS001_2024-05.csv"):
        los_mh.read_file(path)


def test_each_table_of_a_submission_is_parsed_once_for_its_check_and_its_load(tmp_path, con, monkeypatch):
    """Two submissions, each read, checked and loaded (the second read ahead while the first loads): every table
    of each is parsed once, its check's parse reused by its load, and nothing of either is remembered after."""
    from orchestration import raw

    parsed, real = [], los_mh._parse.__wrapped__

    def counted(table, of):
        parsed.append(table.key)
        return real(table, of)

    monkeypatch.setattr(los_mh, "_parse", raw.once_per_frame(counted))
    folder = tmp_path / "landing"
    write_zip(folder / "MHSDS_2024-04.zip", april_2024())
    write_zip(folder / "MHSDS_2024-05.zip", may_2024())
    results = ingest(con, folder, tmp_path)
    assert [r.action for r in results] == ["loaded", "loaded"], [r.message for r in results]
    assert sorted(parsed) == sorted([t.key for t in los_mh.TABLES] * 2)
    assert los_mh._parse.cache == {}


def test_a_missing_required_column_is_named(tmp_path, con):
    tables = may_2024()
    header, *rows = list(csv.reader(io.StringIO(tables["MHS502"].decode())))
    at = header.index("MHAdmittedPatientClass")
    tables["MHS502"] = _csv(header[:at] + header[at + 1 :], [row[:at] + row[at + 1 :] for row in rows])
    folder = tmp_path / "landing"
    write_zip(folder / "MHSDS_2024-05.zip", tables)
    results = ingest(con, folder, tmp_path)
    assert [r.action for r in results] == ["rejected"]
    violation = results[0].violations[0]
    assert (violation.file, violation.row, violation.column, violation.rule) == (
        "MHSDS_2024-05.zip",
        1,
        "MHAdmittedPatientClass",
        "required_column_present",
    )
    assert "MHS502 Ward Stay table (MHS502_extract.csv)" in violation.message
    assert "MHAdmittedPatientClass" in (tmp_path / "q" / "los_mh" / "MHSDS_2024-05.zip.reason.txt").read_text()


def test_columns_are_found_by_name_in_any_case_and_order(tmp_path, con):
    tables = may_2024()
    header, *rows = list(csv.reader(io.StringIO(tables["MHS501"].decode())))
    order = list(reversed(range(len(header))))
    tables["MHS501"] = _csv([header[i].upper() for i in order], [[row[i] for i in order] for row in rows])
    folder = tmp_path / "landing"
    write_zip(folder / "MHSDS_2024-05.zip", tables)
    assert [r.action for r in ingest(con, folder, tmp_path)] == ["loaded"]
    assert con.execute(
        "select start_date, discharge_date from raw_los_mh.mhs501_hospital_spells where uniq_hosp_prov_spell_id = 'S1'"
    ).fetchone() == (date(2024, 4, 1), date(2024, 5, 11))


def test_a_contract_error_names_file_row_column_and_rule(tmp_path, con):
    tables = may_2024()
    header, *rows = list(csv.reader(io.StringIO(tables["MHS501"].decode())))
    rows[2][header.index("StartDateHospProvSpell")] = "15th March"
    tables["MHS501"] = _csv(header, rows)
    folder = tmp_path / "landing"
    write_zip(folder / "MHSDS_2024-05.zip", tables)
    (result,) = ingest(con, folder, tmp_path)
    assert result.action == "rejected"
    assert any(
        (v.file, v.row, v.column, v.rule) == ("MHSDS_2024-05.zip", 4, "StartDateHospProvSpell", "date_parses")
        and v.message.startswith("MHS501 (MHS501_extract.csv) line 4: ")
        for v in result.violations
    ), result.violations


def test_generated_v5_and_v6_submissions_load_with_their_codes(tmp_path, con):
    """March 2024 (v5) and April 2024 (v6) from the generator: both load, each with its version's bed types."""
    folder = tmp_path / "landing"
    for month in (date(2024, 3, 1), date(2024, 4, 1)):
        samples.write_submission(month, folder)
    results = ingest(con, folder, tmp_path)
    assert [r.action for r in results] == ["loaded", "loaded"], [str(v) for r in results for v in r.violations]
    codes = dict(
        con.execute(
            """select uniq_month_id, list(distinct admitted_patient_class order by admitted_patient_class)
               from raw_los_mh.mhs502_ward_stays group by 1"""
        ).fetchall()
    )
    assert set(codes) == {1488, 1489}
    assert {"10", "11", "12"} <= set(codes[1488]) and not {"200", "201", "202"} & set(codes[1488])
    assert {"200", "201", "202"} <= set(codes[1489]) and not {"10", "11", "12"} & set(codes[1489])
    # several ward stays per spell: some adult acute spells started on a PICU
    moved = con.execute(
        """select count(*) from (select uniq_hosp_prov_spell_id, period_month from raw_los_mh.mhs502_ward_stays
           group by all having count(*) > 1)"""
    ).fetchone()[0]
    assert moved > 0
    assert los_mh.check_loaded_months(con, run_id="t", today=date(2026, 12, 1)) == {
        date(2024, 3, 1): [],
        date(2024, 4, 1): [],
    }


def test_generated_resubmission_with_later_discharges_loads(tmp_path, con):
    month = samples.RESUBMITTED_MONTHS[1]  # June 2024
    folder = tmp_path / "landing"
    samples.write_submission(month, folder)
    samples.write_submission(month, folder, revised=True)
    results = ingest(con, folder, tmp_path)
    assert [r.action for r in results] == ["loaded", "replaced"], [str(v) for r in results for v in r.violations]
    later = con.execute(
        "select count(*) from raw_los_mh.mhs501_hospital_spells where discharge_date > date '2024-06-30'"
    ).fetchone()[0]
    assert later > 0


def test_the_generator_is_deterministic(tmp_path):
    a = samples.write_submission(date(2023, 9, 1), tmp_path / "a", revised=True)
    b = samples.write_submission(date(2023, 9, 1), tmp_path / "b", revised=True)
    assert a[0].name == "MHSDS_2023-09-revised.zip" and a[0].read_bytes() == b[0].read_bytes()


def test_uniq_month_id_is_the_publications():
    # NHS England's code: UniqMonthID 1459 is October 2021 (los_prep.py's defaults), v6 from 1489
    assert los_mh.uniq_month_id(date(2021, 10, 1)) == 1459
    assert los_mh.uniq_month_id(date(2024, 4, 1)) == 1489
    assert los_mh.month_of_uniq_month_id(1488) == date(2024, 3, 1)
    assert los_mh.mhsds_version(date(2024, 3, 1)) == "v5" and los_mh.mhsds_version(date(2024, 4, 1)) == "v6"
