"""The one Dagster code location: every asset, check, job, schedule and sensor of the warehouse.

``dagster dev -m orchestration.definitions`` shows the pull assets that download each published feed, the RTT
partitions, the dbt models as assets, the file contract check and the serving database. ``build_definitions``
exists so the CLI and the tests can point the same graph at another sources folder, warehouse folder or
publisher.

Unattended, the schedules keep the warehouse current: each published feed's schedule runs its pull asset and its
raw asset in one run over the months the pull keeps current, and a successful load that changed something
triggers the build and publish. The landing-folder sensor loads files dropped by hand.
"""

import json

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetSpec,
    DagsterEventType,
    DagsterRunStatus,
    Definitions,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    asset,
    define_asset_job,
    multi_asset,
    run_status_sensor,
    schedule,
    sensor,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration import progress
from orchestration.build_state import remember_build
from orchestration.dbt import (
    DBT_GLOBAL_FLAGS,
    DBT_IN_WAREHOUSE,
    WarehouseDbtResource,
    dbt_project,
    warehouse_dbt_models,
)
from orchestration.publish import publish_serving_database
from orchestration.pull import landed_by_run
from orchestration.quality import build_mart_checks
from orchestration.resources import PublishersResource, WarehouseResource
from orchestration.sources.assets import FEED_ASSETS, monthly_partitions
from orchestration.sources.feeds import FEEDS, FEEDS_BY_NAME, Feed
from orchestration.sources.pulls import PULL_ASSETS, pull_window

SERVING_ASSET_KEY = ["serving", "database"]


BENEFITS_MARTS = {
    "fct_spc": "SPC (Making Data Count XmR) for every collaborative and member metric series, limits restarting "
    "at the collaborative's go-live.",
    "dim_benefit": "The benefits register with each benefit's resolved baseline and target.",
    "fct_benefit_tracking": "One row per benefit and month: actual, baseline, target, trajectory, % achieved, RAG, "
    "SPC variation and assurance.",
    "fct_evaluation": "Before/after, difference-in-differences, interrupted time series and synthetic control "
    "estimates with 95% intervals, around each collaborative's go-live.",
    "fct_event_study": "Event study: treated-minus-comparator differences month by month around each "
    "collaborative's go-live (leads and lags, binned at the ends) with 95% wild cluster bootstrap intervals and the "
    "joint pre-trend test.",
    "fct_synthetic_control_donor": "The synthetic control's donor trusts for each collaborative and metric: weight, "
    "and each donor's own placebo-in-space estimate and pre/post RMSPE.",
}


@multi_asset(
    specs=[
        AssetSpec(
            AssetKey(["marts", name]),
            description=description,
            deps=[warehouse_dbt_models],
            group_name="benefits",
            kinds={"duckdb", "python"},
        )
        for name, description in BENEFITS_MARTS.items()
    ],
)
def benefits_marts(context: AssetExecutionContext, warehouse: WarehouseResource):
    """Benefits tracking, SPC and evaluation (SPEC §7), computed from the dbt marts in the build database."""
    # imported here, not with the definitions: statsmodels and SciPy cost about 1 s, which a run with nothing to
    # build or a `dagster dev` start need not pay (the dbt step imports them beside dbt's build)
    from orchestration.analytics.marts import build_benefits_marts

    with progress.phase("Benefits marts: benefits tracking, SPC and evaluation") as phase:
        con = warehouse.connect_build()
        try:
            written = build_benefits_marts(con)
        finally:
            con.close()
        phase.finish(", ".join(f"{name} ({rows:,} rows)" for name, rows in written.items()))
    for name, rows in written.items():
        yield MaterializeResult(asset_key=AssetKey(["marts", name]), metadata={"rows": rows})


