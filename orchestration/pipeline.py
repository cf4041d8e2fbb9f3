"""The whole pipeline in one process: ingest every source's files, check, build, test, publish.

Used by ``collab-benefits run`` and by the tests. It executes the same Dagster jobs that ``dagster dev`` shows,
in process, against the folders given: first the ingest job over the months found (one run for the whole
range), then the build-and-publish job. Publishing happens only when every blocking check passed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
from dagster import DagsterInstance
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration import audit
from orchestration.definitions import build_definitions
from orchestration.resources import WarehouseResource
from orchestration.sources import los_acute, los_mh
from orchestration.sources.feeds import FEEDS

#: The CLI shows its own progress and summary: Dagster's console logger stays silent, and each run's events go
#: to ``WAREHOUSE/logs/dagster.log`` instead (see :func:`write_dagster_log`).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class RunSummary:
    sources_dir: Path
    warehouse_dir: Path
    serving_db: Path
    build_db: Path
    quarantine_dir: Path
    months_found: list[date] = field(default_factory=list)
    rejected_files: list[dict] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    published: bool = False
    published_tables: dict[str, int] = field(default_factory=dict)
    reference_discrepancies: list[str] = field(default_factory=list)
    #: rows loaded but left out of the measures, by feed and rule (e.g. a spell discharged before admission)
    row_problems: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the flagged rows of the files this run loaded: source, source_file, source_row, source_column, rule, message
    flagged_rows: list[dict] = field(default_factory=list)
    #: the row-level warnings (severity ``warn``) of the files this run loaded: source, source_file, source_row,
    #: source_column, rule, message, row_count (README "Severity policy")
    warnings: list[dict] = field(default_factory=list)
    #: files quarantined by an earlier run and still in the sources folder, not read again (file, message)
    known_rejected: list[dict] = field(default_factory=list)
    #: what each failed check found (``asset:check`` → sentences), e.g. a mart's failed GX expectations
    check_problems: dict[str, list[str]] = field(default_factory=dict)
    #: what each failed step said (step key → lines), e.g. dbt's failing models and tests
    step_problems: dict[str, list[str]] = field(default_factory=dict)
    #: the log files of the run: Dagster's events, dbt's output
    dagster_log: Path | None = None
    dbt_log: Path | None = None
    #: the run's GX Data Docs (index.html), when the mart checks built them
    data_docs: Path | None = None
    run_ids: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when everything was published; 1 when a file, a check or a step failed."""
        return 0 if self.published and not (self.rejected_files or self.failed_checks or self.failed_steps) else 1


def _failed_steps(result) -> list[str]:
    return [event.step_key for event in result.all_events if event.event_type_value == "STEP_FAILURE"]


def _step_problems(result) -> dict[str, list[str]]:
    """What each failed step said: a ``Failure``'s description and its ``problems`` metadata (dbt's error lines),
    or the first line of the exception that ended it."""
    problems = {}
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        failure = event.step_failure_data
        user = failure.user_failure_data
        if user is not None:
            found = user.metadata.get("problems")
            problems[event.step_key] = [user.description or "failed", *(found.value if found is not None else [])]
        elif failure.error is not None:
            message = failure.error.message.strip().splitlines()
            problems[event.step_key] = [message[0] if message else failure.error.cls_name or "failed"]
    return problems


