"""Every mart's GX suite (expectations/marts/): it covers every served table, passes on the bundled samples, catches
what it says it catches, blocks the publish when it fails, lands in fct_data_quality, and builds Data Docs."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration import quality
from orchestration.pipeline import run_pipeline
from tests.rtt_files import rtt_row, write_rtt_file


@pytest.fixture(scope="module")
def build_copy(bundled_run, tmp_path_factory) -> Path:
    """A copy of the bundled run's build database, to break marts in."""
    copy = tmp_path_factory.mktemp("marts") / "build.duckdb"
    shutil.copy2(bundled_run.build_db, copy)
    return copy


@pytest.fixture
def broken(build_copy, tmp_path):
    """A fresh copy of the build database and a function that runs SQL on it then validates one mart."""
    path = tmp_path / "build.duckdb"
    shutil.copy2(build_copy, path)
    con = duckdb.connect(str(path))
    yield lambda table, sql: (con.execute(sql), quality.validate_mart(con, table))[1]
    con.close()


def test_every_served_table_has_a_suite(bundled_run):
    served = set(bundled_run.published_tables)
    assert served == set(quality.suite_names()), "add expectations/marts/<table>.json for every served table"


def test_every_suite_names_its_rules_and_key():
    for name in quality.suite_names():
        suite = json.loads((quality.MART_EXPECTATIONS_DIR / f"{name}.json").read_text(encoding="utf-8"))
        assert suite["name"] == name
        assert suite["meta"]["key"], name
        assert all(e["meta"]["rule"] and e["meta"]["description"] for e in suite["expectations"]), name


def test_the_bundled_marts_pass_their_suites_and_the_result_is_served(bundled_run, serving):
    assert not [check for check in bundled_run.failed_checks if check.endswith(":gx_suite")]
    rows = serving.execute(
        "select source, success, details from fct_data_quality where check_name = 'mart_suite'"
    ).fetchall()
    assert sorted(source for source, _, _ in rows) == sorted(quality.suite_names())
    assert all(success for _, success, _ in rows), rows
    assert all(
        details.endswith(f"expectations passed (expectations/marts/{source}.json)") for source, _, details in rows
    )


def test_the_run_builds_data_docs_with_every_mart(bundled_run):
    index = bundled_run.data_docs
    assert index == bundled_run.warehouse_dir / "data_docs" / "index.html" and index.exists()
    html = index.read_text(encoding="utf-8")
    for name in quality.suite_names():
        # filed under the latest run on this warehouse (another test may run the pipeline on it again)
        assert f"validations/{name}/" in html, name
        assert (index.parent / "expectations" / f"{name}.html").exists(), name
    for contract in (
        "rtt_full_extract",
        "oap_monthly_statistics",
        "los_mh_mhs501_hospital_spells",
        "los_acute_apc_episodes",
    ):
        assert (index.parent / "expectations" / f"{contract}.html").exists(), contract


