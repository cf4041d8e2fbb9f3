"""Evaluation methods of SPEC §7 on simulated data with known, planted effects."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest

from orchestration.analytics.evaluation import (
    Estimate,
    before_after,
    difference_in_differences,
    event_study,
    interrupted_time_series,
    synth_weights,
    synthetic_control,
)

START = date(2022, 1, 1)
GO_LIVE = date(2023, 7, 1)  # month 18 of 36: 18 pre and 18 post months


def months(n: int, start: date = START) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="MS")


def simulate_panel(
    seed: int,
    *,
    effect: float = 0.0,
    n_treated: int = 5,
    n_comparators: int = 15,
    n_months: int = 36,
    go_live: date = GO_LIVE,
    treated_pre_slope: float = 0.0,
) -> pd.DataFrame:
    """Organisation effects + common seasonal pattern and trend + AR(1) noise; `effect` added to treated orgs
    from go-live; `treated_pre_slope` adds a diverging trend to treated orgs (violating parallel trends)."""
    rng = np.random.default_rng(seed)
    periods = months(n_months)
    t = np.arange(n_months)
    common = 20 * np.sin(2 * np.pi * t / 12) + 1.5 * t + rng.normal(0, 5, n_months)
    post = periods >= pd.Timestamp(go_live)
    rows = []
    for i in range(n_treated + n_comparators):
        treated = i < n_treated
        noise = np.zeros(n_months)
        shocks = rng.normal(0, 10, n_months)
        for k in range(n_months):
            noise[k] = (0.5 * noise[k - 1] if k else 0.0) + shocks[k]
        value = 500 + rng.normal(0, 60) + common + noise
        if treated:
            value = value + effect * post + treated_pre_slope * t
        rows.append(
            pd.DataFrame({"org_code": f"R{i:02d}", "period_month": periods.date, "value": value, "treated": treated})
        )
    return pd.concat(rows, ignore_index=True)


def simulate_series(seed: int, *, n_months: int, go_live: date, level: float, slope: float, sd: float = 3.0):
    rng = np.random.default_rng(seed)
    periods = months(n_months)
    t = np.arange(n_months)
    since = np.clip(t - int((periods < pd.Timestamp(go_live)).sum()), 0, None)
    post = periods >= pd.Timestamp(go_live)
    value = 200 + 1.0 * t + level * post + slope * since + rng.normal(0, sd, n_months)
    return pd.DataFrame({"period_month": periods.date, "value": value})


def covers(est: Estimate, x: float) -> bool:
    return est.ci_lower <= x <= est.ci_upper


# --- difference-in-differences -------------------------------------------------------------------------------


def test_did_recovers_a_planted_effect():
    est = difference_in_differences(simulate_panel(3, effect=-30.0), GO_LIVE)
    assert est.method == "did"
    assert covers(est, -30.0)
    assert not covers(est, 0.0)
    assert est.ci_upper < 0
    assert est.p_value < 0.01
    assert est.ci_lower < est.estimate < est.ci_upper
    assert est.std_error > 0
    assert (est.pre_periods, est.post_periods, est.comparator_count) == (18, 18, 15)
    assert est.pre_trend_p_value is not None and est.pre_trend_p_value > 0.05


def test_did_with_no_effect_covers_zero():
    est = difference_in_differences(simulate_panel(2), GO_LIVE)
    assert covers(est, 0.0)
    assert est.p_value > 0.05


def test_did_confidence_interval_covers_zero_across_seeds():
    # few treated clusters make clustered CIs a little narrow (~89% coverage in simulation), hence 17 of 20
    hits = sum(
        covers(difference_in_differences(simulate_panel(100 + s), GO_LIVE, pre_trend_months=0), 0.0) for s in range(20)
    )
    assert hits >= 17


def test_did_pre_trend_violation_gives_small_pre_trend_p_value():
    est = difference_in_differences(simulate_panel(1, treated_pre_slope=3.0), GO_LIVE)
    assert est.pre_trend_p_value is not None
    assert est.pre_trend_p_value < 0.01


def test_did_transition_months_and_missing_values_are_dropped():
    panel = simulate_panel(4, effect=-30.0)
    go = pd.Timestamp(GO_LIVE)
    # wild values in the transition months must not move the estimate; missing values are dropped
    panel.loc[panel["treated"] & (pd.to_datetime(panel["period_month"]) == go), "value"] = 10_000.0
    panel.loc[[0, 1, 2], "value"] = np.nan
    est = difference_in_differences(panel, GO_LIVE, transition_months=2)
    assert covers(est, -30.0)
    assert (est.pre_periods, est.post_periods) == (18, 16)
    assert "transition" in est.note


def test_did_rejects_treatment_that_varies_within_an_organisation():
    panel = simulate_panel(5)
    panel.loc[0, "treated"] = False
    with pytest.raises(ValueError, match="constant within an organisation"):
        difference_in_differences(panel, GO_LIVE)


def test_did_needs_comparators():
    panel = simulate_panel(5)
    panel = panel[panel["treated"]]
    with pytest.raises(ValueError, match="comparator"):
        difference_in_differences(panel, GO_LIVE)


def test_did_too_few_points_raises():
    panel = simulate_panel(6)
    short = panel[pd.to_datetime(panel["period_month"]) >= pd.Timestamp("2023-05-01")]
    with pytest.raises(ValueError, match=r"difference_in_differences: too few points.*2 pre-period and 18 post"):
        difference_in_differences(short, GO_LIVE)


# --- before / after ------------------------------------------------------------------------------------------


def step_series(seed: int, step: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    periods = months(36)
    value = 100 + step * (periods >= pd.Timestamp(GO_LIVE)) + rng.normal(0, 5, 36)
    return pd.DataFrame({"period_month": periods, "value": value})


def test_before_after_recovers_a_step():
    est = before_after(step_series(7, -20.0), GO_LIVE)
    assert est.method == "before_after"
    assert covers(est, -20.0)
    assert not covers(est, 0.0)
    assert (est.pre_periods, est.post_periods, est.comparator_count) == (12, 12, 0)
    assert est.pre_trend_p_value is None


def test_before_after_uses_the_windows_and_skips_the_transition():
    series = step_series(8, -20.0)
    stamps = pd.to_datetime(series["period_month"])
    go = pd.Timestamp(GO_LIVE)
    series.loc[stamps == go, "value"] = 10_000.0  # transition month: excluded
    series.loc[stamps < go - pd.DateOffset(months=12), "value"] = -10_000.0  # before the pre window: ignored
    series.loc[stamps == go - pd.DateOffset(months=3), "value"] = np.nan  # missing: dropped
    est = before_after(series, GO_LIVE, transition_months=1)
    pre = series.loc[(stamps >= go - pd.DateOffset(months=12)) & (stamps < go), "value"].dropna()
    post = series.loc[(stamps > go) & (stamps <= go + pd.DateOffset(months=12)), "value"]
    assert est.estimate == pytest.approx(post.mean() - pre.mean())
    assert (est.pre_periods, est.post_periods) == (11, 12)
    assert covers(est, -20.0)


def test_before_after_with_no_step_covers_zero():
    assert covers(before_after(step_series(9, 0.0), GO_LIVE), 0.0)


def test_before_after_too_few_points_raises():
    series = step_series(10, -20.0).iloc[16:]  # 2 months before go-live
    with pytest.raises(ValueError, match=r"before_after: too few points.*2 pre-period and 12 post-period"):
        before_after(series, GO_LIVE)


def test_before_after_rejects_duplicate_months():
    series = step_series(11, 0.0)
    with pytest.raises(ValueError, match="more than one row"):
        before_after(pd.concat([series, series.iloc[:1]]), GO_LIVE)


# --- interrupted time series ---------------------------------------------------------------------------------


def test_its_recovers_level_and_slope_changes():
    go = date(2024, 1, 1)
    level, slope = interrupted_time_series(simulate_series(12, n_months=48, go_live=go, level=-25, slope=-2), go)
    assert (level.method, level.note, slope.method, slope.note) == ("its", "level", "its", "slope")
    assert covers(level, -25.0) and not covers(level, 0.0)
    assert covers(slope, -2.0) and not covers(slope, 0.0)
    for est in (level, slope):
        assert (est.pre_periods, est.post_periods, est.comparator_count) == (24, 24, 0)
        assert est.pre_trend_p_value is None
        assert est.std_error > 0 and 0 <= est.p_value <= 1


def test_its_with_no_change_covers_zero_and_accepts_maxlags_and_gaps():
    go = date(2024, 1, 1)
    series = simulate_series(13, n_months=48, go_live=go, level=0, slope=0)
    series.loc[[5, 30], "value"] = np.nan
    level, slope = interrupted_time_series(series, go, maxlags=3)
    assert covers(level, 0.0) and covers(slope, 0.0)
    assert (level.pre_periods, level.post_periods) == (23, 23)


def test_its_too_few_points_raises():
    go = date(2024, 1, 1)
    series = simulate_series(14, n_months=26, go_live=go, level=-25, slope=-2)  # 24 pre, 2 post months
    with pytest.raises(ValueError, match=r"interrupted_time_series: too few points.*24 pre-period and 2 post"):
        interrupted_time_series(series, go)


def test_estimate_is_frozen():
    est = before_after(step_series(15, -20.0), GO_LIVE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.estimate = 0.0  # type: ignore[misc]


# --- few-cluster inference (issue 13) ------------------------------------------------------------------------


def test_did_interval_comes_from_the_wild_cluster_bootstrap_and_is_reproducible():
    panel = simulate_panel(3, effect=-30.0)
    est = difference_in_differences(panel, GO_LIVE)
    assert est.inference == "wild_cluster_bootstrap_webb_restricted"
    assert "wild cluster bootstrap (Webb weights, 999 draws" in est.note
    assert covers(est, -30.0) and est.ci_upper < 0 and est.p_value < 0.01
    again = difference_in_differences(panel, GO_LIVE)
    assert (again.ci_lower, again.ci_upper, again.p_value) == (est.ci_lower, est.ci_upper, est.p_value)
    cr1 = difference_in_differences(panel, GO_LIVE, inference="cluster_robust_t")
    assert cr1.inference == "cluster_robust_t" and cr1.estimate == est.estimate
    assert cr1.std_error == est.std_error


def test_bootstrap_denominator_matches_the_library():
    """The NumPy denominator used for speed is the library's own (numba) one."""
    from wildboottest.wildboottest import WildboottestCL

    from orchestration.analytics.evaluation import _wild_bootstrap_p_value

    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(8), 12)
    d = (clusters < 3).astype(float) - 0.3 + rng.normal(0, 0.1, 96)
    y = 0.4 * d + rng.normal(0, 1, 96) + rng.normal(0, 1, 8)[clusters]
    boot = WildboottestCL(X=d.reshape(-1, 1), Y=y - 0.1 * d, cluster=clusters, R=np.array([1.0]), B=199, seed=5)
    boot.get_scores(bootstrap_type="11", impose_null=True)
    boot.get_weights(weights_type="webb")
    boot.get_numer()
    boot.get_denom()
    boot.get_tboot()
    boot.get_vcov()
    boot.get_tstat()
    boot.get_pvalue(pval_type="two-tailed")
    assert _wild_bootstrap_p_value(y, d, clusters, 0.1, 199, 5) == pytest.approx(float(np.ravel(boot.pvalue)[0]))


