"""Work proportional to the change (issue 14, item 3): which dbt nodes a build has to run.

A run that published leaves ``WAREHOUSE/dbt_state/``: dbt's manifest of the build it published and a record of what
that build read: a fingerprint of every dbt source, the settings a result depends on, and a token that is also
written into the build database. The next build runs only

- ``state:modified+``: models, tests, seeds (the reference data) and macros that changed since, and everything
  downstream of them (dbt's own comparison with the saved manifest, ``--state``);
- ``source:<name>+`` for each source whose fingerprint changed (a month loaded, replaced or revised; new audit
  records), and everything downstream;

and everything when there is no usable record: a new warehouse, a build database replaced or rebuilt since (its
token differs), another dbt version, another month (the marts' checks compare periods with the current month),
other ``COLLAB_*`` settings. dbt's tests run with the nodes they test (dbt's eager indirect selection), so a test
that reads a rebuilt model always runs.

A source's fingerprint: for a raw feed's schema, its ``file_loads`` register (every load id, its action and whether it
is current: the raw tables change only through a load, which the register records) and each table's row count;
for any other schema (the audit records), each table's row count and the sum of its rows' hashes. Both are cheap at
national scale: the registers have one row per file, the audit tables a few per check.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from pathlib import Path

import duckdb

from orchestration.nothing_new import settings as run_settings

STATE_DIR_NAME = "dbt_state"
RECORD_NAME = "build_state.json"
RECORD_VERSION = 1
TOKEN_TABLE = "audit.dbt_build_state"

#: set by the pipeline itself for dbt (where the build database and Spark's folder are, the folder dbt starts in),
#: not by the user
_NOT_SETTINGS = {"COLLAB_BUILD_DB", "COLLAB_SPARK_DIR", "COLLAB_DBT_WORKDIR"}


@dataclass(frozen=True)
class BuildPlan:
    """What the next dbt build runs: everything (``full``), the nodes ``select`` picks (dbt selectors), or nothing."""

    full: bool
    select: tuple[str, ...] = ()
    reason: str = ""
    changed_sources: tuple[str, ...] = ()

    @property
    def nothing(self) -> bool:
        return not self.full and not self.select

    def describe(self) -> str:
        if self.full:
            return f"everything ({self.reason})"
        if self.nothing:
            return "nothing: no model, seed, macro or source changed since the last published build"
        return f"only what changed and everything downstream: {' '.join(self.select)} ({self.reason})"


def state_dir(warehouse_dir: Path) -> Path:
    return Path(warehouse_dir) / STATE_DIR_NAME


def settings(now: datetime | None = None) -> dict[str, str]:
    """The settings a build's results depend on: a run's (:func:`orchestration.nothing_new.settings`: every
    ``COLLAB_*`` variable and the month) but the build database's path, which the pipeline sets for dbt, and
    dbt's versions."""
    found = {name: value for name, value in run_settings(now).items() if name not in _NOT_SETTINGS}
    found["dbt-core"] = installed_version("dbt-core")
    found["dbt-duckdb"] = installed_version("dbt-duckdb")
    return found


def _sources(manifest: dict) -> dict[str, dict[str, list[str]]]:
    """{source name: {schema: [tables]}} of the manifest's dbt sources."""
    found: dict[str, dict[str, list[str]]] = {}
    for node in manifest.get("sources", {}).values():
        tables = found.setdefault(node["source_name"], {}).setdefault(node["schema"], [])
        tables.append(node.get("identifier") or node["name"])
    return found


def _existing_tables(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for schema, table in con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = current_database()"
    ).fetchall():
        found.setdefault(schema, set()).add(table)
    return found


