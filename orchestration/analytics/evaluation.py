"""Impact evaluation of a collaborative's go-live (SPEC §7): before/after, difference-in-differences and
interrupted time series.

Pure functions over pandas DataFrames; every model is fitted with statsmodels, and the difference-in-differences
interval comes from a restricted wild cluster bootstrap (the `wildboottest` package, Webb weights). Each returns
`Estimate`s that carry the point estimate, its standard error, a 95% confidence interval, a two-sided p-value,
the number of pre and post months used, the comparator count (0 where there are no comparators) and the
inference the interval and p-value come from (`inference`).

Conventions shared by all three methods:

- Months. `period_month` may hold dates, datetimes, timestamps or ISO strings; each value is reduced to its
  calendar month. The go-live month is the month containing `go_live`; it is the first *post* month (month 0).
  A mid-month go-live therefore counts its own month as post: pass `transition_months=1` (where offered) to
  drop that part month instead.
- Missing values. Rows whose `value` (or `period_month`, `org_code`) is missing (None/NaN) are dropped before
  anything is counted or fitted, so pre/post counts are the months that actually entered the model.
  Infinite values are an error, not missing data.
- Too few points. Fewer than 3 pre or 3 post months (after dropping missing values, windows and transition
  months) raises `ValueError` naming the method and the counts.
- A series (before/after, ITS) must have at most one row per month; a panel (DiD) at most one row per
  organisation and month. Duplicates raise `ValueError` rather than being silently averaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW
from wildboottest.wildboottest import WildboottestCL

ALPHA = 0.05
MIN_PERIODS = 3
#: Draws of the wild cluster bootstrap and its seed (fixed, so a rerun on the same data gives the same interval).
BOOTSTRAP_DRAWS = 999
BOOTSTRAP_SEED = 13
#: How far (in cluster-robust standard errors) the bootstrap interval is searched for before it is called unbounded.
MAX_INTERVAL_SES = 50.0

INFERENCE_WELCH = "welch_t"
INFERENCE_NEWEY_WEST = "newey_west_t"
INFERENCE_CLUSTER_T = "cluster_robust_t"
INFERENCE_WILD_BOOTSTRAP = "wild_cluster_bootstrap_webb_restricted"


@dataclass(frozen=True)
class Estimate:
    """One effect estimate.

    `estimate` is in the units of the metric (post minus pre, or treated minus comparator change); the CI is
    95% two-sided. `pre_periods`/`post_periods` count the distinct months used on each side of go-live.
    `pre_trend_p_value` is only set by difference-in-differences. `note` says which coefficient an ITS
    estimate is (`level`/`slope`) and carries any caveat about the fit. `inference` names where the interval
    and p-value come from (one of the ``INFERENCE_*`` constants).
    """

    method: str
    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    p_value: float
    pre_periods: int
    post_periods: int
    comparator_count: int
    pre_trend_p_value: float | None
    note: str = ""
    inference: str = ""


# --------------------------------------------------------------------------------------------------------------
# Input preparation
# --------------------------------------------------------------------------------------------------------------


def _require_columns(frame: pd.DataFrame, columns: list[str], method: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{method}: input is missing column(s) {missing}; it has {list(frame.columns)}")


def _month_index(go_live: date) -> int:
    """Month number (year × 12 + month) of the month containing `go_live`."""
    ts = pd.Timestamp(go_live)
    return ts.year * 12 + ts.month


def _prepare(frame: pd.DataFrame, keys: list[str], method: str) -> pd.DataFrame:
    """Copy of the needed columns with missing rows dropped, `value` as float, `month` = year × 12 + month."""
    _require_columns(frame, [*keys, "value"], method)
    extra = ["treated"] if "treated" in frame.columns and "org_code" in keys else []
    out = frame[[*keys, "value", *extra]].copy()
    out["value"] = pd.to_numeric(out["value"], errors="raise").astype(float)
    out = out.dropna(subset=[*keys, "value"])
    if np.isinf(out["value"]).any():
        raise ValueError(f"{method}: value contains infinite numbers")
    stamps = pd.to_datetime(out["period_month"])
    out["month"] = (stamps.dt.year * 12 + stamps.dt.month).astype(int)
    out["month_label"] = stamps.dt.strftime("%Y-%m")
    dup_keys = [k for k in keys if k != "period_month"] + ["month"]
    if out.duplicated(dup_keys).any():
        raise ValueError(f"{method}: more than one row per {' and '.join(dup_keys)}; aggregate first")
    return out.reset_index(drop=True)


def _check_counts(method: str, pre: int, post: int, extra: str = "") -> None:
    if pre < MIN_PERIODS or post < MIN_PERIODS:
        raise ValueError(
            f"{method}: too few points to estimate: {pre} pre-period and {post} post-period months with data "
            f"(need at least {MIN_PERIODS} of each){extra}"
        )


def _from_result(result, term: str) -> tuple[float, float, float, float, float]:
    lower, upper = result.conf_int(alpha=ALPHA).loc[term]
    return (
        float(result.params[term]),
        float(result.bse[term]),
        float(lower),
        float(upper),
        float(result.pvalues[term]),
    )


# --------------------------------------------------------------------------------------------------------------
# Before / after
# --------------------------------------------------------------------------------------------------------------


def before_after(
    series: pd.DataFrame, go_live: date, *, window_months: int = 12, transition_months: int = 0
) -> Estimate:
    """Mean of the `window_months` months before go-live against the `window_months` months after it.

    Pre window: the `window_months` calendar months ending the month before the go-live month. Post window: the
    `window_months` calendar months starting `transition_months` after the go-live month (the transition months
    are dropped). Months outside both windows are ignored. `estimate` = post mean − pre mean; SE, CI and p-value
    come from Welch's unequal-variance t-test (statsmodels `CompareMeans`, Welch–Satterthwaite df). Pre/post
    counts are the months with data inside each window. No comparators, no pre-trend test.
    """
    method = "before_after"
    if window_months < 1 or transition_months < 0:
        raise ValueError(f"{method}: window_months must be >= 1 and transition_months >= 0")
    data = _prepare(series, ["period_month"], method)
    g = _month_index(go_live)
    pre = data.loc[(data["month"] >= g - window_months) & (data["month"] < g), "value"].to_numpy()
    post_start = g + transition_months
    post = data.loc[(data["month"] >= post_start) & (data["month"] < post_start + window_months), "value"]
    post = post.to_numpy()
    _check_counts(method, len(pre), len(post), f" in the {window_months}-month windows")

    compare = CompareMeans(DescrStatsW(post), DescrStatsW(pre))
    _t, p_value, _df = compare.ttest_ind(alternative="two-sided", usevar="unequal")
    lower, upper = compare.tconfint_diff(alpha=ALPHA, alternative="two-sided", usevar="unequal")
    note = "Welch t-test"
    if transition_months:
        note += f"; {transition_months} transition month(s) after go-live excluded"
    return Estimate(
        method=method,
        estimate=float(post.mean() - pre.mean()),
        std_error=float(compare.std_meandiff_separatevar),
        ci_lower=float(lower),
        ci_upper=float(upper),
        p_value=float(p_value),
        pre_periods=len(pre),
        post_periods=len(post),
        comparator_count=0,
        pre_trend_p_value=None,
        note=note,
        inference=INFERENCE_WELCH,
    )


# --------------------------------------------------------------------------------------------------------------
# Difference-in-differences
# --------------------------------------------------------------------------------------------------------------


def _cluster_fit(formula: str, data: pd.DataFrame):
    groups = pd.factorize(data["org_code"], sort=True)[0]
    # use_t: t(G − 1) reference distribution with the usual small-sample correction, as Stata does.
    return smf.ols(formula, data=data).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)


def _two_way_residuals(data: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """`columns` of `data` with the organisation and month fixed effects partialled out (Frisch–Waugh–Lovell):
    the DiD coefficient, its residuals and so its bootstrap are the same as in the full two-way model."""
    org = pd.factorize(data["org_code"], sort=True)[0]
    month = pd.factorize(data["month"], sort=True)[0]
    n = len(data)
    design = np.zeros((n, org.max() + month.max() + 1))
    design[:, 0] = 1.0
    rows = np.arange(n)
    design[rows[org > 0], org[org > 0]] = 1.0
    design[rows[month > 0], org.max() + month[month > 0]] = 1.0
    values = data[columns].to_numpy(dtype=float)
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coefficients


def _wild_bootstrap_p_value(y: np.ndarray, d: np.ndarray, clusters: np.ndarray, null: float, draws: int, seed: int):
    """Two-sided p-value of H0: coefficient = `null` in y = d β + e (fixed effects already partialled out) by the
    restricted wild cluster bootstrap (WCR, CR1 t-statistic, Webb six-point weights) of `wildboottest`.

    The library's own denominator step defines a numba kernel inside the method, so it is compiled again on
    every call (about a second), which an interval found by test inversion cannot afford; the same sum,
    Σ_g (C_g v_gb − Σ_h H_gh v_hb)², is computed here with NumPy from the library's scores and weights."""
    boot = WildboottestCL(
        X=d.reshape(-1, 1), Y=y - null * d, cluster=clusters, R=np.array([1.0]), B=draws, seed=seed, parallel=False
    )
    boot.get_scores(bootstrap_type="11", impose_null=True)
    boot.get_weights(weights_type="webb")
    boot.get_numer()
    a = np.array([boot.R @ boot.tXXinv @ xx @ boot.tXXinv for xx in boot.tXgXg_list])  # G × k
    h = a @ boot.scores_mat  # H[g, h]
    z = boot.Cg[:, None] * boot.v - h @ boot.v
    boot.denom = boot.ssc * np.sum(z**2, axis=0)
    boot.get_tboot()
    boot.get_vcov()
    boot.get_tstat()
    boot.get_pvalue(pval_type="two-tailed")
    return float(np.asarray(boot.pvalue).ravel()[0])


