"""The dbt project as Dagster assets: every model, seed and test, with dbt sources keyed to the raw assets
(source ``rtt.full_extract`` ↔ asset ``["rtt", "full_extract"]``) so lineage runs from file to mart."""

import contextlib
import hashlib
import io
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

import duckdb
from dagster import AssetExecutionContext, Failure, MetadataValue, Output
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets
from packaging.version import Version

from orchestration import progress
from orchestration.build_state import BuildPlan, forget_token, keep_manifest, plan_build, selectors, topological_index
from orchestration.contracts import warm_up_in_background
from orchestration.lake import export_raw, import_tables, prepare_spark_dir, source_tables
from orchestration.resources import BUILD_DB_NAME, DBT_PROJECT_DIR, WarehouseResource

# dbt is installed beside this Python (the project's .venv); make it findable even when .venv is not activated.
_VENV_BIN = str(Path(sys.executable).parent)
if _VENV_BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([_VENV_BIN, os.environ.get("PATH", "")])


class WarehouseDbtResource(DbtCliResource):
    """dagster-dbt's CLI resource without two start-up costs that a monthly update pays on every build and that
    buy this project nothing (together about 4.5 s of a 40 s update, SPEC §12):

    - dbt's version comes from the installed dbt-core package instead of a ``dbt --version`` subprocess; the dbt
      it runs is the one installed beside this Python (see ``_VENV_BIN``), so the two cannot differ;
    - no in-process dbt adapter is opened: dagster-dbt uses it only for ``fetch_row_counts()`` and
      ``fetch_column_metadata()``, which these assets do not call (without an adapter dagster-dbt skips them).
    """

    @cached_property
    def _cli_version(self) -> Version:
        return Version(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - the signature dagster-dbt calls
        return None


def macros_fingerprint(folder: Path = DBT_PROJECT_DIR / "macros") -> str:
    """SHA-256 of every macro file (name and bytes). The month-incremental models fold it into the version of each
    month they hold (macros/incremental_months.sql), so editing a shared macro rebuilds every month, as editing
    the model itself does; dbt's own checksum of a model does not cover the macros it calls."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*.sql")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def dbt_build_vars(on_spark: bool = False) -> dict:
    """The ``--vars`` of every build: the macros' fingerprint and, on Spark, the engine."""
    return {"macros_fingerprint": macros_fingerprint(), **({"engine": "spark"} if on_spark else {})}


#: dbt runs in the folder of the warehouse it builds (this script is the resource's ``dbt_executable``) and the
#: profile names the build database relative to it. dbt's partial parse is valid only for the connection details
#: and ``--vars`` it was parsed with: with the same relative path and the same vars for every warehouse, the
#: project's own parse (``target/partial_parse.msgpack``, which dagster-dbt copies into a new warehouse's target
#: folder) is reused by a new warehouse's first build instead of dbt parsing the whole project again (3.5 s).
DBT_IN_WAREHOUSE = Path(__file__).with_name("dbt_in_warehouse")
WORKDIR_SETTING = "COLLAB_DBT_WORKDIR"

#: How the project's manifest and partial parse are made: as a DuckDB build would parse it.
PARSE_ARGS = ["parse", "--quiet", "--vars", json.dumps(dbt_build_vars())]
_PARSE_ARGS_STAMP = "collab_parse_args.json"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, prepare_project_cli_args=PARSE_ARGS)


def _manifest_is_stale(project: DbtProject) -> bool:
    """True when a model, macro, seed or setting changed after the manifest was written, or it was parsed with
    other arguments than a build's (an older checkout's parse), or another dbt run in the project folder (``dbt``
    by hand, sqlfluff's dbt templater) has since rewritten its partial parse for its own profile and vars: a new
    warehouse's build would reject that one and parse the whole project again."""
    manifest = project.manifest_path
    stamp = manifest.with_name(_PARSE_ARGS_STAMP)
    partial_parse = manifest.with_name("partial_parse.msgpack")
    if not manifest.exists() or not stamp.exists() or not partial_parse.exists():
        return True
    if stamp.read_text(encoding="utf-8") != json.dumps(PARSE_ARGS):
        return True
    if partial_parse.stat().st_mtime_ns > stamp.stat().st_mtime_ns:
        return True
    built = manifest.stat().st_mtime
    watched = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        watched.extend((DBT_PROJECT_DIR / folder).rglob("*"))
    watched.extend((DBT_PROJECT_DIR.parent / "seeds" / "reference").glob("*.csv"))
    return any(path.is_file() and path.stat().st_mtime > built for path in watched)