@asset(
    key=SERVING_ASSET_KEY,
    deps=[warehouse_dbt_models, benefits_marts],
    group_name="publish",
    kinds={"duckdb"},
    description=(
        "warehouse/serving.duckdb: the validated marts, copied from the build database into a new file that is "
        "swapped in atomically. Superset and the reports open it read-only. Runs only after every blocking "
        "check (each mart's GX suite) and dbt test passed."
    ),
)
def serving_database(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    with progress.phase("Publish the serving database") as phase:
        publication = publish_serving_database(
            warehouse.build_db_path, warehouse.serving_db_path, run_id=context.run_id
        )
        phase.finish(f"{len(publication.tables)} tables: {publication.serving_path}")
    # What this build read and was built with, so that the next build runs only what changes (build_state.py)
    con = warehouse.connect_build()
    try:
        remember_build(con, warehouse.warehouse_path)
    finally:
        con.close()
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(publication.serving_path)),
            "tables": MetadataValue.json(publication.tables),
            "published_at": publication.published_at.isoformat(),
        }
    )


#: Every table the serving database gets has a blocking GX check: the dbt marts' run before the benefits marts
#: are computed from them, the benefits marts' after.
mart_checks = [
    build_mart_checks(
        "dbt_mart_gx_suites",
        [key for key in warehouse_dbt_models.keys if key.path[0] == "marts"],
        "Validate every dbt mart against its GX suite (expectations/marts/).",
    ),
    build_mart_checks(
        "benefits_mart_gx_suites",
        [AssetKey(["marts", name]) for name in BENEFITS_MARTS],
        "Validate the benefits marts against their GX suites (expectations/marts/); build the run's Data Docs.",
        last=True,
    ),
]

feed_assets = [asset_def for asset_def, _ in FEED_ASSETS.values()]
feed_checks = [check_def for _, check_def in FEED_ASSETS.values()]

ingest_feeds_job = define_asset_job(
    "ingest_feeds",
    selection=AssetSelection.assets(*feed_assets),
    partitions_def=monthly_partitions,
    description="Load every feed's files (one monthly partition per file) into the raw layer; check contracts.",
)

ingest_feed_jobs = {
    feed.name: define_asset_job(
        f"ingest_{feed.name}",
        selection=AssetSelection.assets(FEED_ASSETS[feed.name][0]),
        partitions_def=monthly_partitions,
        description=f"Load {feed.title} files into the raw layer and check their contract.",
    )
    for feed in FEEDS
}

build_and_publish_job = define_asset_job(
    "build_and_publish",
    selection=AssetSelection.assets(warehouse_dbt_models, benefits_marts, serving_database),
    description=(
        "dbt build (models and tests) in the build database, the benefits marts, every mart's GX suite (blocking), "
        "then publish the serving database."
    ),
)

#: One job per published feed: download what is new from the publisher, then load it.
pull_and_ingest_jobs = {
    name: define_asset_job(
        f"pull_and_ingest_{name}",
        selection=AssetSelection.assets(PULL_ASSETS[name], FEED_ASSETS[name][0]),
        description=(
            f"Download new {FEEDS_BY_NAME[name].title} files from the publisher's pages into the landing folder, "
            "then load the run's months into the raw layer and check their contract."
        ),
    )
    for name in PULL_ASSETS
}


def _publication_schedule(feed: Feed) -> ScheduleDefinition:
    """A feed's schedule, on its publisher's rhythm: pull and ingest when it is published, else look for files."""
    if feed.name not in pull_and_ingest_jobs:
        return ScheduleDefinition(
            name=f"{feed.name}_publication",
            cron_schedule=feed.cron_schedule,
            job=ingest_feed_jobs[feed.name],
            execution_timezone="Europe/London",
            description=f"Look for new {feed.title} files in the landing folder: {feed.publication_rhythm}.",
        )

    @schedule(
        name=f"{feed.name}_publication",
        cron_schedule=feed.cron_schedule,
        job=pull_and_ingest_jobs[feed.name],
        execution_timezone="Europe/London",
        description=(
            f"Download new {feed.title} files from the publisher and load them: {feed.publication_rhythm}. One run "
            "over the months the pull keeps current (PublishersResource.months, plus the publication lag)."
        ),
    )
    def publication(context: ScheduleEvaluationContext, publishers: PublishersResource) -> RunRequest:
        first, last = pull_window(monthly_partitions, context.scheduled_execution_time, publishers.months)
        return RunRequest(
            tags={ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}
        )

    return publication