def wild_bootstrap_interval(
    y: np.ndarray,
    d: np.ndarray,
    clusters: np.ndarray,
    estimate: float,
    std_error: float,
    *,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = BOOTSTRAP_SEED,
    alpha: float = ALPHA,
) -> tuple[float, float, float, bool]:
    """(p-value of β = 0, lower, upper, bounded) by inverting the restricted wild cluster bootstrap test.

    Every test uses the same draws (same seed), so the p-value is a step function of the hypothesised value; each
    end of the interval is the hypothesised value where it falls below `alpha`, found by bisection to 0.1% of a
    standard error from a bracket widened in steps of the cluster-robust SE. With very few treated clusters the
    restricted bootstrap's p-value may never fall below `alpha` (the interval is unbounded, MacKinnon & Webb
    2018); the search then stops at `MAX_INTERVAL_SES` standard errors and `bounded` is False."""
    scale = std_error if std_error > 0 and np.isfinite(std_error) else max(abs(estimate), 1.0)

    def p(null: float) -> float:
        return _wild_bootstrap_p_value(y, d, clusters, null, draws, seed)

    bounded = True
    ends = []
    for side in (-1.0, 1.0):
        inner, step = estimate, 2.0
        outer = estimate + side * step * scale
        while p(outer) >= alpha:
            inner = outer
            step *= 2
            if step > MAX_INTERVAL_SES:
                outer, bounded = estimate + side * MAX_INTERVAL_SES * scale, False
                break
            outer = estimate + side * step * scale
        else:
            while abs(outer - inner) > 1e-3 * scale:
                middle = (inner + outer) / 2
                if p(middle) >= alpha:
                    inner = middle
                else:
                    outer = middle
            outer = (inner + outer) / 2
        ends.append(outer)
    return p(0.0), ends[0], ends[1], bounded