def source_fingerprints(con: duckdb.DuckDBPyConnection, manifest: dict) -> dict[str, str]:
    """{dbt source name: fingerprint of what the build would read from it} (see the module docstring)."""
    existing = _existing_tables(con)
    fingerprints = {}
    for source, schemas in sorted(_sources(manifest).items()):
        digest = hashlib.sha256()
        for schema, tables in sorted(schemas.items()):
            present = existing.get(schema, set())
            register = "file_loads" in present
            if register:
                (loads,) = con.execute(
                    f"select string_agg(load_id::varchar || action || is_current::varchar, ',' order by load_id) "
                    f'from "{schema}".file_loads'
                ).fetchone()
                digest.update(f"{schema}.file_loads={loads}\n".encode())
            for table in sorted(set(tables) | ({"file_loads"} if register else set())):
                if table not in present:
                    digest.update(f"{schema}.{table}=absent\n".encode())
                elif register:
                    (rows,) = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()
                    digest.update(f"{schema}.{table}={rows}\n".encode())
                else:
                    rows, hashes = con.execute(f'select count(*), sum(hash(t)) from "{schema}"."{table}" t').fetchone()
                    digest.update(f"{schema}.{table}={rows}:{hashes}\n".encode())
        fingerprints[source] = digest.hexdigest()
    return fingerprints


def _read_record(warehouse_dir: Path) -> dict | None:
    path = state_dir(warehouse_dir) / RECORD_NAME
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("version") != RECORD_VERSION or not (state_dir(warehouse_dir) / "manifest.json").is_file():
        return None
    return record


