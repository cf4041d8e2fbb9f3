"""The data-quality marts say how far the data can be trusted (SPEC §8)."""

from __future__ import annotations

from datetime import date


def test_every_feed_has_its_freshness_revisions_and_suppression(serving):
    rows = {
        row[0]: row[1:]
        for row in serving.execute(
            "select source, latest_period, revisions, suppressed_share, months_held from dim_source_freshness"
        ).fetchall()
    }
    assert set(rows) == {"rtt", "oap", "los_mh", "los_acute"}
    assert all(latest == date(2026, 9, 1) and months == 69 for latest, _, _, months in rows.values())
    assert rows["rtt"][1] == 1  # November 2025 was re-published as -revised
    assert 0 < rows["oap"][2] < 1  # '*' cells exist and are counted


def test_every_loaded_partition_has_a_passed_contract_check(serving):
    checks = dict(
        serving.execute(
            "select source, count(*) from fct_data_quality where check_name = 'file_contract' and success group by 1"
        ).fetchall()
    )
    assert checks == {"rtt": 70, "oap": 69, "los_mh": 69, "los_acute": 69}


def test_rows_left_out_are_reported(serving):
    left_out = serving.execute(
        "select sum(observed_value) from fct_data_quality where check_name like 'row_left_out:%'"
    ).fetchone()[0]
    assert left_out > 0