def difference_in_differences(
    panel: pd.DataFrame,
    go_live: date,
    *,
    transition_months: int = 0,
    pre_trend_months: int = 12,
    inference: str = INFERENCE_WILD_BOOTSTRAP,
    bootstrap_draws: int = BOOTSTRAP_DRAWS,
    bootstrap_seed: int = BOOTSTRAP_SEED,
) -> Estimate:
    """Two-way fixed-effects difference-in-differences on an organisation-month panel.

    `panel` has `org_code`, `period_month`, `value` and `treated` (bool, constant within an organisation:
    True for the collaborative's members, False for comparators). Months from the go-live month onwards are post;
    the first `transition_months` of them are dropped for every organisation. All remaining months in the panel
    are used (restrict the panel beforehand to choose a window).

    Model: `value ~ treated_post + C(org_code) + C(period_month)` by OLS, where `treated_post` = treated × post
    (the main effects are absorbed by the organisation and month fixed effects); SEs clustered by organisation,
    inference on t(G − 1) with G organisations (CR1, as Stata). With few treated organisations cluster-robust
    SEs are known to be too small (in simulation, 5 treated and 15 comparators: ~89% coverage of the nominal 95%
    CI; 10 and 10: ~96%). So by default (`inference='wild_cluster_bootstrap_webb_restricted'`) the p-value and
    the 95% interval come from the restricted wild cluster bootstrap (Webb weights, `bootstrap_draws` draws,
    `bootstrap_seed`), the interval by test inversion (`wild_bootstrap_interval`); `std_error` stays the CR1
    standard error. `inference='cluster_robust_t'` gives the CR1 t(G − 1) interval (kept for the coverage study).
    See `collab-benefits evaluate-coverage` for the coverage of each.
    `comparator_count` = number of untreated organisations with data. Pre/post counts = distinct months with data
    before go-live / from go-live + transition.

    Pre-trend test (linear-trend version, not an event study): on the last `pre_trend_months` pre-period months
    only, `value ~ C(org_code) + C(period_month) + treated_time` with `treated_time` = treated × month index,
    clustered by organisation; `pre_trend_p_value` is the p-value of `treated_time` (small = treated and
    comparators were already diverging before go-live, so the parallel-trends assumption is doubtful). It is
    None when fewer than 3 pre months are available for it (`pre_trend_months=0` skips it).
    """
    method = "difference_in_differences"
    if transition_months < 0:
        raise ValueError(f"{method}: transition_months must be >= 0")
    _require_columns(panel, ["org_code", "period_month", "value", "treated"], method)
    data = _prepare(panel, ["org_code", "period_month"], method)
    if data["treated"].isna().any():
        raise ValueError(f"{method}: treated is missing for some rows")
    data["treated"] = data["treated"].astype(bool)
    per_org = data.groupby("org_code")["treated"].nunique()
    if (per_org > 1).any():
        bad = sorted(per_org[per_org > 1].index.astype(str))[:5]
        raise ValueError(f"{method}: treated must be constant within an organisation; it varies for {bad}")

    g = _month_index(go_live)
    post_start = g + transition_months
    data = data[(data["month"] < g) | (data["month"] >= post_start)].copy()
    data["post"] = data["month"] >= post_start
    pre_periods = int(data.loc[~data["post"], "month"].nunique())
    post_periods = int(data.loc[data["post"], "month"].nunique())
    treated_orgs = int(data.loc[data["treated"], "org_code"].nunique())
    comparator_count = int(data.loc[~data["treated"], "org_code"].nunique())
    _check_counts(
        method, pre_periods, post_periods, f" ({treated_orgs} treated, {comparator_count} comparator organisations)"
    )
    for label, flag in (("treated", True), ("comparator", False)):
        rows = data[data["treated"] == flag]
        n_pre, n_post = int((~rows["post"]).sum()), int(rows["post"].sum())
        if n_pre == 0 or n_post == 0:
            raise ValueError(
                f"{method}: {label} organisations need data both before and after go-live; "
                f"they have {n_pre} pre and {n_post} post rows ({treated_orgs} treated, "
                f"{comparator_count} comparator organisations)"
            )

    data["treated_post"] = (data["treated"] & data["post"]).astype(float)
    result = _cluster_fit("value ~ treated_post + C(org_code) + C(month_label)", data)
    estimate, std_error, lower, upper, p_value = _from_result(result, "treated_post")

    notes = ["two-way fixed effects, SE clustered by organisation"]
    if inference == INFERENCE_WILD_BOOTSTRAP:
        y, d = _two_way_residuals(data, ["value", "treated_post"]).T
        clusters = pd.factorize(data["org_code"], sort=True)[0]
        p_value, lower, upper, bounded = wild_bootstrap_interval(
            y, d, clusters, estimate, std_error, draws=bootstrap_draws, seed=bootstrap_seed
        )
        notes.append(
            f"95% interval and p-value by restricted wild cluster bootstrap (Webb weights, {bootstrap_draws} draws,"
            f" seed {bootstrap_seed}) over {treated_orgs} treated and {comparator_count} comparator organisations"
        )
        if not bounded:
            notes.append(
                f"the bootstrap interval is unbounded (cut at {MAX_INTERVAL_SES:g} standard errors): too few treated"
                " organisations to bound it"
            )
    elif inference == INFERENCE_CLUSTER_T:
        if min(treated_orgs, comparator_count) < 10:
            notes.append(
                f"{treated_orgs} treated and {comparator_count} comparator organisations: with few clusters on one"
                " side clustered SEs tend to be too small (CI under-covers)"
            )
    else:
        raise ValueError(f"{method}: unknown inference {inference!r}")
    if transition_months:
        notes.append(f"{transition_months} transition month(s) after go-live excluded")

    pre_trend_p_value = _pre_trend_p_value(data[~data["post"]], pre_trend_months)
    if pre_trend_p_value is None:
        notes.append("pre-trend test not run: fewer than 3 months in its window")
    return Estimate(
        method="did",
        estimate=estimate,
        std_error=std_error,
        ci_lower=lower,
        ci_upper=upper,
        p_value=p_value,
        pre_periods=pre_periods,
        post_periods=post_periods,
        comparator_count=comparator_count,
        pre_trend_p_value=pre_trend_p_value,
        note="; ".join(notes),
        inference=inference,
    )