def write_dagster_log(instance: DagsterInstance, run_id: str, path: Path, *, append: bool) -> Path:
    """Dagster's events of one run (what its console logger would have printed, and the debug events), one line
    each, with any error's stack trace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as out:
        for entry in instance.all_logs(run_id):
            when = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
            level = logging.getLevelName(entry.level) if isinstance(entry.level, int) else str(entry.level)
            event = entry.dagster_event.event_type_value if entry.dagster_event else "LOG"
            out.write(f"{when} {level:<7} {entry.job_name} {entry.step_key or '-'} {event}: {entry.message}\n")
            error = entry.error_info or (
                entry.dagster_event.step_failure_data.error
                if entry.dagster_event and entry.dagster_event.event_type_value == "STEP_FAILURE"
                else None
            )
            if error is not None:
                out.write("    " + error.to_string().replace("\n", "\n    ").rstrip() + "\n")
    return path


def _failed_checks(result) -> list[str]:
    return [
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    ]


def _check_problems(result) -> dict[str, list[str]]:
    """What each failed check reported in its ``problems`` metadata (the mart checks' failed expectations)."""
    problems = {}
    for evaluation in result.get_asset_check_evaluations():
        found = evaluation.metadata.get("problems")
        if not evaluation.passed and found is not None:
            problems[f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"] = list(found.value)
    return problems


def _data_docs(result) -> Path | None:
    """Where the run's mart checks built the GX Data Docs, if they did."""
    for evaluation in result.get_asset_check_evaluations():
        docs = evaluation.metadata.get("data_docs")
        if docs is not None:
            return Path(docs.value)
    return None


def reconcile_with_ods(folder: Path) -> list[str]:
    """Compare the reference seeds with the ODS files in ``folder`` (etr, ect, succ), when there are any.

    Discrepancies are reported for the programme office to fix in seeds/reference; they do not stop a run. A
    malformed ODS file is reported the same way, naming its file, line and field.
    """
    from orchestration.raw import ContractError
    from orchestration.sources import ods

    try:
        found = ods.read_ods_folder(folder)
    except ContractError as error:
        return [str(violation) for violation in error.violations] or [str(error)]
    if found is None:
        return []
    return ods.reconcile_reference(found.organisations, found.successions)


def _still_quarantined(con: duckdb.DuckDBPyConnection, sources_dir: Path, rejected_now: list[dict]) -> list[dict]:
    """Files an earlier run quarantined that are still, unchanged, in the sources folder (copied, not moved,
    because the folder is not the warehouse's): they are not read again, but the user should hear of them."""
    from orchestration.raw import ensure_quarantine_register, file_sha256

    ensure_quarantine_register(con)
    now = {row["quarantined_to"] for row in rejected_now}
    rows = con.execute(
        """select source, source_file, original_path, sha256, max(quarantined_to), max(quarantined_at)
           from audit.quarantined_files where not moved
           group by source, source_file, original_path, sha256 order by source, source_file"""
    ).fetchall()
    found = []
    for source, source_file, original, sha256, target, at in rows:
        path = Path(original)
        if target in now or not path.is_file() or not path.resolve().is_relative_to(sources_dir.resolve()):
            continue
        if file_sha256(path) == sha256:
            found.append(
                {"source": source, "source_file": source_file, "original": original, "quarantined_to": target, "at": at}
            )
    return found


def run_pipeline(
    sources_dir: Path | None = None,
    warehouse_dir: Path | None = None,
    *,
    instance: DagsterInstance | None = None,
    engine: str | None = None,
) -> RunSummary:
    warehouse = WarehouseResource(
        **({"engine": engine} if engine else {}),
        **({"sources_dir": str(Path(sources_dir).resolve())} if sources_dir else {}),
        **({"warehouse_dir": str(Path(warehouse_dir).resolve())} if warehouse_dir else {}),
    )
    summary = RunSummary(
        sources_dir=warehouse.sources_path,
        warehouse_dir=warehouse.warehouse_path,
        serving_db=warehouse.serving_db_path,
        build_db=warehouse.build_db_path,
        quarantine_dir=warehouse.quarantine_path,
        dagster_log=warehouse.logs_path / "dagster.log",
    )
    summary.reference_discrepancies = reconcile_with_ods(warehouse.source_folder("ods"))
    defs = build_definitions(warehouse)
    instance = instance or DagsterInstance.ephemeral()

    con = warehouse.connect_build()
    try:
        for feed in FEEDS:
            feed.ensure_raw_tables(con)
        audit.ensure_audit_schema(con)
    finally:
        con.close()

    months = sorted(
        {
            month
            for feed in FEEDS
            if warehouse.source_folder(feed.name).is_dir()
            for month in feed.months_in_folder(warehouse.source_folder(feed.name))
        }
    )
    summary.months_found = months
    if months:
        first, last = min(months), max(months)
        ingest = defs.resolve_job_def("ingest_feeds").execute_in_process(
            run_config=QUIET_RUN_CONFIG,
            instance=instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
            },
            raise_on_error=False,
        )
        summary.run_ids.append(ingest.run_id)
        write_dagster_log(instance, ingest.run_id, summary.dagster_log, append=False)
        summary.failed_checks += _failed_checks(ingest)
        summary.failed_steps += _failed_steps(ingest)
        summary.step_problems.update(_step_problems(ingest))
        con = duckdb.connect(str(warehouse.build_db_path))
        try:
            summary.rejected_files = audit.rejections_for_run(con, ingest.run_id)
            summary.warnings = audit.row_flags_for_run(con, ingest.run_id)
            summary.known_rejected = _still_quarantined(con, warehouse.sources_path, summary.rejected_files)
            counts = los_mh.row_problem_counts(con)
            if counts:
                summary.row_problems["los_mh"] = counts
            summary.flagged_rows += los_mh.flagged_rows(con, run_id=ingest.run_id)
            counts = los_acute.row_problem_counts(con)
            if counts:
                summary.row_problems["los_acute"] = counts
            summary.flagged_rows += los_acute.flagged_rows(con, run_id=ingest.run_id)
        finally:
            con.close()
        if not ingest.success:
            return summary

    build = defs.resolve_job_def("build_and_publish").execute_in_process(
        run_config=QUIET_RUN_CONFIG, instance=instance, raise_on_error=False
    )
    summary.run_ids.append(build.run_id)
    write_dagster_log(instance, build.run_id, summary.dagster_log, append=bool(months))
    summary.failed_checks += _failed_checks(build)
    summary.check_problems.update(_check_problems(build))
    summary.failed_steps += _failed_steps(build)
    summary.step_problems.update(_step_problems(build))
    if warehouse.dbt_log_path.exists():
        summary.dbt_log = warehouse.dbt_log_path
    summary.data_docs = _data_docs(build)
    if build.success:
        summary.published = True
        for event in build.get_asset_materialization_events():
            materialization = event.event_specific_data.materialization
            if materialization.asset_key.path == ["serving", "database"]:
                summary.published_tables = dict(materialization.metadata["tables"].value)
    return summary
