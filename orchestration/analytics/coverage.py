"""Coverage study of the evaluation methods (issue 13): `collab-benefits evaluate-coverage`.

Simulated panels shaped like ours: 3, 5 or 10 treated trusts, 10 to 40 comparator trusts (drawn uniformly for each
replication), 24 months before and 24 after go-live. Each trust's value = 500 + a trust effect (sd 60) + a common
monthly pattern (seasonality of amplitude 20, a trend of 1.5 a month and a common shock of sd 5) + AR(1) noise
(ρ = 0.5, innovations sd 10); with a planted effect the treated trusts' values move by `EFFECT` from go-live.

For each method and size the study reports, over the replications: the coverage of the nominal 95% interval on the
panels with the planted effect, the rejection rate (interval excluding 0) on the panels with no effect, and the
mean interval width on the planted-effect panels. Methods:

- ``did_wild_bootstrap``: difference-in-differences with the restricted wild cluster bootstrap interval (the
  headline estimate of fct_evaluation);
- ``did_cluster_t``: the same estimate with the CR1 clustered t(G − 1) interval (the interval before issue 13);
- ``synthetic_control``: synthetic control of the treated trusts' mean from the comparators (pysyncon's Synth
  objective solved by NNLS), interval from placebo groups in space of the treated trusts' number (estimate ± their
  95% quantile of |mean post gap|);
- ``before_after`` and ``its`` (level change) on the treated trusts' mean: no comparators, so the common trend
  and season are not removed; they are here to show why they are not the headline estimate.

Every replication has its own seed derived from ``--seed``, so a run is reproducible and can be split.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date

import numpy as np
import pandas as pd

from orchestration.analytics.evaluation import (
    INFERENCE_CLUSTER_T,
    Estimate,
    _two_way_residuals,
    before_after,
    difference_in_differences,
    interrupted_time_series,
    synthetic_control,
    wild_bootstrap_interval,
)

TREATED_SIZES = (3, 5, 10)
COMPARATORS = (10, 40)
PRE_MONTHS = POST_MONTHS = 24
EFFECT = -30.0
START = date(2022, 1, 1)
GO_LIVE = date(2024, 1, 1)
METHODS = ("did_wild_bootstrap", "did_cluster_t", "synthetic_control", "before_after", "its")
HEADLINE = ("did_wild_bootstrap", "synthetic_control")


def simulate(rng: np.random.Generator, n_treated: int, n_comparators: int, effect: float) -> pd.DataFrame:
    n_months = PRE_MONTHS + POST_MONTHS
    periods = pd.date_range(START, periods=n_months, freq="MS")
    t = np.arange(n_months)
    common = 20 * np.sin(2 * np.pi * t / 12) + 1.5 * t + rng.normal(0, 5, n_months)
    post = t >= PRE_MONTHS
    n = n_treated + n_comparators
    shocks = rng.normal(0, 10, (n, n_months))
    noise = np.zeros((n, n_months))
    for k in range(n_months):
        noise[:, k] = (0.5 * noise[:, k - 1] if k else 0.0) + shocks[:, k]
    values = 500 + rng.normal(0, 60, (n, 1)) + common + noise
    values[:n_treated] += effect * post
    return pd.DataFrame(
        {
            "org_code": np.repeat([f"T{i:02d}" for i in range(n)], n_months),
            "period_month": np.tile(periods, n),
            "value": values.ravel(),
            "treated": np.repeat(np.arange(n) < n_treated, n_months),
        }
    )


def did_both_ways(panel: pd.DataFrame) -> dict[str, Estimate]:
    """The DiD estimate with both intervals from one fit: the CR1 one from `difference_in_differences` and the
    bootstrap one from `wild_bootstrap_interval` on the same data, exactly as `difference_in_differences` computes
    it by default (checked in tests/test_coverage.py), without fitting the two-way model twice."""
    cr1 = difference_in_differences(panel, GO_LIVE, pre_trend_months=0, inference=INFERENCE_CLUSTER_T)
    data = panel.assign(
        month=pd.factorize(panel["period_month"])[0],
        treated_post=(panel["treated"] & (pd.to_datetime(panel["period_month"]) >= pd.Timestamp(GO_LIVE))).astype(
            float
        ),
    )
    y, d = _two_way_residuals(data, ["value", "treated_post"]).T
    p_value, lower, upper, _ = wild_bootstrap_interval(
        y, d, pd.factorize(data["org_code"])[0], cr1.estimate, cr1.std_error
    )
    wild = Estimate(**{**cr1.__dict__, "ci_lower": lower, "ci_upper": upper, "p_value": p_value})
    return {"did_wild_bootstrap": wild, "did_cluster_t": cr1}


def _one(task: tuple[int, int, int, bool]) -> list[tuple[str, int, bool, bool, float]]:
    """(method, treated, effect planted, interval covers the truth, width) for one replication."""
    seed, n_treated, replication, planted = task
    rng = np.random.default_rng([seed, n_treated, replication, int(planted)])
    n_comparators = int(rng.integers(COMPARATORS[0], COMPARATORS[1] + 1))
    effect = EFFECT if planted else 0.0
    panel = simulate(rng, n_treated, n_comparators, effect)
    treated_mean = panel[panel["treated"]].groupby("period_month", as_index=False)["value"].mean()
    estimates = {
        **did_both_ways(panel),
        "synthetic_control": synthetic_control(panel, GO_LIVE).as_estimate(),
        "before_after": before_after(treated_mean, GO_LIVE),
        "its": interrupted_time_series(treated_mean, GO_LIVE)[0],
    }
    return [
        (method, n_treated, planted, est.ci_lower <= effect <= est.ci_upper, est.ci_upper - est.ci_lower)
        for method, est in estimates.items()
    ]


def run_study(replications: int = 500, seed: int = 13, jobs: int | None = None, sizes=TREATED_SIZES) -> pd.DataFrame:
    """The coverage table: one row per method and number of treated trusts."""
    tasks = [(seed, size, r, planted) for size in sizes for r in range(replications) for planted in (True, False)]
    jobs = jobs or min(2, os.cpu_count() or 1)
    if jobs > 1:
        # one BLAS thread per worker: the workers are the parallelism (set before the spawned workers import numpy)
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = [row for rows in pool.map(_one, tasks, chunksize=8) for row in rows]
    else:
        results = [row for task in tasks for row in _one(task)]
    frame = pd.DataFrame(results, columns=["method", "treated", "planted", "covers", "width"])
    table = (
        frame.groupby(["method", "treated"])
        .apply(
            lambda g: pd.Series(
                {
                    "replications": int(g["planted"].sum()),
                    "coverage_95": g.loc[g["planted"], "covers"].mean(),
                    "rejection_no_effect": 1 - g.loc[~g["planted"], "covers"].mean(),
                    "mean_width": g.loc[g["planted"], "width"].mean(),
                }
            ),
            include_groups=False,
        )
        .reset_index()
    )
    table["method"] = pd.Categorical(table["method"], METHODS, ordered=True)
    return table.sort_values(["method", "treated"]).reset_index(drop=True)


def format_table(table: pd.DataFrame) -> str:
    lines = [
        "| method | treated trusts | replications | coverage of 95% CI | rejection, no effect | mean CI width |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.method} | {row.treated} | {int(row.replications)} | {100 * row.coverage_95:.1f}% | "
            f"{100 * row.rejection_no_effect:.1f}% | {row.mean_width:.1f} |"
        )
    return "\n".join(lines)


def main(replications: int = 500, seed: int = 13, jobs: int | None = None) -> int:
    started = time.monotonic()
    table = run_study(replications, seed, jobs)
    print(
        f"Coverage study: {replications} replications per size with a planted effect of {EFFECT:g} and as many "
        f"with none; {PRE_MONTHS} pre and {POST_MONTHS} post months, {COMPARATORS[0]}–{COMPARATORS[1]} comparators, "
        f"AR(1) errors (rho 0.5); seed {seed}"
    )
    print(format_table(table))
    headline = table[table["method"].isin(HEADLINE) & (table["treated"] == 5)]
    ok = bool(((headline["coverage_95"] >= 0.92) & (headline["coverage_95"] <= 0.98)).all())
    print(
        f"Headline methods at 5 treated trusts {'within' if ok else 'OUTSIDE'} 92–98% coverage "
        f"[{time.monotonic() - started:.0f} s]"
    )
    return 0