def _pre_trend_p_value(pre: pd.DataFrame, pre_trend_months: int) -> float | None:
    months = sorted(pre["month"].unique())[-pre_trend_months:] if pre_trend_months > 0 else []
    if len(months) < MIN_PERIODS:
        return None
    pre = pre[pre["month"].isin(months)].copy()
    if pre["treated"].nunique() < 2:
        return None
    pre["treated_time"] = pre["treated"].astype(float) * (pre["month"] - pre["month"].min())
    result = _cluster_fit("value ~ treated_time + C(org_code) + C(month_label)", pre)
    p_value = float(result.pvalues["treated_time"])
    return None if np.isnan(p_value) else p_value


# --------------------------------------------------------------------------------------------------------------
# Interrupted time series
# --------------------------------------------------------------------------------------------------------------


def interrupted_time_series(
    series: pd.DataFrame, go_live: date, *, maxlags: int | None = None
) -> tuple[Estimate, Estimate]:
    """Segmented regression of one series: `value ~ time + post + time_since_go_live`, Newey–West SEs.

    `time` = months since the first month with data; `post` = 1 from the go-live month; `time_since_go_live` =
    months since the go-live month from then on (0 before and in the go-live month). The `post` coefficient is
    the level change at go-live relative to the extrapolated pre trend; `time_since_go_live` is the change in
    monthly slope. All months in the series are used.

    SEs are HAC (Newey–West, Bartlett kernel) with `maxlags` lags; the default is floor(4 (n/100)^(2/9)) (Newey
    & West 1994; 3 lags for 48 months), with statsmodels' n/(n − k) small-sample correction, and inference uses
    t(n − 4). HAC lags count rows, so with months missing they are approximate. In short series Newey–West CIs
    are somewhat too narrow (about 87–89% coverage at 48 months with iid noise in simulation; fewer lags help when
    the noise is not autocorrelated).
    Returns (level change, slope change), both `method='its'`, `note` 'level' and 'slope'.
    """
    method = "interrupted_time_series"
    data = _prepare(series, ["period_month"], method).sort_values("month").reset_index(drop=True)
    g = _month_index(go_live)
    data["post"] = (data["month"] >= g).astype(float)
    pre_periods, post_periods = int((data["post"] == 0).sum()), int((data["post"] == 1).sum())
    _check_counts(method, pre_periods, post_periods)
    data["time"] = (data["month"] - data["month"].min()).astype(float)
    data["time_since_go_live"] = (data["month"] - g).clip(lower=0).astype(float)

    n = len(data)
    lags = int(np.floor(4 * (n / 100) ** (2 / 9))) if maxlags is None else int(maxlags)
    if lags < 0:
        raise ValueError(f"{method}: maxlags must be >= 0")
    result = smf.ols("value ~ time + post + time_since_go_live", data=data).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True}, use_t=True
    )

    def make(term: str, note: str) -> Estimate:
        estimate, std_error, lower, upper, p_value = _from_result(result, term)
        return Estimate(
            method="its",
            estimate=estimate,
            std_error=std_error,
            ci_lower=lower,
            ci_upper=upper,
            p_value=p_value,
            pre_periods=pre_periods,
            post_periods=post_periods,
            comparator_count=0,
            pre_trend_p_value=None,
            note=note,
            inference=INFERENCE_NEWEY_WEST,
        )

    return make("post", "level"), make("time_since_go_live", "slope")