@pytest.mark.parametrize(
    ("table", "sql", "rule", "example"),
    [
        (
            "fct_rtt_provider_month",
            "update marts.fct_rtt_provider_month set incomplete_pathways_with_dta = incomplete_pathways + 1 "
            "where org_code = 'RCF' and treatment_function_code = 'ALL' and period_month = '2024-01-01'",
            "part_2a_within_part_2",
            "period_month=2024-01-01, org_code=RCF, treatment_function_code=ALL",
        ),
        (
            "fct_rtt_provider_month",
            "update marts.fct_rtt_provider_month set median_wait_weeks = median_wait_weeks * 7, "
            "p92_wait_weeks = least(p92_wait_weeks * 7, 105)",
            "median_wait_plausible",
            "observed",
        ),
        (
            "fct_rtt_provider_month",
            "update marts.fct_rtt_provider_month set over_78_weeks = over_65_weeks + 1 "
            "where org_code = 'RAE' and treatment_function_code = 'C_100' and period_month = '2023-06-01'",
            "long_waits_nested",
            "org_code=RAE, treatment_function_code=C_100",
        ),
        (
            "fct_los_provider_month",
            "update marts.fct_los_provider_month set discharges = 3 "
            "where org_code = 'RPG' and setting = 'mental_health' and period_month = '2024-01-01'",
            "disclosure_control",
            "period_month=2024-01-01, org_code=RPG, setting=mental_health",
        ),
        (
            "fct_collaborative_metric_month",
            "update marts.fct_collaborative_metric_month set value = value * 100 "
            "where metric_code = 'rtt_pct_within_18_weeks' and collaborative_code = 'WYAAT' and org_code = 'ALL'",
            "percent_range",
            "collaborative_code=WYAAT, org_code=ALL",
        ),
        (
            "fct_spc",
            "update fct_spc set lpl = mean + 1 where metric_code = 'rtt_incomplete_pathways' "
            "and collaborative_code = 'BCPC' and org_code = 'ALL' and membership_basis = 'as_was'",
            "limits_ordered",
            "collaborative_code=BCPC, org_code=ALL, metric_code=rtt_incomplete_pathways",
        ),
        (
            "fct_oap_provider_month",
            "update marts.fct_oap_provider_month set inappropriate_oap_bed_days = 3 "
            "where org_code = 'RGD' and period_month = '2024-01-01'",
            "published_counts_not_small",
            "period_month=2024-01-01, org_code=RGD",
        ),
        (
            "dim_source_freshness",
            "update marts.dim_source_freshness set latest_period = '2099-01-01' where source = 'rtt'",
            "period_in_range",
            "source=rtt",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and " " not in value and len(value) < 40 else None,
)
def test_a_broken_mart_fails_its_suite_naming_the_rule_and_rows(broken, table, sql, rule, example):
    schema_table = sql.split()[1]
    if "." not in schema_table:  # the benefits marts live in the marts schema too
        sql = sql.replace(f"update {schema_table}", f"update marts.{schema_table}", 1)
    validation = broken(table, sql)
    found = [
        problem
        for failure, problem in zip(validation.failures, validation.problems, strict=True)
        if failure.rule == rule
    ]
    assert found, validation.problems
    assert any(example in problem for problem in found), found
    severities = {failure.severity for failure in validation.failures if failure.rule == rule}
    if rule in WARNING_RULES:  # a usual range, or a figure passed through as published: recorded, not blocking
        assert severities == {"warn"} and set(found) <= set(validation.warnings)
        others = {failure.severity for failure in validation.failures if failure.rule != rule}
        assert validation.passed == ("error" not in others)  # the warning alone never blocks
    else:
        assert severities == {"error"} and not validation.passed and set(found) <= set(validation.errors)


#: The mart rules whose severity is warn (README "Severity policy"); every other mart rule blocks the publish.
WARNING_RULES = {
    "part_2a_within_part_2",
    "median_wait_plausible",
    "pct_within_18_weeks_plausible",
    "acute_los_plausible",
    "adult_acute_within_all",  # OAP: the file contract loads a sender's OAP02a above its OAP02 as a warning
    "computed_close_to_published",  # an extract may miss spells the national data has: shown, not blocking
}


def test_the_mart_warnings_are_exactly_the_usual_ranges_and_the_published_part_2a():
    found = {
        expectation["meta"]["rule"]
        for path in quality.MART_EXPECTATIONS_DIR.glob("*.json")
        for expectation in json.loads(path.read_text(encoding="utf-8"))["expectations"]
        if expectation["severity"] == "warning"
    }
    assert found == WARNING_RULES
    for path in quality.MART_EXPECTATIONS_DIR.glob("*.json"):
        for expectation in json.loads(path.read_text(encoding="utf-8"))["expectations"]:
            assert expectation["meta"].get("severity_reason"), (path.name, expectation["meta"]["rule"])


def test_a_mart_without_a_suite_fails(broken):
    validation = broken("fct_new_mart", "create table marts.fct_new_mart as select 1 as x")
    assert not validation.passed
    assert "add expectations/marts/fct_new_mart.json" in validation.problems[0]


# --------------------------------------------------------------------------------------------------------------
# A failing mart blocks the publish


@pytest.fixture(scope="module")
def blocked_run(tmp_path_factory):
    """A good run on one small RTT file, then a second month under a suite that the waits cannot pass."""
    root = tmp_path_factory.mktemp("blocked")
    sources, warehouse = root / "sources", root / "warehouse"
    write_rtt_file(sources / "rtt", date(2024, 4, 1), [rtt_row("RR8", "15F", "Part_2", "C_100", {0: 10, 60: 3})])
    first = run_pipeline(sources, warehouse)
    published = (warehouse / "serving.duckdb").read_bytes()

    suites = root / "suites"
    shutil.copytree(quality.MART_EXPECTATIONS_DIR, suites)
    path = suites / "fct_rtt_provider_month.json"
    suite = json.loads(path.read_text(encoding="utf-8"))
    suite["expectations"].append(
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "over_52_weeks", "max_value": 0},
            "meta": {"rule": "no_long_waits", "description": "Nobody waits over 52 weeks (a test rule)"},
        }
    )
    path.write_text(json.dumps(suite), encoding="utf-8")
    write_rtt_file(sources / "rtt", date(2024, 5, 1), [rtt_row("RR8", "15F", "Part_2", "C_100", {0: 12, 60: 4})])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quality, "MART_EXPECTATIONS_DIR", suites)
        second = run_pipeline(sources, warehouse)
    return first, published, second, warehouse


