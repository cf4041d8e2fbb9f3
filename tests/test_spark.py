"""The same warehouse on Apache Spark (issue 15), proven figure for figure against DuckDB in every test run.

The bundled samples are built on Spark (a local PySpark session in dbt's process: `make test` installs Java 17
and the spark extra) in two steps, as a programme office's warehouse meets them: first every file but NHS
England's revision of November 2025, then the revision arrives. The serving database the Spark warehouse then
publishes must be the DuckDB build's of the same files (the session's `bundled_run`) figure for figure, dbt's data
and unit tests must have run and passed on Spark, and the revision must have rebuilt that month alone: the other
months' Parquet files of each month-partitioned model are the very files the first build wrote.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.compare import compare_databases
from orchestration.lake import export_raw, spark_table_folder
from orchestration.pipeline import run_pipeline

#: In `make test`, which installs Java 17 and the spark extra first; `make test-spark` runs these alone.
spark = pytest.mark.spark

REVISED = "20251130-RTT-November-2025-full-extract-revised.zip"
REVISED_MONTH = date(2025, 11, 1)
#: The month-partitioned models (incremental_months.sql): a revised month replaces that month's partition only.
MONTH_PARTITIONED = (
    ("intermediate", "int_rtt__provider_month_bands"),
    ("intermediate", "int_rtt__waiting_list_by_provider_commissioner"),
    ("marts", "fct_rtt_provider_month"),
)
#: When or in which run something happened (each warehouse has its own runs), not what the figures are.
#: Logs of the runs themselves: the Spark warehouse ran twice (before and after the revision), DuckDB's once.
RUN_LOGS = ("main.fct_data_quality",)
VOLATILE_COLUMNS = ("run_id", "run_at", "loaded_at", "published_at", "checked_at", "rejected_at")
#: A month's build key (macros/incremental_months.sql): a hash over the id of the load its figures came from, and
#: load ids count a warehouse's own loads. The Spark warehouse met the revision a run later than DuckDB's did, so
#: the load ids of the revision (and of any file DuckDB's run loaded after it) differ, and so do those months' keys;
#: the figures built from them must not.
LOAD_KEYS = ("source_version",)


def _link_samples(samples: Path, landing: Path, *, with_revision: bool) -> None:
    for path in sorted(samples.rglob("*")):
        if not path.is_file() or (path.name == REVISED and not with_revision):
            continue
        destination = landing / path.relative_to(samples)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if not destination.exists():
            os.link(path, destination)


def _partition_files(spark_dir: Path) -> dict[tuple[str, str], dict[str, tuple[int, int]]]:
    """{(schema, table): {month folder: (inode, mtime_ns)}} of each month-partitioned model Spark holds."""
    found = {}
    for schema, table in MONTH_PARTITIONED:
        folder = spark_table_folder(spark_dir / "tables", schema, table)
        months = {}
        for path in folder.glob("period_month=*/*.parquet"):
            stat = path.stat()
            months.setdefault(path.parent.name, set()).add((path.name, stat.st_ino, stat.st_mtime_ns))
        assert months, f"Spark wrote no month partition of {schema}.{table} under {folder}"
        found[(schema, table)] = {month: frozenset(files) for month, files in months.items()}
    return found


@pytest.fixture(scope="module")
def spark_warehouse(bundled_samples: Path, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("spark")
    landing, warehouse = root / "landing", root / "warehouse"
    _link_samples(bundled_samples, landing, with_revision=False)
    first = run_pipeline(landing, warehouse, engine="spark")
    assert first.exit_code == 0, (first.rejected_files, first.failed_checks, first.failed_steps)
    first_results = json.loads((warehouse / "dbt_target" / "run_results.json").read_text(encoding="utf-8"))
    first_manifest = json.loads((warehouse / "dbt_target" / "manifest.json").read_text(encoding="utf-8"))
    before = _partition_files(warehouse / "spark")

    _link_samples(bundled_samples, landing, with_revision=True)
    update = run_pipeline(landing, warehouse, engine="spark")
    assert update.exit_code == 0, (update.rejected_files, update.failed_checks, update.failed_steps)
    return {
        "warehouse": warehouse,
        "first_results": first_results,
        "first_manifest": first_manifest,
        "before": before,
        "after": _partition_files(warehouse / "spark"),
        "dbt_log": (warehouse / "logs" / "dbt.log").read_text(encoding="utf-8"),
    }


@spark
def test_spark_publishes_what_duckdb_publishes_figure_for_figure(spark_warehouse, bundled_run):
    comparison = compare_databases(
        bundled_run.serving_db,
        spark_warehouse["warehouse"] / "serving.duckdb",
        ignore_columns=VOLATILE_COLUMNS + LOAD_KEYS,
        ignore_tables=RUN_LOGS,
    )
    assert comparison.equal, comparison.describe()
    assert len(comparison.tables) >= 20 and comparison.rows > 100_000, comparison.describe()
    print(f"DuckDB against Spark: {comparison.describe()}")


@spark
def test_dbt_data_and_unit_tests_ran_and_passed_on_spark(spark_warehouse):
    manifest, results = spark_warehouse["first_manifest"], spark_warehouse["first_results"]
    assert manifest["metadata"]["adapter_type"] == "spark"
    statuses: dict[str, dict[str, int]] = {}
    for result in results["results"]:
        kind = result["unique_id"].split(".", 1)[0]
        statuses.setdefault(kind, {}).setdefault(result["status"], 0)
        statuses[kind][result["status"]] += 1
    assert set(statuses["test"]) == {"pass"}, statuses
    assert set(statuses["unit_test"]) == {"pass"}, statuses
    assert set(statuses["model"]) == {"success"} and set(statuses["seed"]) == {"success"}, statuses
    # every data and unit test the project declares ran on Spark
    declared = {key.split(".", 1)[0] for key in [*manifest["nodes"], *manifest.get("unit_tests", {})]}
    assert {"test", "unit_test"} <= declared
    assert statuses["test"]["pass"] == sum(1 for key in manifest["nodes"] if key.startswith("test."))
    assert statuses["unit_test"]["pass"] == len(manifest["unit_tests"])


@spark
def test_a_revised_month_rebuilds_that_month_alone_on_spark(spark_warehouse):
    plan = next(line for line in spark_warehouse["dbt_log"].splitlines() if line.startswith("# what it builds"))
    assert plan.startswith("# what it builds: only what changed"), plan
    # the revision is new data in RTT's raw layer (and the audit records of its load): no model reads as changed
    assert plan.endswith("(new or changed data in audit, rtt)"), plan
    revised = f"period_month={REVISED_MONTH.isoformat()}"
    for table, months in spark_warehouse["before"].items():
        after = spark_warehouse["after"][table]
        assert after.keys() == months.keys(), table
        rewritten = sorted(month for month in months if after[month] != months[month])
        assert rewritten == [revised], f"{table}: the update rewrote {rewritten}, not only {revised}"


def test_the_lake_rewrites_only_the_months_that_changed(tmp_path):
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    con.execute("create schema raw_x")
    con.execute(
        "create table raw_x.rows as select cast(date '2025-01-01' + to_months(i % 3) as date) as period_month, "
        "i as figure, "
        "'St George''s' as name from range(30) as t(i)"
    )
    con.execute("create table raw_x.empty (period_month date, figure bigint)")
    con.execute("create table raw_x.flat as select 1 as one")
    lake = tmp_path / "lake"
    tables = [("raw_x", "rows"), ("raw_x", "empty"), ("raw_x", "flat"), ("raw_x", "never_loaded")]
    first = export_raw(con, lake, tables)
    assert first.tables == 3 and len(first.written) == 5, first  # three months, the flat table, the empty table
    assert (lake / "raw_x" / "empty" / "empty.parquet").is_file()
    assert export_raw(con, lake, tables).written == []
    con.execute("update raw_x.rows set figure = figure + 1 where period_month = date '2025-02-01'")
    assert export_raw(con, lake, tables).written == ["raw_x.rows/2025-02-01"]
    con.execute("delete from raw_x.rows where period_month = date '2025-03-01'")
    removed = export_raw(con, lake, tables)
    assert removed.removed == ["raw_x.rows/2025-03-01"] and removed.written == []
    assert not (lake / "raw_x" / "rows" / "period_month=2025-03-01").exists()
    back = con.execute(
        f"select period_month, sum(figure), min(name) from read_parquet('{lake}/raw_x/rows/*/*.parquet', "
        "hive_partitioning = true, hive_types = {'period_month': 'date'}) group by all order by 1"
    ).fetchall()
    expected = con.execute("select period_month, sum(figure), min(name) from raw_x.rows group by all order by 1")
    assert back == expected.fetchall()