# --------------------------------------------------------------------------------------------------------------
# Event study
# --------------------------------------------------------------------------------------------------------------

INFERENCE_CLUSTER_WALD = "cluster_robust_wald_f"
#: Event times are binned at the ends: the first lead holds every month up to it, the last lag every month from it.
EVENT_STUDY_LEADS = 6
EVENT_STUDY_LAGS = 12
#: The omitted (reference) event time: the month before go-live.
EVENT_STUDY_REFERENCE = -1


@dataclass(frozen=True)
class EventTimeEstimate:
    """The treated-minus-comparator difference at one event time, relative to the month before go-live.

    `event_time` is months from the go-live month (0 = go-live month); the first and last are bins
    (`is_binned`: every month at or before the first lead, at or after the last lag). The reference month
    (−1) is a row with estimate 0 and no interval. `months` counts the calendar months in the bin."""

    event_time: int
    estimate: float
    ci_lower: float
    ci_upper: float
    p_value: float
    is_binned: bool
    is_reference: bool
    months: int
    bounded: bool


@dataclass(frozen=True)
class EventStudy:
    """Leads and lags around go-live with the joint test of the leads (pre-trend)."""

    estimates: list[EventTimeEstimate]
    pre_periods: int
    post_periods: int
    treated_count: int
    comparator_count: int
    pre_trend_p_value: float | None
    pre_trend_inference: str
    inference: str
    note: str