def test_did_bootstrap_covers_zero_across_seeds():
    # 20 panels with no effect, 5 treated and 15 comparators: the bootstrap interval covers zero in at least 18
    # (the coverage study, `collab-benefits evaluate-coverage`, measures it over 500).
    hits = sum(
        covers(difference_in_differences(simulate_panel(100 + s), GO_LIVE, pre_trend_months=0), 0.0) for s in range(20)
    )
    assert hits >= 18


# --------------------------------------------------------------------------------------------------------------
# Event study


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt")
def test_event_study_reproduces_a_hand_made_path_exactly():
    """No noise: every trust = its own level + a common month effect, and treated trusts add a known path by
    event time. The coefficients are that path minus its value at −1; the bins hold the mean of their months."""
    periods = months(24)  # go-live at month 12 (2023-01)
    go_live = date(2023, 1, 1)
    path = {k: (0.0 if k < 0 else -5.0 - k) for k in range(-12, 12)}
    path[-8] = 2.0  # a blip inside the −6 bin (months −12 … −6): the bin's coefficient is 2 / 7
    rows = []
    for i in range(8):
        treated = i < 3
        for m, period in enumerate(periods):
            k = m - 12
            value = 100 + 10 * i + 3 * np.sin(m) + (path[k] if treated else 0.0)
            rows.append({"org_code": f"R{i}", "period_month": period, "value": value, "treated": treated})
    study = event_study(pd.DataFrame(rows), go_live, inference="cluster_robust_t")
    got = {e.event_time: e for e in study.estimates}
    assert sorted(got) == list(range(-6, 12))
    assert got[-1].is_reference and got[-1].estimate == 0.0
    assert got[-6].is_binned and got[-6].months == 7
    assert got[-6].estimate == pytest.approx(2.0 / 7, abs=1e-8)
    for k in range(-5, -1):
        assert got[k].estimate == pytest.approx(0.0, abs=1e-8)
    for k in range(0, 11):
        assert got[k].estimate == pytest.approx(-5.0 - k, abs=1e-8)
    assert not got[11].is_binned  # 11 months after go-live in the panel: the last lag (12) is not reached
    assert (study.pre_periods, study.post_periods, study.treated_count, study.comparator_count) == (12, 12, 3, 5)


