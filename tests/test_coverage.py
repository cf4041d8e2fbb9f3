"""The coverage study of `collab-benefits evaluate-coverage` (issue 13), in a fast version."""

from __future__ import annotations

import numpy as np
import pytest

from orchestration.analytics import coverage
from orchestration.analytics.evaluation import difference_in_differences


def test_the_study_computes_the_bootstrap_interval_as_the_mart_does():
    panel = coverage.simulate(np.random.default_rng(1), 5, 15, coverage.EFFECT)
    both = coverage.did_both_ways(panel)
    mart = difference_in_differences(panel, coverage.GO_LIVE, pre_trend_months=0)
    wild = both["did_wild_bootstrap"]
    assert (wild.estimate, wild.ci_lower, wild.ci_upper, wild.p_value) == pytest.approx(
        (mart.estimate, mart.ci_lower, mart.ci_upper, mart.p_value)
    )
    assert both["did_cluster_t"].inference == "cluster_robust_t"


def test_a_small_study_has_a_row_per_method_and_size_and_plausible_rates():
    table = coverage.run_study(replications=12, seed=3, jobs=1, sizes=(5,))
    assert list(table["method"]) == list(coverage.METHODS) and set(table["treated"]) == {5}
    assert (table["replications"] == 12).all()
    wild = table[table["method"] == "did_wild_bootstrap"].iloc[0]
    assert wild["coverage_95"] >= 10 / 12 and wild["rejection_no_effect"] <= 2 / 12
    assert (table["mean_width"] > 0).all()
    # before/after ignores the common trend of 1.5 a month: it misses the planted effect
    assert table.loc[table["method"] == "before_after", "coverage_95"].item() < 0.5
    text = coverage.format_table(table)
    assert text.startswith("| method |") and "did_wild_bootstrap | 5 | 12 |" in text
