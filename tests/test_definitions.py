"""The Dagster code location loads and wires the feeds, the dbt models, the contract checks and the publish."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    RunRequest,
    SkipReason,
    build_run_status_sensor_context,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration.definitions import build_after_ingest, build_definitions, defs, landing_folder_sensor
from orchestration.resources import BUNDLED_SAMPLES_DIR, PublishersResource, WarehouseResource
from orchestration.sources.feeds import FEEDS
from tests.publisher_site import AREA, RttUpload, rtt_zip, running_publisher, serve_rtt


def test_definitions_load():
    Definitions.validate_loadable(defs)


def test_asset_graph_joins_the_raw_feeds_to_the_marts_and_the_serving_database():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {
        "rtt/full_extract",
        "oap/monthly_statistics",
        "los_mh/hospital_spells",
        "los_acute/apc_episodes",
        "staging/stg_rtt__full_extract",
        "marts/fct_rtt_provider_month",
        "marts/fct_collaborative_metric_month",
        "serving/database",
    } <= keys
    # a dbt source is the Dagster raw asset of the same key: lineage runs from file to mart without glue
    for staging, raw in [
        ("stg_rtt__full_extract", ["rtt", "full_extract"]),
        ("stg_oap__monthly_statistics", ["oap", "monthly_statistics"]),
        ("stg_los_mh__hospital_spells", ["los_mh", "hospital_spells"]),
        ("stg_los_acute__apc_episodes", ["los_acute", "apc_episodes"]),
    ]:
        assert AssetKey(raw) in graph.get(AssetKey(["staging", staging])).parent_keys
    assert (
        AssetKey(["marts", "fct_collaborative_metric_month"])
        in graph.get(AssetKey(["serving", "database"])).parent_keys
    )


def test_every_feed_is_monthly_partitioned_with_a_blocking_contract_check():
    graph = defs.resolve_asset_graph()
    for feed in FEEDS:
        raw = graph.get(AssetKey(list(feed.asset_key)))
        keys = raw.partitions_def.get_partition_keys()
        assert keys[0] == "2010-04-01" and "2021-04-01" in keys
        contract = graph.get_check_spec(AssetCheckKey(AssetKey(list(feed.asset_key)), f"{feed.name}_file_contract"))
        assert contract.blocking


def test_jobs_schedules_and_sensors_are_defined():
    assert defs.resolve_job_def("ingest_feeds").partitions_def is not None
    assert defs.resolve_job_def("build_and_publish") is not None
    assert defs.resolve_schedule_def("rtt_publication").cron_schedule == "0 10 8-14 * 4"
    for feed in FEEDS:
        assert defs.resolve_schedule_def(f"{feed.name}_publication") is not None
        assert defs.resolve_job_def(f"ingest_{feed.name}") is not None
    assert defs.resolve_sensor_def("build_after_ingest") is not None
    assert defs.resolve_sensor_def("landing_folder_sensor") is not None


# --------------------------------------------------------------------------------------------------------------
# Pulls: each published feed downloads from its publisher, upstream of its raw asset


#: The raw layer of the graph and what each asset is built from: a change here is a change to review.
RAW_LAYER_SNAPSHOT = {
    "rtt/published_files": [],
    "rtt/full_extract": ["rtt/published_files"],
    "rtt/file_loads": [],
    "oap/published_files": [],
    "oap/monthly_statistics": ["oap/published_files"],
    "oap/file_loads": [],
    # published in the main MHSDS file, which `collab-benefits pull` does not download yet: files are dropped in
    "mhsds_los/monthly_statistics": [],
    "mhsds_los/rows_not_taken": [],
    "mhsds_los/file_loads": [],
    "los_mh/hospital_spells": [],
    "los_mh/ward_stays": [],
    "los_mh/mpi": [],
    "los_mh/file_loads": [],
    "los_acute/apc_episodes": [],
    "los_acute/file_loads": [],
    "acute_long_stay/daily_discharge_sitrep": [],
    "acute_long_stay/file_loads": [],
}


def test_published_feeds_are_pulled_upstream_of_their_raw_assets():
    graph = defs.resolve_asset_graph()
    feeds = {feed.name for feed in FEEDS}
    raw_layer = {
        key.to_user_string(): sorted(parent.to_user_string() for parent in graph.get(key).parent_keys)
        for key in graph.get_all_asset_keys()
        if key.path[0] in feeds
    }
    assert raw_layer == RAW_LAYER_SNAPSHOT
    for name in ("rtt", "oap"):
        pull_asset = graph.get(AssetKey([name, "published_files"]))
        assert not pull_asset.is_partitioned
        assert not graph.get_check_spec(AssetCheckKey(pull_asset.key, f"{name}_pull_complete")).blocking


def test_published_feeds_are_scheduled_to_pull_then_ingest_and_the_others_to_look_for_files():
    assert defs.resolve_schedule_def("rtt_publication").job_name == "pull_and_ingest_rtt"
    assert defs.resolve_schedule_def("oap_publication").job_name == "pull_and_ingest_oap"
    assert defs.resolve_schedule_def("los_mh_publication").job_name == "ingest_los_mh"
    assert defs.resolve_schedule_def("los_acute_publication").job_name == "ingest_los_acute"
    job = defs.resolve_job_def("pull_and_ingest_rtt")
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} >= {
        "rtt/published_files",
        "rtt/full_extract",
    }


def test_a_scheduled_pull_covers_the_months_it_keeps_current_plus_the_publication_lag():
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 7, 9, 10, 0, tzinfo=ZoneInfo("Europe/London")),
        resources={"publishers": PublishersResource(months=13)},
    )
    [request] = defs.resolve_schedule_def("rtt_publication").evaluate_tick(context).run_requests
    # the last complete month is June 2026; 13 months plus 3 of lag before it (the newest published is May)
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == "2025-02-01"
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == "2026-06-01"


@pytest.fixture
def publisher():
    with running_publisher() as fake:
        yield fake


def _pulled_definitions(tmp_path: Path, index_url: str, sources_dir: Path | None = None):
    warehouse = WarehouseResource(
        sources_dir=str(sources_dir or tmp_path / "landing"), warehouse_dir=str(tmp_path / "warehouse")
    )
    publishers = PublishersResource(rtt_index_url=index_url, months=2, timeout_seconds=5, retries=1, backoff_seconds=0)
    return build_definitions(warehouse, publishers), warehouse, publishers


def _scheduled_run(defs_, instance, publishers, when: datetime):
    context = build_schedule_context(
        instance=instance, scheduled_execution_time=when, resources={"publishers": publishers}
    )
    [request] = defs_.resolve_schedule_def("rtt_publication").evaluate_tick(context).run_requests
    return defs_.resolve_job_def("pull_and_ingest_rtt").execute_in_process(
        instance=instance, tags=request.tags, raise_on_error=False
    )


def _after(instance, result):
    [success] = instance.all_logs(result.run_id, of_type=DagsterEventType.RUN_SUCCESS)
    context = build_run_status_sensor_context(
        sensor_name="build_after_ingest",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=success.dagster_event,
    )
    return build_after_ingest(context)


def test_the_rtt_schedule_pulls_from_the_publisher_then_loads_what_landed(publisher, tmp_path):
    area = serve_rtt(
        publisher,
        [
            RttUpload(date(2026, 4, 1), (2026, 6), "Dc1i9U"),
            RttUpload(date(2026, 4, 1), (2026, 7), "", revised=True),
            RttUpload(date(2026, 5, 1), (2026, 7), "Qm81xT"),
            RttUpload(date(2026, 3, 1), (2026, 5), "9j03fJT"),
        ],
    )
    pulled_defs, warehouse, publishers = _pulled_definitions(tmp_path, area)
    Definitions.validate_loadable(pulled_defs)
    instance = DagsterInstance.ephemeral()
    when = datetime(2026, 7, 9, 10, 0, tzinfo=ZoneInfo("Europe/London"))

    first = _scheduled_run(pulled_defs, instance, publishers, when)
    assert first.success
    folder = warehouse.source_folder("rtt")
    assert sorted(path.name for path in folder.glob("*.zip")) == [
        "20260430-RTT-April-2026-full-extract-revised.zip",
        "20260430-RTT-April-2026-full-extract.zip",
        "20260531-RTT-May-2026-full-extract.zip",
    ]
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks["rtt_pull_complete"] and checks["rtt_file_contract"]
    con = duckdb.connect(str(warehouse.build_db_path), read_only=True)
    try:
        loaded = con.execute(
            "select period_month, source_file from raw_rtt.full_extract group by all order by 1"
        ).fetchall()
    finally:
        con.close()
    assert [(str(month), name.split("/")[0]) for month, name in loaded] == [
        ("2026-04-01", "20260430-RTT-April-2026-full-extract-revised.zip"),
        ("2026-05-01", "20260531-RTT-May-2026-full-extract.zip"),
    ]
    assert isinstance(_after(instance, first), RunRequest)

    # the landing-folder sensor leaves what the scheduled run landed (and loaded) alone
    sensor_context = build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    assert isinstance(landing_folder_sensor(sensor_context), SkipReason)

    # a week later nothing new is published: nothing is downloaded, loaded or rebuilt
    second = _scheduled_run(
        pulled_defs, instance, publishers, datetime(2026, 7, 16, 10, 0, tzinfo=ZoneInfo("Europe/London"))
    )
    assert second.success
    [pulled] = [m for m in second.asset_materializations_for_node("rtt__published_files")]
    assert pulled.metadata["files_not_modified"].value == 3 and "files_downloaded" not in pulled.metadata
    assert isinstance(_after(instance, second), SkipReason)

    # a file dropped by hand is the sensor's
    (folder / "20260331-RTT-March-2026-full-extract.zip").write_bytes(rtt_zip(date(2026, 3, 1)))
    request = landing_folder_sensor(
        build_sensor_context(instance=instance, cursor=sensor_context.cursor, resources={"warehouse": warehouse})
    )
    assert isinstance(request, RunRequest) and request.tags[ASSET_PARTITION_RANGE_START_TAG] == "2026-03-01"


def test_a_publisher_page_whose_layout_changed_fails_the_run_naming_the_page(publisher, tmp_path):
    publisher.page(AREA, "<html><body><a href='/statistics/rtt/'>RTT has moved</a></body></html>")
    pulled_defs, _, publishers = _pulled_definitions(tmp_path, publisher.root + AREA)
    instance = DagsterInstance.ephemeral()
    result = _scheduled_run(pulled_defs, instance, publishers, datetime(2026, 7, 9, 10, 0, tzinfo=ZoneInfo("UTC")))
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_key == "rtt__published_files"
    description = failure.event_specific_data.user_failure_data.description
    assert f"the page {publisher.root}{AREA} has no links to the financial-year pages" in description
    assert not [e for e in result.get_step_success_events() if e.step_key == "rtt__full_extract"]


def test_the_pull_asset_never_writes_into_the_bundled_samples(tmp_path):
    pulled_defs, _, publishers = _pulled_definitions(tmp_path, "http://127.0.0.1:9/", sources_dir=BUNDLED_SAMPLES_DIR)
    result = pulled_defs.resolve_job_def("pull_and_ingest_rtt").execute_in_process(raise_on_error=False)
    [failure] = result.get_step_failure_events()
    assert "is the bundled samples" in failure.event_specific_data.user_failure_data.description
