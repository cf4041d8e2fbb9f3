"""A monthly update (new files added, the pipeline run again on the same warehouse) must publish exactly what a
full build of the same files publishes: the month-incremental dbt models rebuild only what changed, never
differently. Small data: four months of samples, one of them with a revised RTT file."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.pipeline import run_pipeline
from orchestration.samples import generate_samples

#: Columns that say when or in which run something happened, not what the figures are.
VOLATILE_COLUMNS = {"run_id", "run_at", "loaded_at", "published_at", "checked_at", "rejected_at"}
#: Logs of the runs themselves: an update has been run one more time than a full build, and says so.
RUN_LOGS = {"fct_data_quality"}
#: What a month was built from (its file load, the successions mapping, the SQL and macros), not its figures.
WITHOUT_VERSIONS = frozenset({"source_version"})
LAST_MONTH = date(2026, 1, 1)


def _is_last_month(path: Path) -> bool:
    name = path.name
    tags = ("2026-01", "20260131", "January-2026", "_JanPerf_2026", "_JanProv_2026", "-CSV-jan26")
    return any(tag in name for tag in tags)


def _comparable(value):
    """Doubles to 10 significant digits: DuckDB's parallel sums and standard deviations of doubles may differ in
    the last bits from run to run, whichever way the run was made."""
    return float(f"{value:.10g}") if isinstance(value, float) else value


def _serving_tables(serving: Path, ignore: frozenset[str] = frozenset()) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(serving), read_only=True)
    try:
        tables = [row[0] for row in con.execute("select table_name from duckdb_tables() order by 1").fetchall()]
        out = {}
        for table in tables:
            if table.startswith("_") or table in RUN_LOGS:
                continue
            columns = [
                row[0]
                for row in con.execute(
                    "select column_name from duckdb_columns() where table_name = ? order by column_index", [table]
                ).fetchall()
                if row[0] not in VOLATILE_COLUMNS | ignore
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            rows = [
                tuple(_comparable(value) for value in row)
                for row in con.execute(f'select {select} from "{table}"').fetchall()
            ]
            out[table] = sorted(rows, key=repr)
    finally:
        con.close()
    return out


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("incremental") / "files"
    generate_samples(folder, first_month=date(2025, 10, 1), last_month=LAST_MONTH)
    return folder


@pytest.fixture(scope="module")
def full_build(sample_files: Path, tmp_path_factory) -> dict:
    """A full build of the four months into an empty warehouse, and what it published then: the update is compared
    with it, and the run with nothing new starts from it (which changes its warehouse, never these snapshots)."""
    warehouse = tmp_path_factory.mktemp("full") / "warehouse"
    full = run_pipeline(sample_files, warehouse)
    assert full.exit_code == 0, (full.rejected_files, full.failed_checks, full.failed_steps)
    assert LAST_MONTH in full.months_found
    return {
        "warehouse": warehouse,
        "tables": _serving_tables(warehouse / "serving.duckdb"),
        "figures": _serving_tables(warehouse / "serving.duckdb", WITHOUT_VERSIONS),
        "versions": _month_versions(warehouse / "build.duckdb"),
    }


def _link(files: Path, target: Path, *, include_last: bool) -> None:
    for path in sorted(files.rglob("*")):
        if path.is_file() and (include_last or not _is_last_month(path)):
            destination = target / path.relative_to(files)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if not destination.exists():
                os.link(path, destination)


def test_a_monthly_update_publishes_what_a_full_build_publishes(sample_files: Path, full_build: dict, tmp_path: Path):
    landing = tmp_path / "landing"
    _link(sample_files, landing, include_last=False)
    first = run_pipeline(landing, tmp_path / "incremental")
    assert first.exit_code == 0, (first.rejected_files, first.failed_checks, first.failed_steps)
    assert LAST_MONTH not in first.months_found

    _link(sample_files, landing, include_last=True)
    update = run_pipeline(landing, tmp_path / "incremental")
    assert update.exit_code == 0, (update.rejected_files, update.failed_checks, update.failed_steps)
    # the update ran only what the new month changes (orchestration/build_state.py), not the whole project
    assert "# what it builds: only what changed" in _dbt_log_header(tmp_path / "incremental")

    incremental_tables = _serving_tables(tmp_path / "incremental" / "serving.duckdb")
    full_tables = full_build["tables"]
    assert incremental_tables.keys() == full_tables.keys()
    assert any(row for row in full_tables["fct_rtt_provider_month"] if row[0] == LAST_MONTH)
    for table, rows in full_tables.items():
        assert incremental_tables[table] == rows, f"{table} differs between the monthly update and a full build"


def _dbt_log_header(warehouse: Path) -> str:
    return "".join((warehouse / "logs" / "dbt.log").read_text(encoding="utf-8").splitlines(keepends=True)[:3])


def _month_versions(build_db: Path) -> dict[date, str]:
    con = duckdb.connect(str(build_db), read_only=True)
    try:
        return dict(
            con.execute(
                "select distinct period_month, source_version from intermediate.int_rtt__provider_month_bands"
            ).fetchall()
        )
    finally:
        con.close()


def test_a_run_with_nothing_new_changes_nothing(sample_files: Path, full_build: dict, monkeypatch):
    warehouse = full_build["warehouse"]
    before, figures, versions = full_build["tables"], full_build["figures"], full_build["versions"]
    assert len(versions) == 4, versions  # four months, one version each
    again = run_pipeline(sample_files, warehouse)
    assert again.exit_code == 0
    assert again.published
    assert "# what it builds: nothing" in _dbt_log_header(warehouse)
    assert _serving_tables(warehouse / "serving.duckdb") == before
    assert _month_versions(warehouse / "build.duckdb") == versions

    # An edited shared macro (here: a different fingerprint of the macros folder) rebuilds every month, and a
    # rebuild from the same files publishes the same figures.
    import orchestration.dbt

    monkeypatch.setattr(orchestration.dbt, "macros_fingerprint", lambda: "an edited macro")
    rebuilt = run_pipeline(sample_files, warehouse)
    assert rebuilt.exit_code == 0
    after = _month_versions(warehouse / "build.duckdb")
    assert after.keys() == versions.keys()
    assert all(after[month] != versions[month] for month in versions), (versions, after)
    # the served version says what each month was built from, so it changes too; every figure stays the same
    assert _serving_tables(warehouse / "serving.duckdb", WITHOUT_VERSIONS) == figures


def test_the_macros_fingerprint_follows_every_macro_file(tmp_path: Path):
    from orchestration.dbt import DBT_PROJECT_DIR, macros_fingerprint

    assert macros_fingerprint() == macros_fingerprint(DBT_PROJECT_DIR / "macros")
    folder = tmp_path / "macros"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.sql").write_text("{% macro a() %}1{% endmacro %}")
    (folder / "nested" / "b.sql").write_text("{% macro b() %}2{% endmacro %}")
    first = macros_fingerprint(folder)
    (folder / "nested" / "b.sql").write_text("{% macro b() %}3{% endmacro %}")
    assert macros_fingerprint(folder) != first
    (folder / "nested" / "b.sql").write_text("{% macro b() %}2{% endmacro %}")
    assert macros_fingerprint(folder) == first
    (folder / "nested" / "b.sql").rename(folder / "b.sql")
    assert macros_fingerprint(folder) != first


def test_the_project_is_parsed_again_when_another_dbt_run_rewrote_its_partial_parse(tmp_path: Path):
    """The project's partial parse is the one a new warehouse reuses, valid only for a build's --vars and relative
    build database: a parse with other arguments (an older checkout) or a dbt run by hand or by sqlfluff in the
    project folder, which rewrites it for its own profile, makes the project's manifest stale."""
    import json
    import time
    from types import SimpleNamespace

    from orchestration.dbt import PARSE_ARGS, _manifest_is_stale

    target = tmp_path / "target"
    target.mkdir()
    project = SimpleNamespace(manifest_path=target / "manifest.json")
    (target / "manifest.json").write_text("{}")
    (target / "partial_parse.msgpack").write_bytes(b"parsed")
    assert _manifest_is_stale(project)  # no record of how it was parsed
    time.sleep(0.01)
    (target / "collab_parse_args.json").write_text(json.dumps(PARSE_ARGS))
    assert not _manifest_is_stale(project)
    (target / "collab_parse_args.json").write_text(json.dumps(["parse"]))
    assert _manifest_is_stale(project)  # parsed with other arguments than a build's
    (target / "collab_parse_args.json").write_text(json.dumps(PARSE_ARGS))
    assert not _manifest_is_stale(project)
    time.sleep(0.01)
    (target / "partial_parse.msgpack").write_bytes(b"parsed by someone else")
    assert _manifest_is_stale(project)