def _token_in(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        row = con.execute(f"select token from {TOKEN_TABLE}").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def plan_build(
    con: duckdb.DuckDBPyConnection, warehouse_dir: Path, manifest: dict, build_vars: dict | None = None
) -> BuildPlan:
    """What this build has to run, compared with the last published build's record (see the module docstring).
    ``build_vars`` are the ``--vars`` the build passes to dbt: other values rebuild everything."""
    record = _read_record(warehouse_dir)
    if record is None:
        return BuildPlan(full=True, reason="no record of a published build in this warehouse")
    if record.get("token") != _token_in(con):
        return BuildPlan(full=True, reason="the build database is not the one the last published build wrote")
    now_settings = {**settings(), **{f"var {name}": str(value) for name, value in (build_vars or {}).items()}}
    if record.get("settings") != now_settings:
        changed = sorted(
            name
            for name in set(now_settings) | set(record.get("settings", {}))
            if now_settings.get(name) != record.get("settings", {}).get(name)
        )
        return BuildPlan(full=True, reason=f"settings changed since the last published build: {', '.join(changed)}")
    saved = json.loads((state_dir(warehouse_dir) / "manifest.json").read_text(encoding="utf-8"))
    macros = _changed(saved, manifest, "macros")
    if macros:
        return BuildPlan(full=True, reason=f"macros changed: {', '.join(sorted(m.split('.')[-1] for m in macros))}")
    now = source_fingerprints(con, manifest)
    before = record.get("sources", {})
    sources = tuple(sorted(name for name in now if before.get(name) != now[name]))
    modified = _changed(saved, manifest, "nodes") | _changed(saved, manifest, "unit_tests")
    starts = set(modified) | {key for key, node in manifest["sources"].items() if node["source_name"] in sources}
    selected = _downstream(manifest, starts)
    buildable = {key for key in selected if key.split(".")[0] in BUILT_KINDS}
    if not buildable:
        return BuildPlan(full=False, reason="nothing changed")
    parts = []
    if sources:
        parts.append(f"new or changed data in {', '.join(sources)}")
    if modified:
        names = sorted(
            manifest.get("nodes", {}).get(k, manifest.get("unit_tests", {}).get(k, {})).get("name", k) for k in modified
        )
        parts.append(f"changed since the last build: {', '.join(names[:8])}{' …' if len(names) > 8 else ''}")
    return BuildPlan(
        full=False,
        select=tuple(sorted(buildable, key=topological_index(manifest).__getitem__)),
        reason="; ".join(parts),
        changed_sources=sources,
    )


#: The kinds of dbt node a build runs (sources and exposures are not run).
BUILT_KINDS = ("model", "seed", "snapshot", "test", "unit_test")


def _signature(node: dict) -> str:
    """What makes a node's result: its file (dbt's checksum), its SQL, its config, the nodes it reads, its columns'
    tests and docs; not the macros dbt adds to ``depends_on`` when it compiles (a macro change rebuilds all)."""
    return json.dumps(
        {
            "checksum": node.get("checksum"),
            "sql": node.get("raw_code") if "raw_code" in node else node.get("macro_sql"),
            "config": node.get("config"),
            "nodes": (node.get("depends_on") or {}).get("nodes"),
            "columns": node.get("columns"),
            "given": node.get("given"),
            "expect": node.get("expect"),
            "test_metadata": node.get("test_metadata"),
        },
        sort_keys=True,
        default=str,
    )


def _changed(saved: dict, manifest: dict, kind: str) -> set[str]:
    """Unique ids of the ``kind`` entries of ``manifest`` that are new or differ from ``saved``'s; for macros only
    the project's own (dbt's and adapters' change with their versions, which the settings hold)."""
    before, now = saved.get(kind, {}), manifest.get(kind, {})
    project = manifest.get("metadata", {}).get("project_name")
    changed = set()
    for key, node in now.items():
        if kind == "macros" and node.get("package_name") != project:
            continue
        if key not in before or _signature(before[key]) != _signature(node):
            changed.add(key)
    if kind == "macros":
        changed |= {key for key, node in before.items() if node.get("package_name") == project and key not in now}
    return changed


def _downstream(manifest: dict, starts: set[str]) -> set[str]:
    children = manifest.get("child_map", {})
    seen, todo = set(), list(starts)
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        todo.extend(children.get(key, ()))
    return seen


def topological_index(manifest: dict) -> dict[str, int]:
    """Every node's position in an order where each node comes after the nodes it reads."""
    parents = manifest.get("parent_map", {})
    order: dict[str, int] = {}

    def visit(key: str, path: frozenset = frozenset()) -> None:
        if key in order or key in path:
            return
        for parent in parents.get(key, ()):
            visit(parent, path | {key})
        order[key] = len(order)

    for key in sorted(set(parents) | {k for v in parents.values() for k in v}):
        visit(key)
    return order


def selectors(manifest: dict, unique_ids: tuple[str, ...]) -> list[str]:
    """dbt selectors naming exactly these nodes (``fqn:`` of models, seeds and tests; unit tests by name)."""
    found = []
    for key in unique_ids:
        node = manifest.get("nodes", {}).get(key) or manifest.get("unit_tests", {}).get(key)
        if node is None:
            continue
        found.append("fqn:" + ".".join(node["fqn"]))
    return found


PENDING_MANIFEST = "manifest.pending.json"
PENDING_VARS = "vars.pending.json"


def forget_token(con: duckdb.DuckDBPyConnection) -> None:
    """Withdraw the build database's token: until a build publishes again, the next build runs everything."""
    con.execute(f"drop table if exists {TOKEN_TABLE}")


def keep_manifest(warehouse_dir: Path, manifest_path: Path, build_vars: dict | None = None) -> None:
    """Keep the manifest and ``--vars`` of a dbt build that succeeded until the run publishes
    (:func:`remember_build`)."""
    folder = state_dir(warehouse_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PENDING_VARS).write_text(json.dumps(build_vars or {}), encoding="utf-8")
    shutil.copyfile(manifest_path, folder / (PENDING_MANIFEST + ".new"))
    os.replace(folder / (PENDING_MANIFEST + ".new"), folder / PENDING_MANIFEST)


def remember_build(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> None:
    """Record the build just published: its manifest (the one :func:`keep_manifest` kept this run, else the last
    published one: dbt had nothing to do), its sources' fingerprints, the settings, and a new token."""
    folder = state_dir(warehouse_dir)
    pending = folder / PENDING_MANIFEST
    if pending.is_file():
        os.replace(pending, folder / "manifest.json")
        os.replace(folder / PENDING_VARS, folder / "vars.json")
    try:
        build_vars = json.loads((folder / "vars.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    token = uuid.uuid4().hex
    con.execute("create schema if not exists audit")
    con.execute(
        f"create or replace table {TOKEN_TABLE} as select ? as token, ? as built_at", [token, datetime.now(UTC)]
    )
    record = {
        "version": RECORD_VERSION,
        "token": token,
        "settings": {**settings(), **{f"var {name}": str(value) for name, value in build_vars.items()}},
        "sources": source_fingerprints(con, manifest),
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    (folder / (RECORD_NAME + ".new")).write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(folder / (RECORD_NAME + ".new"), folder / RECORD_NAME)