def test_event_study_recovers_a_planted_effect_with_bootstrap_intervals():
    panel = simulate_panel(3, effect=-30.0)
    study = event_study(panel, GO_LIVE)
    lags = [e for e in study.estimates if e.event_time >= 0]
    leads = [e for e in study.estimates if e.event_time < -1]
    assert all(e.ci_lower <= e.estimate <= e.ci_upper for e in study.estimates)
    # every lag excludes zero and the mean lag is near the planted −30 (each is relative to one noisy month, −1)
    assert all(e.ci_upper < 0 for e in lags)
    assert np.mean([e.estimate for e in lags]) == pytest.approx(-30.0, abs=12.0)
    assert sum(e.ci_lower <= -30.0 <= e.ci_upper for e in lags) >= len(lags) - 2
    assert sum(e.ci_lower <= 0.0 <= e.ci_upper for e in leads) >= len(leads) - 1
    assert study.inference == "wild_cluster_bootstrap_webb_restricted"
    assert study.comparator_count == 15 and study.treated_count == 5
    assert study.pre_trend_p_value is not None and study.pre_trend_p_value > 0.05
    again = event_study(panel, GO_LIVE)
    assert [e.ci_lower for e in again.estimates] == [e.ci_lower for e in study.estimates]  # seeded


def test_event_study_flags_a_pre_trend():
    panel = simulate_panel(4, effect=0.0, treated_pre_slope=3.0)
    study = event_study(panel, GO_LIVE, inference="cluster_robust_t")
    assert study.pre_trend_p_value is not None and study.pre_trend_p_value < 0.01
    assert study.pre_trend_inference == "cluster_robust_wald_f"