def event_study(
    panel: pd.DataFrame,
    go_live: date,
    *,
    leads: int = EVENT_STUDY_LEADS,
    lags: int = EVENT_STUDY_LAGS,
    inference: str = INFERENCE_WILD_BOOTSTRAP,
    bootstrap_draws: int = BOOTSTRAP_DRAWS,
    bootstrap_seed: int = BOOTSTRAP_SEED,
) -> EventStudy:
    """Event study on the same organisation-month panel as `difference_in_differences` (same comparators).

    Model: `value ~ Σ_k treated × 1[event_time = k] + C(org_code) + C(month)` by OLS, k from −`leads` to
    `lags` except the reference month −1, with event times binned at the ends (every month ≤ −`leads` in the
    first lead, every month ≥ `lags` in the last lag). Each coefficient is the treated-minus-comparator
    difference at that event time relative to the month before go-live. Transition months are kept: the event
    study is there to show them.

    Each coefficient's 95% interval and p-value come, as for the DiD, from the restricted wild cluster bootstrap
    (Webb weights, `bootstrap_draws`, `bootstrap_seed`) by test inversion, on the coefficient with the fixed
    effects and the other event-time terms partialled out (Frisch–Waugh–Lovell: the same coefficient, residuals
    and bootstrap as in the full model). `inference='cluster_robust_t'` gives CR1 t(G − 1) intervals instead.

    Pre-trend: the leads (every event time before −1) jointly zero, by a cluster-robust Wald F test
    (`cluster_robust_wald_f`, F(q, G − 1)); with few clusters this test over-rejects somewhat, so a small
    p-value is a caution, not a verdict. None when there are fewer than 2 leads with data.
    """
    method = "event_study"
    if leads < 2 or lags < 0:
        raise ValueError(f"{method}: leads must be >= 2 and lags >= 0")
    _require_columns(panel, ["org_code", "period_month", "value", "treated"], method)
    data = _prepare(panel, ["org_code", "period_month"], method)
    if data["treated"].isna().any():
        raise ValueError(f"{method}: treated is missing for some rows")
    data["treated"] = data["treated"].astype(bool)
    if (data.groupby("org_code")["treated"].nunique() > 1).any():
        raise ValueError(f"{method}: treated must be constant within an organisation")
    g = _month_index(go_live)
    data["raw_event_time"] = data["month"] - g
    data["event_time"] = data["raw_event_time"].clip(lower=-leads, upper=lags)
    pre_periods = int(data.loc[data["raw_event_time"] < 0, "month"].nunique())
    post_periods = int(data.loc[data["raw_event_time"] >= 0, "month"].nunique())
    treated_count = int(data.loc[data["treated"], "org_code"].nunique())
    comparator_count = int(data.loc[~data["treated"], "org_code"].nunique())
    _check_counts(method, pre_periods, post_periods, f" ({treated_count} treated, {comparator_count} comparators)")
    if treated_count == 0 or comparator_count == 0:
        raise ValueError(f"{method}: needs treated and comparator organisations ({treated_count}, {comparator_count})")
    treated_times = set(data.loc[data["treated"], "event_time"])
    if EVENT_STUDY_REFERENCE not in treated_times:
        raise ValueError(f"{method}: the treated organisations have no data in the reference month (−1)")
    times = [k for k in range(-leads, lags + 1) if k != EVENT_STUDY_REFERENCE and k in treated_times]
    terms = {k: f"es_{'m' if k < 0 else 'p'}{abs(k)}" for k in times}
    for k, name in terms.items():
        data[name] = (data["treated"] & (data["event_time"] == k)).astype(float)
    result = _cluster_fit(f"value ~ {' + '.join(terms.values())} + C(org_code) + C(month_label)", data)

    leads_present = [terms[k] for k in times if k < EVENT_STUDY_REFERENCE]
    pre_trend_p_value = None
    if len(leads_present) >= 2:
        test = result.f_test(", ".join(f"{name} = 0" for name in leads_present))
        pre_trend_p_value = float(np.asarray(test.pvalue).ravel()[0])
        if np.isnan(pre_trend_p_value):
            pre_trend_p_value = None

    months_in = data.groupby("event_time")["month"].nunique().to_dict()
    clusters = pd.factorize(data["org_code"], sort=True)[0]
    residualised = None
    if inference == INFERENCE_WILD_BOOTSTRAP:
        residualised = _two_way_residuals(data, ["value", *terms.values()])
    elif inference != INFERENCE_CLUSTER_T:
        raise ValueError(f"{method}: unknown inference {inference!r}")
    estimates = []
    all_bounded = True
    for k in sorted([*times, EVENT_STUDY_REFERENCE]):
        binned = (k == -leads) or (k == lags)
        if k == EVENT_STUDY_REFERENCE:
            estimates.append(EventTimeEstimate(k, 0.0, 0.0, 0.0, 1.0, False, True, int(months_in.get(k, 0)), True))
            continue
        name = terms[k]
        estimate, std_error, lower, upper, p_value = _from_result(result, name)
        bounded = True
        if residualised is not None:
            column = list(terms.values()).index(name) + 1
            others = np.delete(residualised[:, 1:], column - 1, axis=1)
            y, d = residualised[:, 0], residualised[:, column]
            if others.shape[1]:  # partial the other event-time terms out too
                beta_y, *_ = np.linalg.lstsq(others, y, rcond=None)
                beta_d, *_ = np.linalg.lstsq(others, d, rcond=None)
                y, d = y - others @ beta_y, d - others @ beta_d
            p_value, lower, upper, bounded = wild_bootstrap_interval(
                y, d, clusters, estimate, std_error, draws=bootstrap_draws, seed=bootstrap_seed
            )
        all_bounded &= bounded
        estimates.append(
            EventTimeEstimate(k, estimate, lower, upper, p_value, binned, False, int(months_in.get(k, 0)), bounded)
        )
    notes = [
        f"two-way fixed effects, reference month {EVENT_STUDY_REFERENCE}, event times binned at ≤ −{leads} and "
        f"≥ {lags}; leads tested jointly by cluster-robust Wald F"
    ]
    if inference == INFERENCE_WILD_BOOTSTRAP:
        notes.append(
            f"intervals by restricted wild cluster bootstrap (Webb weights, {bootstrap_draws} draws, seed "
            f"{bootstrap_seed}) over {treated_count} treated and {comparator_count} comparator organisations"
        )
    if not all_bounded:
        notes.append(f"some intervals unbounded (cut at {MAX_INTERVAL_SES:g} standard errors)")
    return EventStudy(
        estimates=estimates,
        pre_periods=pre_periods,
        post_periods=post_periods,
        treated_count=treated_count,
        comparator_count=comparator_count,
        pre_trend_p_value=pre_trend_p_value,
        pre_trend_inference=INFERENCE_CLUSTER_WALD,
        inference=inference,
        note="; ".join(notes),
    )


# --------------------------------------------------------------------------------------------------------------
# Synthetic control
# --------------------------------------------------------------------------------------------------------------

INFERENCE_PLACEBO_IN_SPACE = "placebo_groups_in_space"
#: Donors and pre-period months a synthetic control needs.
SYNTHETIC_MIN_DONORS = 4
SYNTHETIC_MIN_PRE_PERIODS = 6
#: A placebo group leaves at least this many donors to build its own synthetic control from.
SYNTHETIC_MIN_PLACEBO_POOL = 3
#: At most this many placebo groups (all of them when there are fewer; else a seeded sample of distinct ones).
SYNTHETIC_MAX_PLACEBO_GROUPS = 200


