"""Dagster assets for the routine feeds: one monthly-partitioned raw asset per feed, each with its blocking
file-contract check, built from the feed registry (orchestration/sources/feeds.py).

An asset's key is its dbt source (``["rtt", "full_extract"]`` ↔ ``source('rtt', 'full_extract')``), so the
lineage runs from the file to the marts without glue. A backfill of many months runs as one run
(BackfillPolicy.single_run), not one process per month.
"""

import os
import sys
import warnings

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    asset,
    asset_check,
)
from dagster._core.definitions.asset_checks.asset_checks_definition import AssetChecksDefinition

from orchestration import audit, progress, raw
from orchestration.resources import WarehouseResource
from orchestration.sources.feeds import FEEDS, Feed
from orchestration.sources.pulls import pull_asset_key

#: DuckDB's memory while files are loaded: appending a month needs little, and the files being read and checked
#: take the rest; with dbt's 2 GB, DuckDB cached every block a 60-month backfill wrote and the ingest's peak grew
#: past 3.8 GB (SPEC §12). ``COLLAB_INGEST_MEMORY_LIMIT`` overrides it.
INGEST_MEMORY_LIMIT = os.environ.get("COLLAB_INGEST_MEMORY_LIMIT", "1GB")

#: One partition per month of published data, from :data:`orchestration.raw.FIRST_MONTH` (April 2010, where NHS
#: England's RTT full extracts start in this layout family); the other feeds start later and simply have no file
#: for the early months.
monthly_partitions = MonthlyPartitionsDefinition(start_date=raw.FIRST_MONTH.isoformat(), end_offset=0)


def _window(context: AssetExecutionContext):
    if not context.has_partition_key_range:
        return None
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def build_feed_asset(feed: Feed) -> tuple[AssetsDefinition, AssetChecksDefinition]:
    @asset(
        key=AssetKey(list(feed.asset_key)),
        name=None,
        # a feed with a publisher reads what its pull asset downloaded into the landing folder
        deps=[pull_asset_key(feed)] if feed.pull_source else [],
        partitions_def=monthly_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=feed.name,
        kinds={"duckdb", "csv"},
        description=(
            f"{feed.description} A file that fails its contract (expectations/{feed.suite}.json) is quarantined "
            "with a reason file; other files and months go on. Re-loading a file changes nothing; a revision "
            f"replaces its month. Published: {feed.publication_rhythm}."
        ),
    )
    def feed_asset(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        folder = warehouse.source_folder(feed.name)
        con = warehouse.connect_build(memory_limit=INGEST_MEMORY_LIMIT)
        phase, results = progress.begin(f"{feed.title} ({feed.name}): read, check and load files"), []
        read_before = raw.files_read()
        try:
            feed.ensure_raw_tables(con)
            results = (
                feed.ingest_folder(
                    con,
                    folder,
                    warehouse.quarantine_path,
                    move_rejected=warehouse.moves_rejected_files,
                    months=_window(context),
                )
                if folder.is_dir()
                else []
            )
            for result in results:
                if result.action in ("loaded", "replaced") and result.violations:
                    # a genuine publication with row-level warnings: every flagged row is recorded
                    audit.record_row_flags(
                        con,
                        run_id=context.run_id,
                        source=feed.name,
                        source_file=result.file,
                        period_month=result.period_month,
                        sha256=result.sha256,
                        violations=raw.warnings_of(result.violations),
                    )
                    warned = raw.warnings_of(result.violations)
                    rules = sorted({violation.rule for violation in warned})
                    context.log.warning(
                        f"{feed.title}: {result.file}: {sum(v.count for v in warned)} row(s) flagged "
                        f"({', '.join(rules)}); loaded"
                    )
                if result.action in ("loaded", "replaced"):
                    # the file passed its contract before it was loaded: the check need not validate it again
                    audit.record_contract_pass(
                        con,
                        run_id=context.run_id,
                        source=feed.name,
                        period_month=result.period_month,
                        sha256=result.sha256,
                    )
                if result.action == "known_rejected":
                    context.log.warning(f"{feed.title}: {result.file}: {result.message}")
                    continue
                if result.action != "rejected":
                    said = f"{feed.title}: {result.file}: {result.action} ({result.rows} rows)"
                    if result.action == "superseded" and result.message.startswith("not loaded:"):
                        # read, and kept out because its month stands on a publication of higher precedence
                        context.log.warning(f"{said}: {result.message}")
                    else:
                        context.log.info(said)
                    continue
                audit.record_rejection(
                    con,
                    run_id=context.run_id,
                    source=feed.name,
                    source_file=result.file,
                    period_month=result.period_month,
                    violations=list(result.violations),
                    quarantined_to=str(result.quarantined_to or ""),
                )
                first = result.violations[0] if result.violations else None
                context.log.error(
                    f"{feed.title}: {result.file} was quarantined"
                    + (f": row {first.row}, column {first.column}: {first.rule}: {first.message}" if first else "")
                )
        finally:
            con.close()
            raw.release_memory_if_read(read_before)
            phase.finish(progress.count_actions(phase.files))
            progress.end(phase, failed=sys.exc_info()[0] is not None)  # a rejected file is an outcome, not a failure
        by_action: dict[str, int] = {}
        for result in results:
            by_action[result.action] = by_action.get(result.action, 0) + 1
        return MaterializeResult(
            metadata={
                "folder": MetadataValue.path(str(folder)),
                "files_seen": len(results),
                **{f"files_{action}": count for action, count in sorted(by_action.items())},
                "rejected_files": MetadataValue.json([str(r.file) for r in results if r.action == "rejected"]),
            }
        )

    @asset_check(
        asset=feed_asset,
        name=f"{feed.name}_file_contract",
        blocking=True,
        description=(
            f"Every current {feed.title} partition must have passed the Great Expectations suite "
            f"expectations/{feed.suite}.json for the exact bytes loaded (SHA-256); a partition without such a "
            "record (loaded by other means, or changed since) is validated now from the raw layer. Blocking: a "
            "failure stops the dbt build and the publish, so the dashboards keep the last good data."
        ),
    )
    def feed_contract(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        with progress.phase(f"{feed.title} ({feed.name}): file contract of the months held") as phase:
            con = warehouse.connect_build()
            try:
                feed.ensure_raw_tables(con)
                outcomes = feed.check_loaded_months(con, run_id=context.op_execution_context.run_id)
            finally:
                con.close()
            phase.finish(
                f"{len(outcomes)} month(s) not checked when loaded were checked now"
                if outcomes
                else "every month held passed its contract when it was loaded"
            )
        # only errors fail the check: a warning is a flagged row of a genuine publication, loaded on purpose
        failed = {
            str(month): raw.errors_of(violations) for month, violations in outcomes.items() if raw.errors_of(violations)
        }
        return AssetCheckResult(
            passed=not failed,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "partitions_checked": len(outcomes),
                "partitions_failed": len(failed),
                "failures": MetadataValue.json(
                    {month: [str(v) for v in violations[:20]] for month, violations in failed.items()}
                ),
            },
        )

    return feed_asset, feed_contract


with warnings.catch_warnings():
    # backfill_policy is marked beta; single-run backfills are what a 60-month load needs (SPEC §12), chosen knowingly
    warnings.simplefilter("ignore", BetaWarning)
    FEED_ASSETS: dict[str, tuple[AssetsDefinition, AssetChecksDefinition]] = {
        feed.name: build_feed_asset(feed) for feed in FEEDS
    }