def test_event_study_needs_the_reference_month_and_comparators():
    panel = simulate_panel(5)
    with pytest.raises(ValueError, match="reference month"):
        event_study(panel[~(panel["treated"] & (pd.to_datetime(panel["period_month"]) == "2023-06-01"))], GO_LIVE)
    with pytest.raises(ValueError, match="comparator"):
        event_study(panel[panel["treated"]], GO_LIVE)


# --------------------------------------------------------------------------------------------------------------
# Synthetic control


def test_synthetic_control_recovers_exact_weights_and_a_planted_gap():
    """The treated trusts' mean is exactly 0.3 × D0 + 0.7 × D1 before go-live and 12 lower after: the weights
    are recovered, the pre-period fit is perfect and the gap is the planted −12."""
    rng = np.random.default_rng(7)
    periods = months(30)  # go-live at month 18
    donors = {f"D{i}": 100 + 10 * i + rng.normal(0, 5, 30).cumsum() for i in range(6)}
    target = 0.3 * donors["D0"] + 0.7 * donors["D1"]
    target[18:] -= 12.0
    rows = [
        {"org_code": org, "period_month": p, "value": v, "treated": False}
        for org, values in donors.items()
        for p, v in zip(periods, values, strict=True)
    ]
    for org, shift in (("T0", -1.0), ("T1", 1.0)):  # two treated trusts whose mean is the target
        rows += [
            {"org_code": org, "period_month": p, "value": v + shift, "treated": True}
            for p, v in zip(periods, target, strict=True)
        ]
    result = synthetic_control(pd.DataFrame(rows), GO_LIVE)
    assert result.weights["D0"] == pytest.approx(0.3, abs=0.02) and result.weights["D1"] == pytest.approx(0.7, abs=0.02)
    assert sum(result.weights.values()) == pytest.approx(1.0)
    assert result.pre_rmspe < 0.5
    assert result.estimate == pytest.approx(-12.0, abs=0.5)
    assert (result.pre_periods, result.post_periods, result.donor_count, result.treated_count) == (18, 12, 6, 2)
    # placebo groups of 2 donors (as many as the treated trusts; 4 donors are left for each group's pool): all
    # C(6, 2) = 15 of them; the p-value is the rank of |−12| among their |mean post gaps|
    assert result.placebo_group_size == 2 and len(result.placebo_gaps) == 15
    larger = int((np.abs(result.placebo_gaps) >= abs(result.estimate)).sum())
    assert result.p_value == pytest.approx((1 + larger) / 16)
    assert len(result.placebos) == 6 and set(result.placebos["org_code"]) == set(donors)
    est = result.as_estimate()
    assert est.method == "synthetic_control" and est.inference == "placebo_groups_in_space"
    assert est.comparator_count == 6