@dataclass(frozen=True)
class SyntheticControl:
    """A synthetic control of the treated trusts' mean series, with its placebos in space.

    `estimate` is the mean gap (treated − synthetic) over the post months; `pre_rmspe`/`post_rmspe` the root
    mean squared gap before go-live and after. Inference comes from placebo groups: groups of
    `placebo_group_size` donors (as many as the collaborative has members, fewer where the donor pool is too small),
    each group's mean treated as if it had gone live, with the other donors as its pool. The 95% interval is
    `estimate` ± the placebo groups' 95% quantile (numpy 'higher') of |mean post gap|, and the p-value
    (1 + groups with |mean post gap| ≥ |estimate|) / (groups + 1), so the interval excludes 0 exactly when the
    p-value is small. `placebo_gaps` holds every group's mean post gap. `weights` maps each donor to its weight;
    `placebos` has one row per single donor treated as if it had gone live (its own estimate, pre and post RMSPE,
    ratio): the classic in-space placebo figures, served for inspection."""

    estimate: float
    ci_lower: float
    ci_upper: float
    p_value: float
    pre_rmspe: float
    post_rmspe: float
    pre_periods: int
    post_periods: int
    treated_count: int
    donor_count: int
    weights: dict[str, float]
    placebos: pd.DataFrame
    placebo_group_size: int
    placebo_gaps: np.ndarray
    note: str

    def as_estimate(self) -> Estimate:
        return Estimate(
            method="synthetic_control",
            estimate=self.estimate,
            std_error=float("nan"),
            ci_lower=self.ci_lower,
            ci_upper=self.ci_upper,
            p_value=self.p_value,
            pre_periods=self.pre_periods,
            post_periods=self.post_periods,
            comparator_count=self.donor_count,
            pre_trend_p_value=None,
            note=self.note,
            inference=INFERENCE_PLACEBO_IN_SPACE,
        )