#: One schedule per feed, on its publisher's rhythm.
feed_schedules = [_publication_schedule(feed) for feed in FEEDS]

#: What a raw asset's materialization says when a file changed the warehouse (feed_asset's metadata).
_CHANGING_ACTIONS = ("files_loaded", "files_replaced", "files_rejected")


def _loaded_something(instance, run_id: str) -> bool:
    """Whether a run loaded, replaced or rejected a file (a rejection is news for fct_data_quality too)."""
    feed_keys = {AssetKey(list(feed.asset_key)) for feed in FEEDS}
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.asset_materialization
        if materialization is None or materialization.asset_key not in feed_keys:
            continue
        for name in _CHANGING_ACTIONS:
            value = materialization.metadata.get(name)
            if value is not None and getattr(value, "value", value):
                return True
    return False


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[ingest_feeds_job, *ingest_feed_jobs.values(), *pull_and_ingest_jobs.values()],
    request_job=build_and_publish_job,
    description=(
        "Rebuild the marts and publish after new data has been loaded and has passed its contract (or a file was "
        "rejected); a run that loaded nothing new (a scheduled pull with nothing published) rebuilds nothing."
    ),
)
def build_after_ingest(context):
    if not _loaded_something(context.instance, context.dagster_run.run_id):
        return SkipReason(f"Run {context.dagster_run.run_id} loaded no new or revised file: nothing to rebuild.")
    return RunRequest(run_key=context.dagster_run.run_id)


@sensor(
    job=ingest_feeds_job,
    minimum_interval_seconds=60,
    description=(
        "Watches the landing folder (COLLAB_SOURCES_DIR, laid out as <feed>/<files>) and loads new or changed "
        "files dropped there (by hand, or by `collab-benefits pull`) as one run over the months they cover. Files a "
        "scheduled pull run landed are left to that run, which loads them itself."
    ),
)
def landing_folder_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    seen = json.loads(context.cursor) if context.cursor else {}
    current: dict[str, str] = {}
    changed_months = []
    for feed in FEEDS:
        folder = warehouse.source_folder(feed.name)
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            # data files only: a pull's <file>.source.json sidecars and temporary files are not news
            if not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in (".csv", ".zip"):
                continue
            stat = path.stat()
            current[str(path)] = f"{stat.st_mtime_ns}:{stat.st_size}"
            if seen.get(str(path)) != current[str(path)] and landed_by_run(path) is None:
                changed_months += feed.months_in_folder(folder)
    if not changed_months:
        context.update_cursor(json.dumps(current))
        return SkipReason("No new or changed files in the landing folder.")
    context.update_cursor(json.dumps(current))
    first, last = min(changed_months), max(changed_months)
    return RunRequest(
        run_key=f"landing-{first}-{last}-{len(current)}-{hash(frozenset(current.items()))}",
        tags={ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()},
    )


def build_definitions(
    warehouse: WarehouseResource | None = None, publishers: PublishersResource | None = None
) -> Definitions:
    return Definitions(
        assets=[*PULL_ASSETS.values(), *feed_assets, warehouse_dbt_models, benefits_marts, serving_database],
        asset_checks=[*feed_checks, *mart_checks],
        jobs=[
            ingest_feeds_job,
            *ingest_feed_jobs.values(),
            *pull_and_ingest_jobs.values(),
            build_and_publish_job,
        ],
        schedules=feed_schedules,
        sensors=[build_after_ingest, landing_folder_sensor],
        resources={
            "warehouse": warehouse or WarehouseResource(),
            "publishers": publishers or PublishersResource(),
            "dbt": WarehouseDbtResource(
                project_dir=dbt_project, global_config_flags=DBT_GLOBAL_FLAGS, dbt_executable=str(DBT_IN_WAREHOUSE)
            ),
        },
    )


defs = build_definitions()