def prepare_manifest(project: DbtProject = dbt_project) -> Path:
    """Parse the project when its manifest is missing or older than its sources (``dbt parse``, a few seconds)."""
    if _manifest_is_stale(project):
        # the profile's build database as a build names it (relative to the warehouse), so that the partial parse
        # this leaves is one a build accepts; dbt parse does not open the database
        previous = os.environ.get("COLLAB_BUILD_DB")
        os.environ["COLLAB_BUILD_DB"] = BUILD_DB_NAME
        try:
            project.preparer.prepare(project)
        finally:
            if previous is None:
                os.environ.pop("COLLAB_BUILD_DB", None)
            else:
                os.environ["COLLAB_BUILD_DB"] = previous
        project.manifest_path.with_name(_PARSE_ARGS_STAMP).write_text(json.dumps(PARSE_ARGS), encoding="utf-8")
    return project.manifest_path


prepare_manifest()


#: dbt's global flags: no colour codes (its output goes to a log file, not a terminal) and a readable text debug
#: log in the target folder (dagster-dbt asks dbt for JSON on stdout, which would otherwise set the file's format).
DBT_GLOBAL_FLAGS = ["--no-use-colors", "--log-format-file", "debug"]

#: dbt's unit tests (``unit_tests:`` in the models' YAML: a model's logic on fixed rows) check the project's code, not
#: a month's data, so a user's build leaves them out, as dbt Labs recommends for production builds; the test suite
#: (``tests/conftest.py``) and CI set this to ``1`` so that every build they make runs and must pass them.
UNIT_TESTS_SETTING = "COLLAB_DBT_UNIT_TESTS"


def unit_tests_wanted() -> bool:
    return os.environ.get(UNIT_TESTS_SETTING, "").strip().lower() in ("1", "true", "yes")


#: At most this many of dbt's error lines reach the run's summary; the log has them all.
MAX_PROBLEM_LINES = 20


class _Tee(io.TextIOBase):
    """Writes to the dbt log file and, when nobody shows the run's progress (``dagster dev``: its compute logs
    capture stdout), to the console as before."""

    def __init__(self, log_file, echo) -> None:
        self._log_file, self._echo = log_file, echo

    def write(self, text: str) -> int:
        self._log_file.write(text)
        if self._echo is not None:
            self._echo.write(text)
        return len(text)

    def flush(self) -> None:
        self._log_file.flush()
        if self._echo is not None:
            self._echo.flush()