def synth_weights(x1: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """The synthetic-control weights of pysyncon's `Synth` with equal V over the pre-period outcomes: w ≥ 0,
    Σ w = 1, minimising ||x1 − x0 w||² (x0: months × donors). Solved exactly by Lawson–Hanson non-negative least
    squares (`scipy.optimize.nnls`) with the equality as a heavily weighted extra row; pysyncon reaches the same
    weights by SLSQP about a thousand times more slowly (tests/test_evaluation.py compares the two), which the
    placebo groups cannot afford."""
    from scipy.optimize import nnls

    x0 = np.asarray(x0, dtype=float)
    x1 = np.asarray(x1, dtype=float)
    weight = 1e4 * max(1.0, float(np.abs(x0).max()), float(np.abs(x1).max()))
    a = np.vstack([x0, np.full((1, x0.shape[1]), weight)])
    b = np.append(x1, weight)
    w, _ = nnls(a, b, maxiter=50 * max(10, x0.shape[1]))
    return w / w.sum()


def _synth_gap(unit: np.ndarray, pool: np.ndarray, pre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights, gap unit − synthetic in every month) for a unit (months) and a donor pool (months × donors)."""
    weights = synth_weights(unit[pre], pool[pre])
    return weights, unit - pool @ weights


def _rmspe(gap: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(gap, dtype=float)))))


def _placebo_groups(donor_count: int, size: int, seed: int = BOOTSTRAP_SEED) -> list[tuple[int, ...]]:
    """Every group of `size` donors when there are at most SYNTHETIC_MAX_PLACEBO_GROUPS, else that many distinct
    groups drawn with a fixed seed (the same data always give the same groups)."""
    from itertools import combinations
    from math import comb

    if comb(donor_count, size) <= SYNTHETIC_MAX_PLACEBO_GROUPS:
        return list(combinations(range(donor_count), size))
    rng = np.random.default_rng(seed)
    groups: set[tuple[int, ...]] = set()
    while len(groups) < SYNTHETIC_MAX_PLACEBO_GROUPS:
        groups.add(tuple(sorted(int(i) for i in rng.choice(donor_count, size, replace=False))))
    return sorted(groups)


def synthetic_control(
    panel: pd.DataFrame, go_live: date, *, transition_months: int = 0, alpha: float = ALPHA
) -> SyntheticControl:
    """Synthetic control (Abadie, Diamond & Hainmueller) of the treated trusts' mean series from the comparator
    trusts of the same panel as `difference_in_differences`, with weights fitted on the pre-period outcomes.

    The treated unit is the mean over the treated organisations of each month; months where the treated mean or
    any donor is missing are dropped (donors missing more than a quarter of the months are dropped first).
    Months from go-live + `transition_months` are post; the transition months are left out.

    Inference by placebo groups in space. The treated unit is a mean of several trusts and so less noisy than any
    single donor: single-donor placebos (Abadie's) are not exchangeable with it, and their interval covered 87% in
    the coverage study at 5 treated trusts. A placebo group is the mean of as many donors as there are treated
    trusts (fewer when that would leave fewer than `SYNTHETIC_MIN_PLACEBO_POOL` donors), fitted from the other
    donors exactly as the treated unit is; the interval is the estimate ± the groups' 95% quantile of |mean post
    gap| and the p-value the rank of |estimate| among them. This assumes the groups' gaps are on the treated
    unit's scale, true of rates, percentages and lengths of stay; for counts of trusts of very different sizes
    the interval is approximate.
    """
    method = "synthetic_control"
    _require_columns(panel, ["org_code", "period_month", "value", "treated"], method)
    data = _prepare(panel, ["org_code", "period_month"], method)
    data["treated"] = data["treated"].astype(bool)
    g = _month_index(go_live)
    post_start = g + transition_months
    data = data[(data["month"] < g) | (data["month"] >= post_start)]
    treated_count = int(data.loc[data["treated"], "org_code"].nunique())
    if treated_count == 0:
        raise ValueError(f"{method}: no treated organisations")
    treated = data[data["treated"]].groupby("month")["value"].mean()
    donors = data[~data["treated"]].pivot(index="month", columns="org_code", values="value").sort_index(axis=1)
    months = treated.index.union(donors.index)
    donors = donors.reindex(months)
    donors = donors.loc[:, donors.notna().mean() >= 0.75]
    keep = treated.reindex(months).notna() & donors.notna().all(axis=1)
    treated, donors = treated.reindex(months)[keep], donors[keep]
    pre = np.asarray(treated.index < g)
    pre_periods, post_periods = int(pre.sum()), int((~pre).sum())
    donor_count = donors.shape[1]
    if donor_count < SYNTHETIC_MIN_DONORS or pre_periods < SYNTHETIC_MIN_PRE_PERIODS or post_periods < MIN_PERIODS:
        raise ValueError(
            f"{method}: needs at least {SYNTHETIC_MIN_DONORS} donors with data, {SYNTHETIC_MIN_PRE_PERIODS} pre and "
            f"{MIN_PERIODS} post months; has {donor_count} donors, {pre_periods} pre and {post_periods} post months"
        )
    y = treated.to_numpy(dtype=float)
    pool = donors.to_numpy(dtype=float)

    weights, gap = _synth_gap(y, pool, pre)
    estimate, pre_rmspe, post_rmspe = float(gap[~pre].mean()), _rmspe(gap[pre]), _rmspe(gap[~pre])

    rows = []
    for j, donor in enumerate(donors.columns):
        _w, donor_gap = _synth_gap(pool[:, j], np.delete(pool, j, axis=1), pre)
        rows.append(
            {
                "org_code": donor,
                "estimate": float(donor_gap[~pre].mean()),
                "pre_rmspe": _rmspe(donor_gap[pre]),
                "post_rmspe": _rmspe(donor_gap[~pre]),
            }
        )
    placebos = pd.DataFrame(rows)
    placebos["ratio"] = placebos["post_rmspe"] / placebos["pre_rmspe"].clip(lower=1e-12)

    size = max(1, min(treated_count, donor_count - SYNTHETIC_MIN_PLACEBO_POOL))
    groups = _placebo_groups(donor_count, size)
    gaps = []
    for group in groups:
        members = list(group)
        _w, group_gap = _synth_gap(pool[:, members].mean(axis=1), np.delete(pool, members, axis=1), pre)
        gaps.append(float(group_gap[~pre].mean()))
    placebo_gaps = np.asarray(gaps)
    half = float(np.quantile(np.abs(placebo_gaps), 1 - alpha, method="higher"))
    p_value = float((1 + (np.abs(placebo_gaps) >= abs(estimate)).sum()) / (len(groups) + 1))
    note = (
        f"synthetic control weights (non-negative, summing to 1; pysyncon's Synth objective with equal V, solved by "
        f"NNLS) on {pre_periods} pre-period months over {donor_count} donors; pre-period RMSPE {pre_rmspe:.3g}; "
        f"95% interval and p-value from {len(groups)} placebo groups of {size} donor(s) each treated as if it had "
        f"gone live (interval = estimate ± their 95% quantile of |mean post gap|, {half:.3g})"
    )
    if size < treated_count:
        note += f"; groups smaller than the {treated_count} members: too few donors, so the interval is wider"
    if len(groups) < 19:
        note += f"; with {len(groups)} placebo groups the smallest possible p-value is {1 / (len(groups) + 1):.3f}"
    if transition_months:
        note += f"; {transition_months} transition month(s) after go-live excluded"
    return SyntheticControl(
        estimate=estimate,
        ci_lower=estimate - half,
        ci_upper=estimate + half,
        p_value=p_value,
        pre_rmspe=pre_rmspe,
        post_rmspe=post_rmspe,
        pre_periods=pre_periods,
        post_periods=post_periods,
        treated_count=treated_count,
        donor_count=donor_count,
        weights={str(k): float(w) for k, w in zip(donors.columns, weights, strict=True)},
        placebos=placebos,
        placebo_group_size=size,
        placebo_gaps=placebo_gaps,
        note=note,
    )
