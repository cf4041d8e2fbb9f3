"""The one Dagster code location: every asset, check, job, schedule and sensor of the warehouse.

``dagster dev -m orchestration.definitions`` shows the RTT partitions, the dbt models as assets, the file
contract check and the serving database. ``build_definitions`` exists so the CLI and the tests can point the
same graph at another sources folder or warehouse folder.
"""


from dagster import (
    AssetExecutionContext,
    AssetSelection,
    DagsterRunStatus,
    Definitions,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleDefinition,
    asset,
    define_asset_job,
    run_status_sensor,
)
from dagster_dbt import DbtCliResource

from orchestration.dbt import dbt_project, warehouse_dbt_models
from orchestration.publish import publish_serving_database
from orchestration.resources import WarehouseResource
from orchestration.sources.rtt_assets import rtt_file_contract, rtt_full_extract, rtt_monthly_partitions

SERVING_ASSET_KEY = ["serving", "database"]


@asset(
    key=SERVING_ASSET_KEY,
    deps=[warehouse_dbt_models],
    group_name="publish",
    kinds={"duckdb"},
    description=(
        "warehouse/serving.duckdb: the validated marts, copied from the build database into a new file that is "
        "swapped in atomically. Superset and the reports open it read-only. Runs only after every blocking "
        "check and dbt test passed."
    ),
)
def serving_database(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    publication = publish_serving_database(warehouse.build_db_path, warehouse.serving_db_path, run_id=context.run_id)
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(publication.serving_path)),
            "tables": MetadataValue.json(publication.tables),
            "published_at": publication.published_at.isoformat(),
        }
    )


ingest_rtt_job = define_asset_job(
    "ingest_rtt",
    selection=AssetSelection.assets(rtt_full_extract),
    partitions_def=rtt_monthly_partitions,
    description="Load RTT files (one monthly partition per file) into the raw layer and check their contract.",
)

build_and_publish_job = define_asset_job(
    "build_and_publish",
    selection=AssetSelection.assets(warehouse_dbt_models) | AssetSelection.assets(serving_database),
    description="dbt build (models and tests) in the build database, then publish the serving database.",
)

#: NHS England publishes RTT statistics on the second Thursday of the month (for the month before last).
rtt_publication_schedule = ScheduleDefinition(
    name="rtt_second_thursday",
    cron_schedule="0 10 8-14 * 4",
    job=ingest_rtt_job,
    execution_timezone="Europe/London",
    description="Look for the new RTT month every second Thursday, when NHS England publishes it.",
)


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[ingest_rtt_job],
    request_job=build_and_publish_job,
    description="Rebuild the marts and publish after new data has been loaded and has passed its contract.",
)
def build_after_ingest(context):
    return RunRequest(run_key=context.dagster_run.run_id)


def build_definitions(warehouse: WarehouseResource | None = None) -> Definitions:
    return Definitions(
        assets=[rtt_full_extract, warehouse_dbt_models, serving_database],
        asset_checks=[rtt_file_contract],
        jobs=[ingest_rtt_job, build_and_publish_job],
        schedules=[rtt_publication_schedule],
        sensors=[build_after_ingest],
        resources={
            "warehouse": warehouse or WarehouseResource(),
            "dbt": DbtCliResource(project_dir=dbt_project),
        },
    )


defs = build_definitions()
