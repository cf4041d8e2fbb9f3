"""The Dagster code location loads and wires the feed, the dbt models, the contract check and the publish."""

from __future__ import annotations

from dagster import AssetCheckKey, AssetKey, Definitions

from orchestration.definitions import defs


def test_definitions_load():
    Definitions.validate_loadable(defs)


def test_asset_graph_joins_the_raw_feed_to_the_marts_and_the_serving_database():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"rtt/full_extract", "staging/stg_rtt__full_extract", "marts/fct_rtt_provider_month",
            "marts/fct_collaborative_metric_month", "serving/database"} <= keys
    # the dbt source rtt.full_extract is the Dagster raw asset: lineage runs from file to mart without glue
    assert AssetKey(["rtt", "full_extract"]) in graph.get(AssetKey(["staging", "stg_rtt__full_extract"])).parent_keys
    assert AssetKey(["marts", "fct_collaborative_metric_month"]) in graph.get(AssetKey(["serving", "database"])).parent_keys


def test_raw_rtt_asset_is_monthly_partitioned_with_a_blocking_contract_check():
    graph = defs.resolve_asset_graph()
    raw = graph.get(AssetKey(["rtt", "full_extract"]))
    keys = raw.partitions_def.get_partition_keys()
    assert keys[0] == "2010-04-01" and "2021-04-01" in keys
    contract = graph.get_check_spec(AssetCheckKey(AssetKey(["rtt", "full_extract"]), "rtt_file_contract"))
    assert contract.blocking


def test_jobs_schedule_and_sensor_are_defined():
    assert defs.resolve_job_def("ingest_rtt").partitions_def is not None
    assert defs.resolve_job_def("build_and_publish") is not None
    assert defs.resolve_schedule_def("rtt_second_thursday").cron_schedule == "0 10 8-14 * 4"
    assert defs.resolve_sensor_def("build_after_ingest") is not None