def test_synthetic_control_interval_is_the_placebo_group_quantile():
    """5 treated, 15 donors: groups of 5 donors (10 left for each group's pool); C(15, 5) = 3,003 groups is more
    than 200, so 200 distinct groups drawn with the fixed seed, the same on every run."""
    panel = simulate_panel(11, effect=-30.0, n_treated=5, n_comparators=15)
    result = synthetic_control(panel, GO_LIVE, transition_months=3)
    assert result.placebo_group_size == 5 and len(result.placebo_gaps) == 200
    half = np.quantile(np.abs(result.placebo_gaps), 0.95, method="higher")
    assert result.ci_upper - result.estimate == pytest.approx(half)
    assert result.estimate - result.ci_lower == pytest.approx(half)
    assert result.ci_lower <= -30.0 <= result.ci_upper
    assert result.ci_upper < 0
    larger = int((np.abs(result.placebo_gaps) >= abs(result.estimate)).sum())
    assert result.p_value == pytest.approx((1 + larger) / 201) and result.p_value < 0.05
    assert result.post_periods == 15  # 18 post months less the 3 transition months
    again = synthetic_control(panel, GO_LIVE, transition_months=3)
    assert np.array_equal(again.placebo_gaps, result.placebo_gaps)


def test_synthetic_weights_match_pysyncon():
    """The NNLS solution is pysyncon's Synth (equal V on the pre-period outcomes) solved exactly: the same weights
    to 0.01 and a loss no larger than SLSQP's."""
    from pysyncon import Synth

    rng = np.random.default_rng(3)
    x0 = pd.DataFrame(500 + rng.normal(0, 60, (1, 12)) + rng.normal(0, 10, (24, 12)).cumsum(axis=0))
    x1 = pd.Series(0.5 * x0[2] + 0.3 * x0[7] + 0.2 * x0[9] + rng.normal(0, 2, 24), name="treated")
    synth = Synth()
    synth.fit(X0=x0, X1=x1, Z0=x0, Z1=x1, custom_V=np.ones(24))
    theirs = np.asarray(synth.W, dtype=float)
    ours = synth_weights(x1.to_numpy(), x0.to_numpy())
    assert ours.min() >= 0 and ours.sum() == pytest.approx(1.0)
    assert np.abs(ours - theirs).max() < 0.01
    loss = lambda w: float(np.sum((x1.to_numpy() - x0.to_numpy() @ w) ** 2))  # noqa: E731
    assert loss(ours) <= loss(theirs) + 1e-9


def test_synthetic_control_needs_enough_donors():
    panel = simulate_panel(12, n_treated=3, n_comparators=3)
    with pytest.raises(ValueError, match="at least 4 donors"):
        synthetic_control(panel, GO_LIVE)
