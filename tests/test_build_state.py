"""Work proportional to the change (orchestration/build_state.py): which dbt nodes a build runs, worked out on the
project's real manifest and a real build database (empty raw tables, as after a first run's ingest)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import duckdb
import pytest

from orchestration import audit
from orchestration.build_state import forget_token, keep_manifest, plan_build, remember_build, selectors
from orchestration.dbt import dbt_project
from orchestration.sources.feeds import FEEDS

VARS = {"macros_fingerprint": "f1"}


@pytest.fixture()
def manifest() -> dict:
    return json.loads(Path(dbt_project.manifest_path).read_text(encoding="utf-8"))


@pytest.fixture()
def warehouse(tmp_path: Path, manifest: dict):
    """A build database with every raw table, and the record of a published build made from it."""
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    for feed in FEEDS:
        feed.ensure_raw_tables(con)
    audit.ensure_audit_schema(con)
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    keep_manifest(tmp_path, manifest_path, VARS)
    remember_build(con, tmp_path)
    yield con, tmp_path
    con.close()


def _names(manifest: dict, unique_ids) -> set[str]:
    nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    return {nodes[key]["name"] for key in unique_ids}


def test_a_new_warehouse_builds_everything(tmp_path: Path, manifest: dict):
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    plan = plan_build(con, tmp_path, manifest, VARS)
    assert plan.full and "no record" in plan.reason


def test_nothing_changed_builds_nothing(warehouse, manifest: dict):
    con, folder = warehouse
    plan = plan_build(con, folder, manifest, VARS)
    assert plan.nothing, plan


def test_a_new_rtt_month_builds_what_reads_rtt_and_nothing_else(warehouse, manifest: dict):
    con, folder = warehouse
    con.execute(
        "insert into raw_rtt.file_loads values (1, 'x.csv', date '2026-01-01', 'abc', 10, 5, false, 'loaded', true, "
        "now())"
    )
    plan = plan_build(con, folder, manifest, VARS)
    assert not plan.full and plan.changed_sources == ("rtt",)
    names = _names(manifest, plan.select)
    assert {"stg_rtt__full_extract", "stg_rtt__file_loads", "fct_rtt_provider_month"} <= names
    assert "fct_collaborative_metric_month" in names  # downstream of RTT
    assert "stg_oap__monthly_statistics" not in names and "stg_reference__organisations" not in names
    assert "organisations" not in names  # the seed is upstream, not downstream
    # each rebuilt model's tests run with it
    assert "unique_stg_rtt__file_loads_load_id" in names
    # the selection is in dependency order, and dbt can select exactly these nodes
    position = {key: index for index, key in enumerate(plan.select)}
    for key in plan.select:
        for parent in manifest["parent_map"].get(key, ()):
            assert parent not in position or position[parent] < position[key], (parent, key)
    assert len(selectors(manifest, plan.select)) == len(plan.select)


def test_an_edited_model_builds_itself_and_what_is_downstream(warehouse, manifest: dict):
    con, folder = warehouse
    edited = copy.deepcopy(manifest)
    key = next(k for k, n in edited["nodes"].items() if n["name"] == "int_oap__provider_month")
    edited["nodes"][key]["checksum"] = {"name": "sha256", "checksum": "edited"}
    plan = plan_build(con, folder, edited, VARS)
    names = _names(edited, plan.select)
    assert "int_oap__provider_month" in names and "fct_oap_provider_month" in names
    assert "stg_oap__monthly_statistics" not in names and "stg_rtt__full_extract" not in names
    assert plan.changed_sources == ()


def test_an_edited_seed_builds_what_reads_it(warehouse, manifest: dict):
    con, folder = warehouse
    edited = copy.deepcopy(manifest)
    key = next(k for k, n in edited["nodes"].items() if n["resource_type"] == "seed" and n["name"] == "memberships")
    edited["nodes"][key]["checksum"] = {"name": "sha256", "checksum": "edited"}
    names = _names(edited, plan_build(con, folder, edited, VARS).select)
    assert {"memberships", "stg_reference__memberships", "bridge_collaborative_membership"} <= names
    assert "stg_rtt__full_extract" not in names


@pytest.mark.parametrize("change", ["macro", "vars", "setting", "token"])
def test_what_could_change_any_table_builds_everything(warehouse, manifest: dict, monkeypatch, change: str):
    con, folder = warehouse
    edited, build_vars = copy.deepcopy(manifest), VARS
    if change == "macro":
        project = edited["metadata"]["project_name"]
        key = next(k for k, m in edited["macros"].items() if m["package_name"] == project)
        edited["macros"][key]["macro_sql"] += "\n-- edited"
    elif change == "vars":
        build_vars = {"macros_fingerprint": "f2"}
    elif change == "setting":
        monkeypatch.setenv("COLLAB_SOMETHING", "else")
    else:  # a build started and did not publish
        forget_token(con)
    plan = plan_build(con, folder, edited, build_vars)
    assert plan.full, plan
