"""The out-of-area placements file contract and idempotent loading into raw_oap, on real CSV files and real DuckDB.

Files are the generator's own months (orchestration.samples.oap), written to tmp_path; each contract test breaks
exactly one rule in one cell and expects it named with its file, CSV line, column and rule.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.raw import ContractViolation
from orchestration.samples.common import csv_bytes
from orchestration.samples.oap import generate_oap_month
from orchestration.sources import oap

JUNE, JULY = date(2024, 6, 1), date(2024, 7, 1)


@cache
def _generated(month: date, provisional: bool) -> pd.DataFrame:
    return generate_oap_month(month, provisional=provisional)


def frame_for(month: date = JUNE, *, provisional: bool = False) -> pd.DataFrame:
    """A fresh copy of the generated rows of ``month`` (safe to change)."""
    return _generated(month, provisional).copy()


def write(
    folder: Path,
    frame: pd.DataFrame,
    month: date = JUNE,
    *,
    status: str = "Final",
    revised: bool = False,
    name: str | None = None,
    header: list[str] | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or oap.file_name(month, status, revised))
    path.write_bytes(csv_bytes(header or list(oap.HEADER), frame.itertuples(index=False, name=None)))
    return path


def ingest(con, folder: Path, tmp_path: Path, **kwargs):
    return oap.ingest_oap_folder(
        con, folder, tmp_path / "quarantine", move_rejected=kwargs.pop("move", False), **kwargs
    )


def rows(con, sql: str = "select * exclude (source_file) from raw_oap.monthly_statistics") -> list[tuple]:
    return con.execute(sql + " order by all").fetchall()


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "build.duckdb"))
    yield connection
    connection.close()


# --------------------------------------------------------------------------------------------------------------
# Loading


def test_a_generated_month_loads_with_its_columns_and_values(con, tmp_path):
    frame = frame_for()
    write(tmp_path / "oap", frame)

    [result] = ingest(con, tmp_path / "oap", tmp_path)

    assert (result.action, result.rows, result.period_month) == ("loaded", len(frame), JUNE)
    described = con.execute("describe raw_oap.monthly_statistics").fetchall()
    assert [(name, kind) for name, kind, *_ in described] == [(name, kind.upper()) for name, kind in oap.RAW_COLUMNS]
    loaded = con.execute(
        "select source_row, measure_id, measure_value_published from raw_oap.monthly_statistics order by source_row"
    ).fetchall()
    assert loaded == [(i + 2, m, v) for i, (m, v) in enumerate(zip(frame.MEASURE_ID, frame.MEASURE_VALUE, strict=True))]
    england = con.execute(
        """select measure_value from raw_oap.monthly_statistics
           where breakdown = 'England' and measure_id = 'OAP02' and period_type = 'month'"""
    ).fetchone()[0]
    published = frame.query("BREAKDOWN == 'England' and MEASURE_ID == 'OAP02'").MEASURE_VALUE.iloc[0]
    assert england == float(published)
    assert con.execute("select count(*) from raw_oap.file_loads where is_current").fetchone()[0] == 1


def test_star_is_kept_as_suppressed_never_zero(con, tmp_path):
    frame = frame_for()
    stars = int((frame.MEASURE_VALUE == "*").sum())
    assert stars > 0
    write(tmp_path / "oap", frame)
    ingest(con, tmp_path / "oap", tmp_path)

    suppressed = con.execute(
        """select count(*), count(measure_value), bool_and(is_suppressed)
           from raw_oap.monthly_statistics where measure_value_published = '*'"""
    ).fetchone()
    assert suppressed == (stars, 0, True)
    assert con.execute(
        "select count(*) from raw_oap.monthly_statistics where is_suppressed and measure_value_published <> '*'"
    ).fetchone() == (0,)
    assert con.execute("select count(*) from raw_oap.monthly_statistics where measure_value = 0").fetchone() == (0,)


def test_rounding_to_five_holds_on_every_unsuppressed_count(con, tmp_path):
    for month in (date(2021, 1, 1), date(2022, 4, 1), date(2023, 12, 1), date(2025, 7, 1), date(2026, 9, 1)):
        values = frame_for(month).MEASURE_VALUE
        counts = values[values != "*"].astype(int)
        assert ((counts % 5 == 0) & (counts >= 5)).all(), month
    write(tmp_path / "oap", frame_for())
    ingest(con, tmp_path / "oap", tmp_path)
    assert con.execute(
        """select count(*) from raw_oap.monthly_statistics
           where not is_suppressed and (measure_value % 5 <> 0 or measure_value < 5)"""
    ).fetchone() == (0,)


def test_period_type_is_derived_from_start_against_end(con, tmp_path):
    write(tmp_path / "oap", frame_for())
    ingest(con, tmp_path / "oap", tmp_path)

    found = con.execute(
        """select period_type, reporting_period_start, reporting_period_end, count(*)
           from raw_oap.monthly_statistics group by all order by reporting_period_start desc"""
    ).fetchall()
    end = date(2024, 6, 30)
    per_period = len(frame_for()) // 3
    assert found == [
        ("month", date(2024, 6, 1), end, per_period),
        ("rolling_quarter", date(2024, 4, 1), end, per_period),
        ("rolling_12_months", date(2023, 7, 1), end, per_period),
    ]
    assert oap.period_type(date(2024, 4, 1), end) == "rolling_quarter"
    assert oap.period_type(date(2024, 5, 1), end) is None


def test_loading_the_same_files_again_changes_nothing(con, tmp_path):
    folder = tmp_path / "oap"
    write(folder, frame_for(JUNE), JUNE)
    write(folder, frame_for(JULY), JULY)
    first = ingest(con, folder, tmp_path)
    before = rows(con)
    loads = rows(con, "select * exclude (loaded_at) from raw_oap.file_loads")

    again = ingest(con, folder, tmp_path)

    assert [r.action for r in first] == ["loaded", "loaded"]
    assert [r.action for r in again] == ["unchanged", "unchanged"]
    assert rows(con) == before
    assert rows(con, "select * exclude (loaded_at) from raw_oap.file_loads") == loads

    # The same figures in other bytes (re-saved with \n endings, other name) are recognised, not re-loaded.
    other = tmp_path / "other"
    other.mkdir()
    data = (folder / oap.file_name(JUNE)).read_bytes().replace(b"\r\n", b"\n")
    (other / "oap june copy.csv").write_bytes(data)
    [copy] = ingest(con, other, tmp_path)
    assert copy.action == "unchanged"
    assert rows(con) == before


def test_final_replaces_provisional_and_a_late_provisional_is_superseded(con, tmp_path):
    folder = tmp_path / "oap"
    provisional, final = frame_for(provisional=True), frame_for()
    assert not provisional.equals(final)
    write(folder, provisional, status="Provisional")
    [first] = ingest(con, folder, tmp_path)
    assert first.action == "loaded"

    write(folder, final, status="Final")
    results = ingest(con, folder, tmp_path)

    assert [r.action for r in results] == ["unchanged", "replaced"]
    assert con.execute("select distinct status from raw_oap.monthly_statistics").fetchall() == [("Final",)]
    loaded = con.execute("select measure_value_published from raw_oap.monthly_statistics order by source_row")
    assert [v for (v,) in loaded.fetchall()] == list(final.MEASURE_VALUE)
    assert con.execute(
        "select source_file, action, is_current from raw_oap.file_loads order by load_id"
    ).fetchall() == [
        (oap.file_name(JUNE, "Provisional"), "loaded", False),
        (oap.file_name(JUNE, "Final"), "replaced", True),
    ]

    # A Provisional publication (other bytes) arriving after the Final one does not take its place.
    late = tmp_path / "late"
    changed = frame_for(provisional=True)
    changed.loc[changed.index[0], "MEASURE_VALUE"] = "5"
    write(late, changed, status="Provisional", name="MHSDS_OAPs_2024-06_Provisional_copy.csv")
    [result] = ingest(con, late, tmp_path)
    assert result.action == "superseded"
    assert con.execute("select distinct status from raw_oap.monthly_statistics").fetchall() == [("Final",)]


def test_same_month_twice_with_other_figures_is_rejected_unless_revised(con, tmp_path):
    folder = tmp_path / "oap"
    write(folder, frame_for())
    ingest(con, folder, tmp_path)
    before = rows(con)

    changed = frame_for()
    changed.loc[changed.index[2], "MEASURE_VALUE"] = "12345"
    second = tmp_path / "second"
    write(second, changed, name="MHSDS_OAPs_2024-06_Final_resent.csv")
    [result] = ingest(con, second, tmp_path)

    assert result.action == "rejected"
    assert [v.rule for v in result.violations] == ["revision_named_revised"]
    assert result.quarantined_to is not None and result.quarantined_to.exists()
    assert "revision_named_revised" in Path(f"{result.quarantined_to}.reason.txt").read_text(encoding="utf-8")
    assert rows(con) == before

    revised = tmp_path / "revised"
    write(revised, changed, revised=True)
    [replaced] = ingest(con, revised, tmp_path)
    assert replaced.action == "replaced"
    assert con.execute("select measure_value from raw_oap.monthly_statistics where source_row = 4").fetchone() == (
        12345.0,
    )


# --------------------------------------------------------------------------------------------------------------
# The contract


def _set(row: int, column: str, value: str):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.index[row], column] = value
        return frame

    return change


def _set_both(row: int, start: str, end: str):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.index[row], ["REPORTING_PERIOD_START", "REPORTING_PERIOD_END"]] = [start, end]
        return frame

    return change


def _duplicate(frame: pd.DataFrame) -> pd.DataFrame:
    frame.iloc[6] = frame.iloc[5]
    return frame


START, END = "REPORTING_PERIOD_START", "REPORTING_PERIOD_END"
# (test id, change to the rows, rule, column, CSV line of the first violation)
CASES = [
    ("unknown_measure_id", _set(3, "MEASURE_ID", "OAP99"), "known_measure_id", "MEASURE_ID", 5),
    ("negative_value", _set(4, "MEASURE_VALUE", "-5"), "value_not_negative", "MEASURE_VALUE", 6),
    ("non_numeric_value", _set(5, "MEASURE_VALUE", "n/a"), "value_is_star_or_number", "MEASURE_VALUE", 7),
    ("blank_value", _set(5, "MEASURE_VALUE", ""), "value_is_star_or_number", "MEASURE_VALUE", 7),
    ("fractional_count", _set(2, "MEASURE_VALUE", "12.5"), "count_is_whole_number", "MEASURE_VALUE", 4),
    ("bad_date", _set(7, "REPORTING_PERIOD_START", "2024-13-01"), "dates_parse", "REPORTING_PERIOD_START", 9),
    ("uk_style_date", _set(7, "REPORTING_PERIOD_END", "30/06/2024"), "dates_parse", "REPORTING_PERIOD_END", 9),
    ("start_not_allowed", _set(9, "REPORTING_PERIOD_START", "2024-05-01"), "known_period_start", START, 11),
    ("start_after_end", _set(9, "REPORTING_PERIOD_START", "2024-07-01"), "known_period_start", START, 11),
    ("end_not_month_end", _set(1, "REPORTING_PERIOD_END", "2024-06-29"), "end_is_month_end", END, 3),
    ("end_in_other_month", _set_both(1, "2024-05-01", "2024-05-31"), "single_month", END, 3),
    ("unknown_status", _set(8, "STATUS", "Draft"), "known_single_status", "STATUS", 10),
    ("blank_level", _set(8, "PRIMARY_LEVEL", ""), "required_level_present", "PRIMARY_LEVEL", 10),
    ("duplicate_key", _duplicate, "unique_key", ", ".join(oap.KEY_COLUMNS), 7),
]


@pytest.mark.parametrize(("change", "rule", "column", "line"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_broken_rule_is_named_and_quarantined_while_a_good_file_loads(con, tmp_path, change, rule, column, line):
    folder = tmp_path / "oap"
    good = write(folder, frame_for(JULY), JULY)
    bad = write(folder, change(frame_for()))

    results = {r.file: r for r in ingest(con, folder, tmp_path, move=True)}

    rejected = results[bad.name]
    assert rejected.action == "rejected"
    assert results[good.name].action == "loaded"
    found = [v for v in rejected.violations if v.rule == rule]
    assert found, rejected.violations
    assert {v.rule for v in rejected.violations} == {rule}
    first = found[0]
    assert (first.file, first.row) == (bad.name, line)
    assert first.column == column
    if rule == "unique_key":
        assert "also on line 8" in first.message
    assert not bad.exists()  # moved out of the landing folder
    reason = (tmp_path / "quarantine" / "oap" / f"{bad.name}.reason.txt").read_text(encoding="utf-8")
    assert f"file: {bad.name}, row: {line}, column: {first.column}, rule: {rule}" in reason
    assert (tmp_path / "quarantine" / "oap" / bad.name).exists()
    assert con.execute("select distinct period_month from raw_oap.monthly_statistics").fetchall() == [(JULY,)]


def test_wrong_header_is_named_on_line_one(con, tmp_path):
    header = list(oap.HEADER)
    header[-1] = "VALUE"
    path = write(tmp_path / "oap", frame_for(), header=header)

    [result] = ingest(con, tmp_path / "oap", tmp_path)

    assert result.action == "rejected"
    [violation] = result.violations
    assert (violation.row, violation.column, violation.rule) == (1, "VALUE", "header_matches_layout")
    assert "MEASURE_VALUE" in violation.message
    assert path.exists()  # copied, not moved, without move_rejected


def test_a_future_month_is_rejected(con, tmp_path):
    month = date(2024, 6, 1)
    oap_file, frame = oap.read_oap_file(write(tmp_path / "oap", frame_for(month), month))
    violations = oap.check_oap_contract(oap_file, frame, today=date(2024, 5, 15))
    assert {v.rule for v in violations} == {"period_not_in_future"}
    assert (violations[0].row, violations[0].column) == (2, "REPORTING_PERIOD_END")
    assert violations[-1].message.startswith("… and")
    assert oap.check_oap_contract(oap_file, frame, today=date(2024, 7, 3)) == []

    future = date(date.today().year + 1, 1, 1)
    write(tmp_path / "future", frame_for(future), future)
    [result] = ingest(con, tmp_path / "future", tmp_path)
    assert result.action == "rejected"
    assert {v.rule for v in result.violations} == {"period_not_in_future"}


def test_a_name_that_disagrees_with_the_rows_is_rejected(con, tmp_path):
    path = write(tmp_path / "oap", frame_for(JUNE), name=oap.file_name(JULY))
    [result] = ingest(con, tmp_path / "oap", tmp_path)
    assert result.action == "rejected"
    assert result.period_month == JUNE
    assert [(v.rule, v.column) for v in result.violations] == [("name_matches_period", "REPORTING_PERIOD_END")]
    assert path.name in str(result.violations[0])


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "not_empty"),
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "not_html"),
        (",".join(oap.HEADER).encode() + b"\r\n2024-06-01,2024-06-30,Final,England,England,Angleterre \xe9\r\n", None),
        (",".join(oap.HEADER).encode() + b"\r\n", "has_rows"),
    ],
    ids=["empty", "html", "not_utf8", "header_only"],
)
def test_unreadable_files_raise_contract_errors_naming_the_file(con, tmp_path, data, rule):
    folder = tmp_path / "oap"
    folder.mkdir()
    path = folder / oap.file_name(JUNE)
    path.write_bytes(data)
    [result] = ingest(con, folder, tmp_path)
    assert result.action == "rejected"
    assert result.file == path.name
    assert all(v.file == path.name for v in result.violations)
    if rule:
        assert result.violations[0].rule == rule
    else:
        assert result.violations[0].rule == "utf8_encoding"
        assert result.violations[0].row == 2


def test_violations_read_with_file_row_column_and_rule():
    text = str(ContractViolation("f.csv", 7, "MEASURE_ID", "known_measure_id", "'OAP99' is not a known measure id"))
    assert text == "file: f.csv, row: 7, column: MEASURE_ID, rule: known_measure_id: 'OAP99' is not a known measure id"


# --------------------------------------------------------------------------------------------------------------
# Discovery and the asset check


def test_discovery_orders_months_and_provisional_before_final(tmp_path):
    folder = tmp_path / "oap"
    folder.mkdir()
    names = [
        "MHSDS_OAPs_2024-07_Final.csv",
        "MHSDS_OAPs_2024-06_Final-revised.csv",
        "MHSDS_OAPs_2024-06_Final.csv",
        "MHSDS_OAPs_2024-06_Provisional.csv",
        "notes.txt",
        "other.csv",
    ]
    for name in names:
        (folder / name).write_bytes(b"x")
    assert [p.name for p in oap.discover_oap_files(folder)] == [
        "MHSDS_OAPs_2024-06_Provisional.csv",
        "MHSDS_OAPs_2024-06_Final.csv",
        "MHSDS_OAPs_2024-06_Final-revised.csv",
        "MHSDS_OAPs_2024-07_Final.csv",
        "other.csv",
    ]
    assert oap.month_in_file_name(folder / names[0]) == JULY
    assert oap.discover_oap_files(tmp_path / "missing") == []


def test_months_window_and_loaded_month_checks(con, tmp_path):
    folder = tmp_path / "oap"
    write(folder, frame_for(JUNE), JUNE)
    write(folder, frame_for(JULY), JULY)
    assert oap.months_in_folder(folder) == [JUNE, JULY]

    [only] = ingest(con, folder, tmp_path, months=(JULY, date(2024, 8, 1)))
    assert only.period_month == JULY

    assert oap.check_loaded_months(con, run_id="r1") == {JULY: []}
    ingest(con, folder, tmp_path)
    assert oap.check_loaded_months(con, run_id="r2") == {JUNE: []}
    assert oap.check_loaded_months(con, run_id="r3") == {}
    assert con.execute(
        "select run_id, source, period_month, passed from audit.contract_checks order by run_id"
    ).fetchall() == [("r1", "oap", JULY, True), ("r2", "oap", JUNE, True)]

    # What the warehouse holds is checked, not what the file said.
    con.execute("update raw_oap.monthly_statistics set measure_id = 'OAP99' where source_row = 3")
    con.execute("delete from audit.contract_checks")
    outcome = oap.check_loaded_months(con, run_id="r4")
    for month in (JUNE, JULY):
        assert [(v.row, v.column, v.rule) for v in outcome[month]] == [(3, "MEASURE_ID", "known_measure_id")]
