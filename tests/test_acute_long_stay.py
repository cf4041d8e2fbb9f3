"""NHS England's acute discharge sitrep monthly file ("Discharge delays (Acute)") as a feed: a hand-written file in
the publisher's long CSV layout loads; its figures reach the catalogue metrics and the collaborative figures as
hand-computed; a -v2 re-issue replaces its month; a file of another layout is quarantined with its file, row,
column and rule named; loading the same files twice changes nothing. Real files, real DuckDB, the real pipeline.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.pipeline import run_pipeline
from orchestration.samples.acute_long_stay import file_bytes, write_acute_long_stay_files
from orchestration.samples.common import csv_bytes
from orchestration.sources import acute_long_stay as feed

MAY = date(2025, 5, 1)
NCTR = "Number of patients who no longer meet the criteria to reside"
DISCHARGED = "Number of patients discharged"
REMAINING = "Number of patients remaining in hospital who no longer meet the criteria to reside"
LOS7 = "Number of additional bed days, patients with a length of stay of 7 days or over"
LOS14 = "Number of additional bed days, patients with length of stay of 14 days or over"  # the other wording
LOS21 = "Number of additional bed days, patients with a length of stay of 21 days or over"
REASON = "Capacity \u2013 Home-based rehabilitation, reablement or recovery services not yet available (Pathway 1)"

RCF = ("Provider", "NORTH EAST AND YORKSHIRE", "QWO", "RCF", "AIREDALE NHS FOUNDATION TRUST")
RAE = ("PROVIDER", "NORTH EAST AND YORKSHIRE", "QWO", "RAE", "BRADFORD TEACHING HOSPITALS NHS FOUNDATION TRUST")
RZZ = ("Provider", "NORTH EAST AND YORKSHIRE", "QWO", "RZZ", "NOT A BUNDLED TRUST")
ICB = ("ICB", "NORTH EAST AND YORKSHIRE", "QWO", "QWO", "NHS WEST YORKSHIRE INTEGRATED CARE BOARD")
ENGLAND = ("National", "ENGLAND", "ENGLAND", "ENG", "ENGLAND")


def row(day: str, unit: tuple, metric: str, value: str, kind: str = "Daily", group: str = "Criteria to reside"):
    return [day, *unit, metric, kind, group, value]


def may_rows(rcf_first_day: str = "10") -> list[list[str]]:
    """May 2025 by hand. RCF: NCtR 10 (or the re-issue's figure), 12, not returned on the 3rd (blank);
    remaining 6, 8, blank; discharged 4, 4, blank; 7+ snapshots 100 and 140, 14+ 60 and 80, 21+ 30 and 50.
    RAE (Level written PROVIDER): NCtR 20, 21, 22; remaining 9, 12, 15; discharged 11, 9, 7; one 7+ snapshot 200.
    Plus rows no trust figure may use: England and ICB totals, a trust outside seeds/reference, a delay reason,
    and a delay-reason row dated in April (loaded, flagged row_in_file_month)."""
    rows = []
    for day, (nctr, remaining, discharged) in zip(
        ("01/05/2025", "02/05/2025", "03/05/2025"),
        ((rcf_first_day, "6", "4"), ("12", "8", "4"), ("", "", "")),
        strict=True,
    ):
        rows += [row(day, RCF, NCTR, nctr), row(day, RCF, REMAINING, remaining), row(day, RCF, DISCHARGED, discharged)]
    for day, (nctr, remaining, discharged) in zip(
        ("01/05/2025", "02/05/2025", "03/05/2025"),
        (("20", "9", "11"), ("21", "12", "9"), ("22", "15", "7")),
        strict=True,
    ):
        rows += [row(day, RAE, NCTR, nctr), row(day, RAE, REMAINING, remaining), row(day, RAE, DISCHARGED, discharged)]
    snapshot = {"kind": "Weekly snapshot", "group": "Additional bed days"}
    for day, (s7, s14, s21) in zip(
        ("05/05/2025", "12/05/2025"), (("100", "60", "30"), ("140", "80", "50")), strict=True
    ):
        rows += [row(day, RCF, LOS7, s7, **snapshot), row(day, RCF, LOS14, s14, **snapshot)]
        rows += [row(day, RCF, LOS21, s21, **snapshot)]
    rows.append(row("05/05/2025", RAE, LOS7, "200", **snapshot))
    for unit, value in ((ENGLAND, "9000"), (ICB, "500"), (RZZ, "77")):
        rows.append(row("01/05/2025", unit, NCTR, value))
    rows.append(row("05/05/2025", RCF, REASON, "3", "Weekly snapshot", "Delay reason LOS 7+"))
    rows.append(row("28/04/2025", RCF, REASON, "2", "Weekly snapshot", "Delay reason LOS 7+"))
    return rows


def write(folder: Path, rows: list[list[str]], name: str, header=feed.HEADER, encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(csv_bytes(header, rows).decode("utf-8").encode(encoding))
    return path


def test_publishers_file_names_are_read():
    assert feed.parse_file_name("Daily-discharge-sitrep-monthly-data-webfile-1-CSV-apr26-v2.csv") == (
        feed.PublishedName(date(2026, 4, 1), 2, False)
    )
    assert feed.month_in_file_name(Path("Daily-discharge-sitrep-monthly-data-webfile-04-CSV-jul26.csv")) == (
        date(2026, 7, 1)
    )
    assert feed.parse_file_name("Daily-discharge-sitrep-monthly-data-CSV-webfile-July2025.csv").month == date(
        2025, 7, 1
    )
    assert feed.parse_file_name("Daily-discharge-sitrep-monthly-data-webfile-August2024-revised.csv").is_revision
    # the number is the month of the financial year: 3 is June, so "3 … nov25" is not the publisher's name
    assert feed.parse_file_name("Daily-discharge-sitrep-monthly-data-webfile-3-CSV-nov25.csv") is None
    assert feed.file_name(date(2026, 4, 1)) == "Daily-discharge-sitrep-monthly-data-webfile-1-CSV-apr26.csv"


def test_a_file_in_the_publishers_layout_loads_and_loading_twice_changes_nothing(tmp_path):
    folder = tmp_path / "acute_long_stay"
    write(folder, may_rows(), feed.file_name(MAY))
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    first = feed.ingest_folder(con, folder, tmp_path / "quarantine", move_rejected=False)
    assert [(r.action, r.period_month, r.rows) for r in first] == [("loaded", MAY, len(may_rows()))]
    table = f"{feed.SCHEMA}.{feed.TABLE}"
    before = con.execute(f"select * from {table} order by source_row").fetchall()
    # a blank Value is missing, never zero; the April row is loaded and flagged, not dropped
    assert con.execute(f"select count(*) from {table} where value_published = '' and value is null").fetchone() == (3,)
    assert con.execute(f"select period, row_flags from {table} where row_flags is not null").fetchall() == [
        (date(2025, 4, 28), "row_in_file_month")
    ]
    assert [w.rule for w in first[0].violations] == ["row_in_file_month"]
    assert con.execute(f"select count(distinct metric_key) from {table}").fetchone() == (6,)  # 14+ in either wording
    second = feed.ingest_folder(con, folder, tmp_path / "quarantine", move_rejected=False)
    assert [r.action for r in second] == ["unchanged"]
    assert con.execute(f"select * from {table} order by source_row").fetchall() == before
    assert con.execute(f"select count(*) from {feed.SCHEMA}.file_loads").fetchone() == (1,)


def test_a_re_issue_replaces_its_month(tmp_path):
    folder = tmp_path / "acute_long_stay"
    write(folder, may_rows(), feed.file_name(MAY))
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    feed.ingest_folder(con, folder, tmp_path / "quarantine", move_rejected=False)
    write(folder, may_rows(rcf_first_day="16"), feed.file_name(MAY, version=2))
    results = feed.ingest_folder(con, folder, tmp_path / "quarantine", move_rejected=False)
    assert [(r.action, r.file) for r in results] == [
        ("unchanged", feed.file_name(MAY)),  # still current when its turn comes
        ("replaced", feed.file_name(MAY, version=2)),
    ]
    again = feed.ingest_folder(con, folder, tmp_path / "quarantine", move_rejected=False)
    assert [r.action for r in again] == ["superseded", "unchanged"]
    rcf_first = con.execute(
        f"select value, source_file from {feed.SCHEMA}.{feed.TABLE} "
        "where org_code = 'RCF' and metric_key = 'nctr' and period = '2025-05-01'"
    ).fetchall()
    assert rcf_first == [(16.0, feed.file_name(MAY, version=2))]  # one row: the month was swapped, not added to
    # the same month again with other figures but no re-issue marker is rejected, and changes nothing
    other = tmp_path / "other"
    write(other, may_rows(), feed.file_name(MAY))
    write(other, may_rows(rcf_first_day="99"), "may-2025-fixed-by-hand.csv")  # month from its rows
    con = duckdb.connect(str(tmp_path / "other.duckdb"))
    results = feed.ingest_folder(con, other, tmp_path / "quarantine", move_rejected=False)
    assert [(r.action, [v.rule for v in r.violations]) for r in results] == [
        ("loaded", ["row_in_file_month"]),
        ("rejected", ["revision_marked", "row_in_file_month"]),
    ]
    assert con.execute(
        f"select value from {feed.SCHEMA}.{feed.TABLE} where org_code = 'RCF' and metric_key = 'nctr' "
        "and period = '2025-05-01'"
    ).fetchall() == [(10.0,)]


def test_a_file_of_another_layout_is_quarantined_naming_file_row_column_and_rule(tmp_path):
    folder = tmp_path / "acute_long_stay"
    header = tuple("Organisation Code" if column == "Org Code" else column for column in feed.HEADER)
    name = feed.file_name(MAY)
    write(folder, may_rows(), name, header=header)
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    [result] = feed.ingest_folder(con, folder, tmp_path / "quarantine", move_rejected=False)
    assert result.action == "rejected"
    [violation] = result.violations
    assert (violation.file, violation.row, violation.column, violation.rule) == (
        name,
        1,
        "Org Code",
        "required_columns_present",
    )
    reason = (tmp_path / "quarantine" / "acute_long_stay" / f"{name}.reason.txt").read_text(encoding="utf-8")
    assert f"file: {name}, row: 1, column: Org Code, rule: required_columns_present" in reason
    assert con.execute(f"select count(*) from {feed.SCHEMA}.{feed.TABLE}").fetchone() == (0,)


def test_a_value_that_is_not_a_number_names_its_cell(tmp_path):
    rows = may_rows()
    rows[4][-1] = "8 (est)"  # the file's line 6: RCF, 02/05/2025, patients remaining
    path = write(tmp_path, rows, feed.file_name(MAY))
    violations = feed.check_contract(*feed.read_file(path))
    errors = [(v.row, v.column, v.rule) for v in violations if v.is_error]
    assert errors == [(6, "Value", "value_readable")]


def test_odd_rows_of_a_genuine_file_are_loaded_and_flagged_not_rejected(tmp_path):
    rows = may_rows()
    rows.append(row("01/05/2025", ("Provider", "X", "QWO", "R?1", "TYPO"), NCTR, "5"))
    rows.append(rows[0])  # a row repeated word for word
    path = write(tmp_path / "acute_long_stay", rows, feed.file_name(MAY), encoding="cp1252")  # a cp1252 month
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    [result] = feed.ingest_folder(con, path.parent, tmp_path / "quarantine", move_rejected=False)
    assert result.action == "loaded"
    assert sorted({v.rule for v in result.violations}) == [
        "no_repeated_rows",
        "provider_code_format",
        "row_in_file_month",
    ]
    assert con.execute(
        f"select metric from {feed.SCHEMA}.{feed.TABLE} where metric like 'Capacity%' limit 1"
    ).fetchone() == (REASON,)  # the en dash read from cp1252


def test_every_sample_file_passes_its_contract_and_is_recognised(tmp_path):
    paths = write_acute_long_stay_files(tmp_path, first_month=date(2025, 7, 1), last_month=date(2025, 8, 1))
    assert [p.name for p in paths] == [feed.file_name(date(2025, 7, 1)), feed.file_name(date(2025, 8, 1))]
    for path in paths:
        violations = feed.check_contract(*feed.read_file(path))
        assert violations == []
    _, august = feed.read_file(paths[1])
    keys = set(august["Metric"].map(feed.metric_key)) - {""}
    assert keys == set(feed.METRICS)  # August 2025 on also has the publisher's monthly daily average
    assert file_bytes(date(2025, 8, 1)) == paths[1].read_bytes()  # deterministic


@pytest.fixture(scope="module")
def hand_worked(tmp_path_factory):
    """The hand-written May 2025 file, then its -v2 re-issue (RCF's 1 May NCtR 16 instead of 10), through the
    whole pipeline (only this feed's files in the sources folder)."""
    sources = tmp_path_factory.mktemp("sources")
    write(sources / "acute_long_stay", may_rows(), feed.file_name(MAY))
    write(sources / "acute_long_stay", may_rows(rcf_first_day="16"), feed.file_name(MAY, version=2))
    warehouse = tmp_path_factory.mktemp("warehouse")
    summary = run_pipeline(sources, warehouse)
    assert summary.exit_code == 0, (summary.rejected_files, summary.failed_checks, summary.failed_steps)
    build = duckdb.connect(str(warehouse / "build.duckdb"), read_only=True)
    serving = duckdb.connect(str(summary.serving_db), read_only=True)
    yield build, serving
    build.close()
    serving.close()


def test_hand_worked_trust_figures(hand_worked):
    build, _ = hand_worked
    found = build.execute(
        """select org_code, measure, period_type, published_value, is_suppressed, source_file
           from intermediate.int_los_published__acute order by org_code, measure"""
    ).fetchall()
    v2 = feed.file_name(MAY, version=2)
    # RCF: NCtR (16 + 12) / 2 = 14 (the 3rd not returned: not a zero, which would give 28 / 3); remaining
    # (6 + 8) / 2 = 7; discharged 4 + 4 = 8; 7+ (100 + 140) / 2 = 120; 14+ (60 + 80) / 2 = 70; 21+ (30 + 50) / 2 = 40.
    # RAE: NCtR (20 + 21 + 22) / 3 = 21; remaining (9 + 12 + 15) / 3 = 12; discharged 11 + 9 + 7 = 27; 7+ 200.
    # RZZ (not a bundled trust), the ICB and England rows belong to no trust.
    assert found == [
        ("RAE", "acute_los_additional_bed_days_7plus", "weekly_snapshot_mean", 200.0, False, v2),
        ("RAE", "acute_los_nctr_daily_avg", "month_daily_average", 21.0, False, v2),
        ("RAE", "acute_los_nctr_discharged", "month_total", 27.0, False, v2),
        ("RAE", "acute_los_nctr_remaining_daily_avg", "month_daily_average", 12.0, False, v2),
        ("RCF", "acute_los_additional_bed_days_14plus", "weekly_snapshot_mean", 70.0, False, v2),
        ("RCF", "acute_los_additional_bed_days_21plus", "weekly_snapshot_mean", 40.0, False, v2),
        ("RCF", "acute_los_additional_bed_days_7plus", "weekly_snapshot_mean", 120.0, False, v2),
        ("RCF", "acute_los_nctr_daily_avg", "month_daily_average", 14.0, False, v2),
        ("RCF", "acute_los_nctr_discharged", "month_total", 8.0, False, v2),
        ("RCF", "acute_los_nctr_remaining_daily_avg", "month_daily_average", 7.0, False, v2),
    ]


def test_hand_worked_metrics_reach_the_collaborative_figures(hand_worked):
    _, serving = hand_worked
    found = serving.execute(
        """select org_code, value, is_partial, members_expected, members_reporting
           from fct_collaborative_metric_month
           where collaborative_code = 'WYAAT' and membership_basis = 'as_was' and period_month = ?
             and metric_code = 'acute_los_nctr_daily_avg' and org_code in ('ALL', 'RCF', 'RAE', 'RWY')
           order by org_code""",
        [MAY],
    ).fetchall()
    # WYAAT's six acute members: RCF 14 + RAE 21 = 35, partial (four members sent nothing), RWY shown missing
    assert found == [
        ("ALL", 35.0, True, 6, 2),
        ("RAE", 21.0, False, 1, 1),
        ("RCF", 14.0, False, 1, 1),
        ("RWY", None, True, 1, 0),
    ]
    metrics = serving.execute(
        "select metric_code, source, unit from dim_metric where metric_code like 'acute_los_%' order by 1"
    ).fetchall()
    assert [code for code, _, _ in metrics] == [
        "acute_los_additional_bed_days_14plus",
        "acute_los_additional_bed_days_21plus",
        "acute_los_additional_bed_days_7plus",
        "acute_los_nctr_daily_avg",
        "acute_los_nctr_discharged",
        "acute_los_nctr_remaining_daily_avg",
    ]
    freshness = serving.execute(
        "select latest_period, revisions, months_held from dim_source_freshness where source = 'acute_long_stay'"
    ).fetchall()
    assert freshness == [(MAY, 1, 1)]