def test_a_failing_mart_stops_the_publish_and_says_why(blocked_run):
    first, published, second, warehouse = blocked_run
    assert first.exit_code == 0 and first.published
    assert not second.published and second.exit_code == 1
    assert second.failed_checks == ["marts/fct_rtt_provider_month:gx_suite"]
    [problem] = second.check_problems["marts/fct_rtt_provider_month:gx_suite"]
    assert problem.startswith("no_long_waits: Nobody waits over 52 weeks (a test rule): ")
    assert "org_code=RR8" in problem
    assert (warehouse / "serving.duckdb").read_bytes() == published  # the dashboards keep the last good data


def test_the_failure_is_recorded_and_documented(blocked_run):
    _, _, second, warehouse = blocked_run
    con = duckdb.connect(str(warehouse / "build.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "select mart, check_name, success from audit.mart_checks where run_id = ? and not success",
            [second.run_ids[-1]],
        ).fetchall()
    finally:
        con.close()
    assert sorted(rows) == [
        ("fct_rtt_provider_month", "mart_expectation:no_long_waits", False),
        ("fct_rtt_provider_month", "mart_suite", False),
    ]
    # the failing step built the Data Docs, since nothing after it would
    assert second.data_docs is not None and second.data_docs.exists()
    assert f"validations/fct_rtt_provider_month/{second.run_ids[-1]}/" in second.data_docs.read_text()


def test_a_distribution_over_no_rows_is_left_out_not_failed(broken):
    validation = broken("fct_los_provider_month", "delete from marts.fct_los_provider_month where setting = 'acute'")
    assert validation.passed, validation.problems
    evaluated = {result.expectation_config.meta["rule"] for result in validation.validation.results}
    assert "acute_los_plausible" not in evaluated and "disclosure_control" in evaluated


def test_a_mart_is_validated_again_only_when_what_its_suite_judges_changed(build_copy, tmp_path):
    """A clean pass is reused while the mart's rows, its suite and the month are those it judged (issue 14: suites
    run on the marts that changed); any change runs the suite again."""
    path = tmp_path / "build.duckdb"
    shutil.copy2(build_copy, path)
    con = duckdb.connect(str(path))
    try:
        table = "dim_collaborative"
        first = quality.validate_mart(con, table, today=date(2026, 12, 1))
        again = quality.validate_mart(con, table, today=date(2026, 12, 1))
        assert first.passed and again.passed and again.unchanged
        assert (again.rows, again.expectations) == (first.rows, first.expectations)
        # one cell changed (still valid): judged again, then reused again
        con.execute(f"update marts.{table} set collaborative_name = collaborative_name || ' ' where rowid = 0")
        changed = quality.validate_mart(con, table, today=date(2026, 12, 1))
        assert changed.passed and not changed.unchanged
        assert quality.validate_mart(con, table, today=date(2026, 12, 1)).unchanged
        # another month: the suites compare periods with it
        assert not quality.validate_mart(con, table, today=date(2027, 1, 1)).unchanged
        # a change that breaks the suite is never hidden by an earlier pass
        con.execute(f"update marts.{table} set icb_count = -1")
        assert not quality.validate_mart(con, table, today=date(2027, 1, 1)).passed
    finally:
        con.close()
