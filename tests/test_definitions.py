"""The Dagster code location loads and wires the feeds, the dbt models, the contract checks and the publish."""

from __future__ import annotations

from dagster import AssetCheckKey, AssetKey, Definitions

from orchestration.definitions import defs
from orchestration.sources.feeds import FEEDS


def test_definitions_load():
    Definitions.validate_loadable(defs)


def test_asset_graph_joins_the_raw_feeds_to_the_marts_and_the_serving_database():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {
        "rtt/full_extract",
        "oap/monthly_statistics",
        "los_mh/hospital_spells",
        "los_acute/apc_spells",
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
        ("stg_los_acute__apc_spells", ["los_acute", "apc_spells"]),
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
