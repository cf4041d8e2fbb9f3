"""Dagster assets for the RTT feed: the raw monthly partitions and their blocking file-contract check.

The asset key ``["rtt", "full_extract"]`` is the dbt source ``source('rtt', 'full_extract')``, so the lineage
runs from the file to the marts without glue. One monthly partition per published file; a backfill of many
months runs as one run (BackfillPolicy.single_run), not one process per month.
"""


from datetime import date

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    asset,
    asset_check,
)

from orchestration import audit
from orchestration.resources import WarehouseResource
from orchestration.sources import rtt

RTT_ASSET_KEY = AssetKey(["rtt", "full_extract"])

#: NHS England's RTT full extracts: one file a month, published about six weeks after the month ends.
rtt_monthly_partitions = MonthlyPartitionsDefinition(start_date="2010-04-01", end_offset=0)


def _months_in_window(context: AssetExecutionContext) -> tuple[date, date] | None:
    if not context.has_partition_key_range:
        return None
    window = context.partition_time_window
    return window.start.date(), window.end.date()


@asset(
    key=RTT_ASSET_KEY,
    partitions_def=rtt_monthly_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="rtt",
    kinds={"duckdb", "csv"},
    description=(
        "NHS England RTT waiting times 'Full CSV data file', one partition per month, loaded into "
        "raw_rtt.full_extract after its file contract (expectations/rtt_full_extract.json) passed. A file that "
        "fails is quarantined with a reason file; other files and months go on. Re-loading a file changes "
        "nothing; a -revised file replaces its month."
    ),
)
def rtt_full_extract(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    folder = warehouse.source_folder("rtt")
    window = _months_in_window(context)
    con = warehouse.connect_build()
    try:
        results = rtt.ingest_rtt_folder(
            con,
            folder,
            warehouse.quarantine_path,
            move_rejected=warehouse.moves_rejected_files,
            months=window,
        )
        for result in results:
            if result.action == "rejected":
                audit.record_rejection(
                    con,
                    run_id=context.run_id,
                    source="rtt",
                    source_file=result.file,
                    period_month=result.period_month,
                    violations=list(result.violations),
                    quarantined_to=str(result.quarantined_to or ""),
                )
                first = result.violations[0] if result.violations else None
                context.log.error(
                    f"RTT file {result.file} was quarantined: "
                    + (f"row {first.row}, column {first.column}: {first.rule}: {first.message}" if first else "")
                )
            else:
                context.log.info(f"RTT file {result.file}: {result.action} ({result.rows} rows)")
    finally:
        con.close()

    by_action: dict[str, int] = {}
    for result in results:
        by_action[result.action] = by_action.get(result.action, 0) + 1
    return MaterializeResult(
        metadata={
            "folder": MetadataValue.path(str(folder)),
            "files_seen": len(results),
            **{f"files_{action}": count for action, count in sorted(by_action.items())},
            "rejected_files": MetadataValue.json(
                [str(r.file) for r in results if r.action == "rejected"]
            ),
        }
    )


@asset_check(
    asset=rtt_full_extract,
    name="rtt_file_contract",
    blocking=True,
    description=(
        "Re-validates every RTT month whose current load has not been checked yet against the Great "
        "Expectations suite expectations/rtt_full_extract.json, one partition at a time. Blocking: a failure "
        "stops the dbt build and the publish, so the dashboards keep the last good data."
    ),
)
def rtt_file_contract(context, warehouse: WarehouseResource) -> AssetCheckResult:
    con = warehouse.connect_build()
    try:
        outcomes = rtt.check_loaded_months(con, run_id=context.op_execution_context.run_id)
    finally:
        con.close()
    failed = {str(month): violations for month, violations in outcomes.items() if violations}
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