@dataclass
class DbtBuildWatcher:
    """Follows dbt's structured events (``--log-format json`` on stdout): advances the phase by node, keeps the
    final counts (``Done. PASS=… ERROR=…``) and the lines that say what failed."""

    phase: progress.Phase
    problems: list[str] = field(default_factory=list)
    stats: str = ""

    def see(self, raw_event: dict) -> None:
        info, data = raw_event.get("info", {}), raw_event.get("data", {})
        name, message = info.get("name", ""), str(info.get("msg", ""))
        if "index" in data and "total" in data:
            if self.phase.total is None:
                self.phase.set_total(int(data["total"]))
            if name == "LogStartLine":
                self.phase.busy_with(str(data.get("description") or message))
            else:
                self.phase.advance()
        elif name == "StatsLine":
            self.stats = message.removeprefix("Done. ").strip()
        if info.get("level") == "error" and "index" not in data:  # per-node result lines repeat what follows
            lines = [line.strip() for line in message.splitlines() if line.strip()]
            self.problems.extend(("  " if name == "RunResultError" else "") + line for line in lines[:3])


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project)
def warehouse_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Seeds, staging, attribution and marts, built and tested in the build database (dbt tests block publish).

    dbt's own output (every node and its status) goes to ``WAREHOUSE/logs/dbt.log``, not the console; a failed
    build fails the step with dbt's error lines and the log's path."""
    # dbt reads the build database's path from its profile's env_var, relative to the folder it is started in (see
    # DBT_IN_WAREHOUSE); the subprocess inherits os.environ.
    os.environ[WORKDIR_SETTING] = str(warehouse.build_db_path.parent)
    os.environ["COLLAB_BUILD_DB"] = BUILD_DB_NAME
    on_spark = warehouse.engine == "spark"
    # the engine is one of the build's settings: a warehouse built on one engine is rebuilt whole on the other
    build_vars = dbt_build_vars(on_spark)
    build = ["build", "--vars", json.dumps(build_vars)]
    if not unit_tests_wanted():
        build += ["--exclude-resource-type", "unit_test"]
    if on_spark:
        os.environ["COLLAB_SPARK_DIR"] = str(prepare_spark_dir(warehouse.spark_path))
        build += ["--target", "spark"]
    log_path = warehouse.dbt_log_path
    log_path.parent.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(Path(dbt_project.manifest_path).read_text(encoding="utf-8"))
    plan = _plan(warehouse, manifest, build_vars)
    context.log.info(f"dbt build: {plan.describe()}")
    if not plan.full:
        # Downstream steps wait for every dbt output, and Dagster wants a step's outputs in the order of their
        # dependencies: the models carried over come first (none is downstream of a rebuilt one: a rebuild takes
        # everything downstream with it).
        yield from _carried_over(context, manifest, plan)
    if plan.nothing:
        with progress.phase("dbt build") as phase:
            log_path.write_text(
                f"# dbt build of Dagster run {context.run_id}, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n"
                f"# what it builds: {plan.describe()}\n# dbt was not started\n",
                encoding="utf-8",
            )
            phase.finish("nothing to build: no model, seed, macro or source changed since the last published build")
        return
    if on_spark:
        _export_lake(warehouse, manifest)
    # the mart checks, benefits marts and Data Docs that follow need GX and statsmodels: import them while this
    # process waits on dbt
    warm_up_in_background("orchestration.analytics.marts")
    with (
        progress.phase(f"dbt build{' on Spark' if on_spark else ''}: {_phase_title(plan)}") as phase,
        log_path.open("w", encoding="utf-8") as log_file,
    ):
        watcher = DbtBuildWatcher(phase)
        log_file.write(f"# dbt build of Dagster run {context.run_id}, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n")
        log_file.write(f"# what it builds: {plan.describe()}\n")
        if not unit_tests_wanted():
            log_file.write(f"# dbt's unit tests are left out of a user's build ({UNIT_TESTS_SETTING}=1 runs them)\n")
        if plan.full:
            invocation = dbt.cli(build, context=context, target_path=warehouse.dbt_target_path, raise_on_error=False)
        else:
            # dagster-dbt would add its own selection of every node (``fqn:*``) to ours: give it no context, and
            # turn the events into this step's outputs below with the context.
            selected = [*build, "--select", " ".join(selectors(manifest, plan.select))]
            invocation = dbt.cli(
                selected,
                manifest=dbt_project.manifest_path,
                target_path=warehouse.dbt_target_path,
                raise_on_error=False,
            )
        # dagster-dbt writes each event's message to sys.stdout as it streams: send them to the log instead
        with contextlib.redirect_stdout(_Tee(log_file, None if progress.listened() else sys.stdout)):
            for event in invocation.stream_raw_events():
                watcher.see(event.raw_event)
                yield from event.to_default_asset_events(
                    manifest=invocation.manifest,
                    dagster_dbt_translator=invocation.dagster_dbt_translator,
                    context=context,
                    target_path=invocation.target_path,
                    project=invocation.project,
                )
        succeeded = invocation.is_successful()
        phase.finish(watcher.stats or ("done" if succeeded else "failed"), failed=not succeeded)
    if succeeded and on_spark:
        _import_from_spark(warehouse, warehouse.dbt_target_path)
    if succeeded:
        # the next build's plan compares the project's manifest with the one kept here: on Spark, the build's own
        # manifest has the spark target's configs (staging as tables, insert_overwrite), which would make every
        # staging and month-partitioned model look changed at each run; keep the manifest the plan was made from
        kept = Path(dbt_project.manifest_path) if on_spark else warehouse.dbt_target_path / "manifest.json"
        keep_manifest(warehouse.warehouse_path, kept, build_vars)
    if not succeeded:
        problems = watcher.problems or [f"dbt exited with code {invocation.process.returncode}"]
        if not on_spark:
            problems = _with_failing_rows(problems, warehouse)
        raise Failure(
            description=f"dbt build failed; dbt's output: {log_path}",
            metadata={
                "dbt_log": MetadataValue.path(str(log_path)),
                "dbt_debug_log": MetadataValue.path(str(warehouse.dbt_target_path / "dbt.log")),
                "problems": MetadataValue.json(problems[:MAX_PROBLEM_LINES]),
            },
        )


#: A failed data test's first rows shown under its failure line (dbt prints only how many it returned).
FAILING_ROWS_SHOWN = 3


def _failing_rows(warehouse: WarehouseResource) -> dict[str, list[str]]:
    """{failed data test's name: its first rows, as ``column value`` text}: what it found (the columns with nulls
    and how many, the duplicated keys, the values outside the accepted ones), from its compiled SQL run again in
    the build database that dbt has just left."""
    results_path = warehouse.dbt_target_path / "run_results.json"
    if not results_path.exists():
        return {}
    results = json.loads(results_path.read_text(encoding="utf-8")).get("results", [])
    failed = [
        result
        for result in results
        if result.get("status") == "fail" and result.get("compiled_code") and result["unique_id"].startswith("test.")
    ]
    if not failed:
        return {}
    shown: dict[str, list[str]] = {}
    con = duckdb.connect(str(warehouse.build_db_path), read_only=True)
    try:
        for result in failed:
            name = result["unique_id"].split(".")[2]
            try:
                cursor = con.execute(f"select * from ({result['compiled_code']}) limit {FAILING_ROWS_SHOWN}")
                columns = [d[0] for d in cursor.description]
                rows = cursor.fetchall()
            except duckdb.Error as error:
                shown[name] = [f"(its rows could not be read again: {str(error).splitlines()[0]})"]
                continue
            lines = [", ".join(f"{column} {value}" for column, value in zip(columns, row, strict=True)) for row in rows]
            more = (result.get("failures") or 0) - len(rows)
            if more > 0:
                lines.append(f"… and {more:,} more")
            shown[name] = lines
    finally:
        con.close()
    return shown


def _with_failing_rows(problems: list[str], warehouse: WarehouseResource) -> list[str]:
    """dbt's error lines with each failed data test's first rows under its ``Failure in test <name>`` line."""
    try:
        rows = _failing_rows(warehouse)
    except (OSError, ValueError, duckdb.Error):
        return problems  # what dbt said stands on its own
    out: list[str] = []
    for line in problems:
        out.append(line)
        for name, found in rows.items():
            if line.startswith(f"Failure in test {name} "):
                out.extend(f"  found: {text}" for text in found)
    return out


def _plan(warehouse: WarehouseResource, manifest: dict, build_vars: dict) -> BuildPlan:
    """What this build runs (orchestration/build_state.py); the build database's token of the last published build
    is withdrawn first, so that a build that fails or is killed is followed by a full one."""
    con = warehouse.connect_build()
    try:
        plan = plan_build(con, warehouse.warehouse_path, manifest, build_vars)
        if not plan.nothing:
            forget_token(con)
    finally:
        con.close()
    return plan


def _export_lake(warehouse: WarehouseResource, manifest: dict) -> None:
    """The raw layer as Parquet for Spark: only the months that changed are written (orchestration/lake.py)."""
    with progress.phase("Raw layer as Parquet for Spark") as phase:
        con = warehouse.connect_build()
        try:
            export = export_raw(con, warehouse.spark_path / "lake", source_tables(manifest))
        finally:
            con.close()
        phase.finish(export.describe())


def _import_from_spark(warehouse: WarehouseResource, target_path: Path) -> None:
    """Every seed and model dbt built on Spark in this build (staging included: tables there, see dbt_project.yml),
    copied into the build database, whose benefits marts, mart suites and publish then read them as they read
    DuckDB's own. The build's own manifest says how each was materialised on Spark."""
    manifest = json.loads((target_path / "manifest.json").read_text(encoding="utf-8"))
    results = json.loads((target_path / "run_results.json").read_text(encoding="utf-8"))
    built = {result["unique_id"] for result in results.get("results", []) if result.get("status") == "success"}
    nodes = manifest.get("nodes", {})
    order = topological_index(manifest)
    tables = []
    for unique_id in sorted(built, key=lambda key: order.get(key, -1)):
        node = nodes.get(unique_id)
        if node is None or node["resource_type"] not in ("model", "seed"):
            continue
        if node["config"].get("materialized") in ("view", "ephemeral"):
            continue
        tables.append((node["schema"], node.get("alias") or node["name"], list(node.get("columns", {}))))
    with progress.phase("Spark's tables into the build database") as phase:
        con = warehouse.connect_build()
        try:
            copied = import_tables(con, warehouse.spark_path / "tables", tables)
        finally:
            con.close()
        phase.finish(f"{len(copied)} tables, {sum(copied.values()):,} rows")


def _phase_title(plan: BuildPlan) -> str:
    if plan.full:
        return "seeds, models and their tests"
    return f"{len(plan.select)} of the seeds, models and tests: what changed and everything downstream"


def _carried_over(context: AssetExecutionContext, manifest: dict, plan: BuildPlan):
    """An output for each selected dbt model or seed this build does not run: nothing it reads changed, so its table
    in the build database is the one the last published build made. In the order of their dependencies."""
    rebuilt = set(plan.select)
    order = topological_index(manifest)
    wanted = context.op_execution_context.selected_output_names
    carried = [
        key
        for key, node in manifest.get("nodes", {}).items()
        if node["resource_type"] in ("model", "seed", "snapshot") and key not in rebuilt
    ]
    assets = context.assets_def
    output_of = {
        spec.metadata.get("dagster_dbt/unique_id"): assets.get_output_name_for_asset_key(spec.key)
        for spec in assets.specs
    }
    for key in sorted(carried, key=lambda k: order.get(k, -1)):
        output_name = output_of.get(key)
        if output_name not in wanted:
            continue
        yield Output(
            None,
            output_name=output_name,
            metadata={"rebuilt": False, "why": "unchanged: nothing it reads changed since the last published build"},
        )
