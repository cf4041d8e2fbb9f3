"""The data-quality marts say how far the data can be trusted (SPEC §8)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import duckdb

from orchestration.samples.los_mh import RESUBMITTED_MONTHS
from orchestration.sources.feeds import FEEDS


def test_every_feed_has_its_freshness_revisions_and_suppression(serving):
    rows = {
        row[0]: row[1:]
        for row in serving.execute(
            "select source, latest_period, revisions, suppressed_share, months_held from dim_source_freshness"
        ).fetchall()
    }
    assert set(rows) == {feed.name for feed in FEEDS}
    assert all(latest == date(2026, 9, 1) for latest, _, _, _ in rows.values())
    # 69 months from January 2021; the acute sitrep's CSV layout starts in April 2024 (30 months to September 2026)
    assert {feed: months for feed, (_, _, _, months) in rows.items()} == {
        feed.name: 30 if feed.name == "acute_long_stay" else 69 for feed in FEEDS
    }
    assert rows["rtt"][1] == 1  # November 2025 was re-published as -revised
    assert 0 < rows["oap"][2] < 1  # '*' cells exist and are counted


def test_every_loaded_partition_has_a_passed_contract_check(serving, bundled_run):
    """One passed contract check per load: 69 months a feed, plus the RTT revision and the out-of-area placements
    publications that replaced an earlier one of the same month (Performance over Provisional, Final, a _v2)."""
    checks = dict(
        serving.execute(
            "select source, count(*) from fct_data_quality where check_name = 'file_contract' and success group by 1"
        ).fetchall()
    )
    build = duckdb.connect(str(bundled_run.build_db), read_only=True)
    try:
        loads = {
            feed: build.execute(
                f"select count(*) from raw_{feed}.file_loads where action in ('loaded', 'replaced')"
            ).fetchone()[0]
            for feed in (feed.name for feed in FEEDS)
        }
        replaced_oap = build.execute("select count(*) from raw_oap.file_loads where action = 'replaced'").fetchone()[0]
    finally:
        build.close()
    assert checks == loads
    assert checks["rtt"] == 70 and checks["los_acute"] == 69
    assert checks["los_mh"] == 69 + len(RESUBMITTED_MONTHS)  # each -revised MHSDS submission replaced its month
    assert checks["acute_long_stay"] == 30 + 1  # April 2024 to September 2026, and April 2026's -v2
    assert checks["oap"] == 69 + replaced_oap and replaced_oap > 0


def test_rows_left_out_are_reported(serving):
    left_out = serving.execute(
        "select sum(observed_value) from fct_data_quality where check_name like 'row_left_out:%'"
    ).fetchone()[0]
    assert left_out > 0


def test_gx_is_warmed_up_on_a_thread_of_its_own_and_its_context_made_once():
    """The dbt step imports GX beside dbt's build (orchestration/dbt.py); the mart checks that ask for the context
    while the thread is still making it get the same one, made once."""
    from orchestration import contracts

    contracts._new_context.cache_clear()
    thread = contracts.warm_up_in_background("orchestration.analytics.marts")
    first = contracts._context()  # most often while the thread is still making it
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert contracts._context() is first
    assert contracts._new_context.cache_info().misses == 1


def test_the_definitions_leave_gx_and_statsmodels_to_the_warm_up_beside_dbt():
    """Loading the definitions (every run, ``dagster dev``) imports neither GX nor statsmodels; the warm-up the dbt
    step starts imports both, so the steps after dbt find them ready."""
    probe = (
        "import sys\nimport orchestration.definitions\n"
        "print('great_expectations' in sys.modules, 'statsmodels' in sys.modules)\n"
        "from orchestration.contracts import warm_up_in_background\n"
        "warm_up_in_background('orchestration.analytics.marts').join()\n"
        "print('great_expectations' in sys.modules, 'statsmodels' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.stdout.split() == ["False", "False", "True", "True"], result.stdout + result.stderr
