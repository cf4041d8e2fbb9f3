"""The benefits marts computed in Python after dbt (SPEC §7): SPC for every series, benefits tracking and the
evaluation of effect. They read the dbt marts in the build database and write tables into its ``marts``
schema, so they are checked and published with the rest.

Why Python: the Making Data Count rules (runs, moving-range screening) and the statsmodels regressions are
clearer and better tested as functions than as SQL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from functools import partial

import duckdb
import numpy as np
import pandas as pd

from orchestration.analytics import benefits as rules
from orchestration.analytics.evaluation import (
    before_after,
    difference_in_differences,
    event_study,
    interrupted_time_series,
    synthetic_control,
)
from orchestration.analytics.spc import spc, spc_arrays

log = logging.getLogger(__name__)

IMPROVEMENT = {"lower": "decrease", "higher": "increase", "neutral": "neutral"}
EVALUATION_WINDOW_MONTHS = 12
EVALUATION_TRANSITION_MONTHS = 3
TRUST_TYPE_OF_COLLABORATIVE = {"acute": "acute", "mhlda": "mental_health", "community": "community"}


def _month(value) -> date:
    return pd.Timestamp(value).date().replace(day=1)


def _add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


#: The columns and types of each table, so that a warehouse with too little data for a series, a benefit or an
#: estimate still gets the table, empty, with its contract columns.
SCHEMAS: dict[str, dict[str, str]] = {
    "fct_spc": {
        "collaborative_code": "object",
        "org_code": "object",
        "metric_code": "object",
        "membership_basis": "object",
        "period_month": "datetime64[ns]",
        "value": "float64",
        "mean": "float64",
        "upl": "float64",
        "lpl": "float64",
        "upper_near_limit": "float64",
        "lower_near_limit": "float64",
        "point_type": "object",
        "special_cause_rule": "object",
        "rebase_group": "int64",
        "is_trial_limits": "bool",
        "limits_note": "object",
    },
    "fct_benefit_tracking": {
        "benefit_id": "object",
        "collaborative_code": "object",
        "metric_code": "object",
        "period_month": "datetime64[ns]",
        "monthly_value": "float64",
        "actual_value": "float64",
        "baseline_value": "float64",
        "target_value": "float64",
        "trajectory_value": "float64",
        "pct_of_target_achieved": "float64",
        "rag_status": "object",
        "spc_variation": "object",
        "spc_assurance": "object",
        "spc_mean": "float64",
        "spc_upl": "float64",
        "spc_lpl": "float64",
        "spc_point_type": "object",
        "spc_rebase_group": "float64",
        "spc_limits_note": "object",
        "is_latest_month": "bool",
    },
    "fct_evaluation": {
        "collaborative_code": "object",
        "metric_code": "object",
        "method": "object",
        "estimate_type": "object",
        "estimate": "float64",
        "std_error": "float64",
        "ci_lower": "float64",
        "ci_upper": "float64",
        "p_value": "float64",
        "pre_periods": "int64",
        "post_periods": "int64",
        "comparator_count": "int64",
        "pre_trend_p_value": "float64",
        "note": "object",
        "go_live_date": "datetime64[ns]",
        "inference": "object",
    },
    "fct_synthetic_control_donor": {
        "collaborative_code": "object",
        "metric_code": "object",
        "org_code": "object",
        "weight": "float64",
        "placebo_estimate": "float64",
        "placebo_pre_rmspe": "float64",
        "placebo_post_rmspe": "float64",
        "placebo_rmspe_ratio": "float64",
        "treated_pre_rmspe": "float64",
        "treated_rmspe_ratio": "float64",
        "donor_count": "int64",
        "pre_periods": "int64",
        "post_periods": "int64",
        "go_live_date": "datetime64[ns]",
    },
    "fct_event_study": {
        "collaborative_code": "object",
        "metric_code": "object",
        "event_time": "int64",
        "event_time_label": "object",
        "is_binned": "bool",
        "is_reference": "bool",
        "months_in_bin": "int64",
        "estimate": "float64",
        "ci_lower": "float64",
        "ci_upper": "float64",
        "p_value": "float64",
        "is_bounded": "bool",
        "inference": "object",
        "pre_periods": "int64",
        "post_periods": "int64",
        "treated_count": "int64",
        "comparator_count": "int64",
        "pre_trend_p_value": "float64",
        "pre_trend_inference": "object",
        "note": "object",
        "go_live_date": "datetime64[ns]",
    },
}


def _typed(name: str, rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows
    if frame.empty:
        frame = pd.DataFrame({column: pd.Series(dtype=kind) for column, kind in SCHEMAS[name].items()})
    return frame


def _replace_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    if frame.empty:
        types = {"object": "varchar", "float64": "double", "int64": "bigint", "bool": "boolean"}
        columns = ", ".join(
            f'"{column}" {types.get(str(kind), "date")}' for column, kind in SCHEMAS.get(name, {}).items()
        ) or ", ".join(f'"{column}" varchar' for column in frame.columns)
        con.execute(f"create or replace table marts.{name} ({columns})")
        return
    con.register("frame_to_write", frame)
    try:
        con.execute(f"create or replace table marts.{name} as select * from frame_to_write")
    finally:
        con.unregister("frame_to_write")


# ---------------------------------------------------------------------------------------------------------------
# SPC for every collaborative metric series and every member


def build_spc(metric_month: pd.DataFrame, metrics: pd.DataFrame, collaboratives: pd.DataFrame) -> pd.DataFrame:
    """One row per collaborative, organisation, metric, basis and month with the XmR chart of the series,
    limits restarting at the collaborative's go-live date.

    Every series is charted with `spc_arrays` and the columns are concatenated once at the end: at national
    scale there are thousands of series, and a DataFrame per series cost more than the charts themselves."""
    better = dict(zip(metrics["metric_code"], metrics["better"], strict=True))
    go_live = dict(zip(collaboratives["collaborative_code"], collaboratives["go_live_date"], strict=True))
    keys = ["collaborative_code", "org_code", "metric_code", "membership_basis"]
    if metric_month.empty:  # no feed has delivered anything yet
        return _typed("fct_spc", [])
    ordered = metric_month.sort_values([*keys, "period_month"], kind="stable")
    months = [_month(value) for value in ordered["period_month"]]
    values = ordered["value"].to_numpy(dtype=float, na_value=np.nan)
    key_columns = {key: ordered[key].to_numpy(dtype=object) for key in keys}
    chart_columns = (
        "value", "mean", "upl", "lpl", "upper_near_limit", "lower_near_limit",
        "point_type", "special_cause_rule", "rebase_group", "is_trial_limits", "limits_note",
    )  # fmt: skip
    parts: dict[str, list] = {name: [] for name in (*keys, "period_month", *chart_columns)}
    # rows of one series are contiguous after the sort: cut where any key changes
    n = len(ordered)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for column in key_columns.values():
        change[1:] |= column[1:] != column[:-1]
    starts = np.flatnonzero(change)
    for start, end in zip(starts, [*starts[1:], n], strict=True):
        if np.isnan(values[start:end]).all():
            continue
        collaborative, org, metric, basis = (key_columns[key][start] for key in keys)
        periods = months[start:end]
        rebase = [_month(go_live[collaborative])] if pd.notna(go_live.get(collaborative)) else []
        chart = spc_arrays(
            values[start:end],
            periods=periods,
            improvement=IMPROVEMENT.get(better.get(metric), "neutral"),
            rebase_at=rebase,
        )
        for key, value in zip(keys, (collaborative, org, metric, basis), strict=True):
            parts[key].append([value] * (end - start))
        parts["period_month"].append(periods)
        for name in chart_columns:
            parts[name].append(chart[name])
    if not parts["value"]:
        return _typed("fct_spc", [])
    frame = {}
    for name, pieces in parts.items():
        if name in ("point_type", "special_cause_rule", "limits_note", *keys, "period_month"):
            frame[name] = pd.Series([item for piece in pieces for item in piece], dtype=object)
        else:
            frame[name] = np.concatenate(pieces)
    return pd.DataFrame(frame)


# ---------------------------------------------------------------------------------------------------------------
# Benefits tracking


def _variation_name(point_type: str | None, direction: str | None) -> str | None:
    if point_type is None or (isinstance(point_type, float) and pd.isna(point_type)):
        return None
    if point_type == "common_cause":
        return "common_cause"
    return f"{point_type}_{direction}" if direction in ("high", "low") else point_type


def _assurance(target: float | None, upl: float, lpl: float, direction: str) -> str | None:
    if target is None or pd.isna(upl) or pd.isna(lpl):
        return None
    higher_is_better = direction == "increase"
    if target > upl:
        return "consistently_fails" if higher_is_better else "consistently_passes"
    if target < lpl:
        return "consistently_passes" if higher_is_better else "consistently_fails"
    return "inconsistent"


def benefit_series(
    benefit: pd.Series, metric_month: pd.DataFrame, variation: pd.DataFrame, months: list[date]
) -> list[float | None]:
    """The benefit's monthly values on the spine ``months``: the collaborative (or the scoped member) on the
    as_was basis (accountability), or the coefficient of variation between members. A partial or suppressed
    value counts as missing: the RAG is then grey rather than a flattering figure."""
    if benefit["measure"] == "coefficient_of_variation":
        rows = variation[
            (variation["collaborative_code"] == benefit["collaborative_code"])
            & (variation["metric_code"] == benefit["metric_code"])
        ].drop_duplicates("period_month")
        lookup = {_month(m): v for m, v in zip(rows["period_month"], rows["coefficient_of_variation"], strict=True)}
    else:
        org = benefit["scope_org_code"] if isinstance(benefit["scope_org_code"], str) else "ALL"
        rows = metric_month[
            (metric_month["collaborative_code"] == benefit["collaborative_code"])
            & (metric_month["org_code"] == org)
            & (metric_month["membership_basis"] == "as_was")
            & (metric_month["metric_code"] == benefit["metric_code"])
        ]
        lookup = {
            _month(m): (None if partial else v)
            for m, v, partial in zip(rows["period_month"], rows["value"], rows["is_partial"], strict=True)
        }
    values = [lookup.get(month) for month in months]
    return [None if v is None or pd.isna(v) else float(v) for v in values]


def build_benefit_tracking(
    register: pd.DataFrame, metric_month: pd.DataFrame, variation: pd.DataFrame, months: list[date]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(dim_benefit, fct_benefit_tracking): the register with its resolved baseline and target, and one row per
    benefit and month with actual, baseline, target, trajectory, % achieved, RAG, SPC variation and assurance."""
    tracking, register_rows = [], []
    if not months:
        return register.assign(baseline_value=None, target_value=None), _typed("fct_benefit_tracking", [])
    latest = max(months)
    for _, benefit in register.iterrows():
        values = benefit_series(benefit, metric_month, variation, months)
        baseline_value = rules.baseline(
            months,
            values,
            _month(benefit["baseline_start"]),
            _month(benefit["baseline_end"]),
            None if pd.isna(benefit["baseline_value"]) else benefit["baseline_value"],
        )
        target = rules.resolve_target(
            baseline_value,
            None if pd.isna(benefit["target_value"]) else benefit["target_value"],
            None if pd.isna(benefit["target_change_pct"]) else benefit["target_change_pct"],
        )
        direction = benefit["direction"]
        rebase = [_month(benefit["rebase_date"])] if pd.notna(benefit["rebase_date"]) else []
        has_data = any(v is not None for v in values)
        screen = benefit.get("screen_outliers")
        screen = True if screen is None or pd.isna(screen) else bool(screen)
        chart = (
            spc(values, periods=months, improvement=direction, rebase_at=rebase, target=target, screen_outliers=screen)
            if has_data
            else None
        )
        smoothing = int(benefit["smoothing_months"] or 1)
        for i, month in enumerate(months):
            actual = rules.smoothed_actual(values[: i + 1], smoothing)
            trajectory = rules.trajectory(
                month, _month(benefit["baseline_end"]), baseline_value, _month(benefit["target_date"]), target
            )
            point = chart.iloc[i] if chart is not None else None
            tracking.append(
                {
                    "benefit_id": benefit["benefit_id"],
                    "collaborative_code": benefit["collaborative_code"],
                    "metric_code": benefit["metric_code"],
                    "period_month": month,
                    "monthly_value": values[i],
                    "actual_value": actual,
                    "baseline_value": baseline_value,
                    "target_value": target,
                    "trajectory_value": trajectory,
                    "pct_of_target_achieved": rules.pct_of_target_achieved(actual, baseline_value, target),
                    "rag_status": rules.rag_status(actual, trajectory, target, direction, float(benefit["tolerance"])),
                    "spc_variation": None
                    if point is None
                    else _variation_name(point["point_type"], point["special_cause_direction"]),
                    "spc_assurance": None
                    if point is None or values[i] is None
                    else _assurance(target, point["upl"], point["lpl"], direction),
                    "spc_mean": None if point is None else point["mean"],
                    "spc_upl": None if point is None else point["upl"],
                    "spc_lpl": None if point is None else point["lpl"],
                    "spc_point_type": None if point is None else point["point_type"],
                    "spc_rebase_group": None if point is None else int(point["rebase_group"]),
                    "spc_limits_note": None if point is None else point["limits_note"],
                    "is_latest_month": month == latest,
                }
            )
        register_rows.append({**benefit.to_dict(), "baseline_value": baseline_value, "target_value": target})
    dim = pd.DataFrame(register_rows)
    fact = _typed("fct_benefit_tracking", tracking)
    for column in ("spc_variation", "spc_assurance", "spc_point_type", "spc_limits_note"):
        fact[column] = fact[column].astype(object).where(fact[column].notna(), None)
    return dim, fact


# ---------------------------------------------------------------------------------------------------------------
# Evaluation


def _estimate_row(collaborative: str, metric: str, go_live: date, estimate, estimate_type: str) -> dict:
    return {
        "collaborative_code": collaborative,
        "metric_code": metric,
        "method": estimate.method,
        "estimate_type": estimate_type,
        "estimate": estimate.estimate,
        "std_error": estimate.std_error,
        "ci_lower": estimate.ci_lower,
        "ci_upper": estimate.ci_upper,
        "p_value": estimate.p_value,
        "pre_periods": estimate.pre_periods,
        "post_periods": estimate.post_periods,
        "comparator_count": estimate.comparator_count,
        "pre_trend_p_value": estimate.pre_trend_p_value,
        "note": estimate.note,
        "go_live_date": go_live,
        "inference": estimate.inference,
    }


def comparator_orgs(
    collaborative: str,
    collaboratives: pd.DataFrame,
    memberships: pd.DataFrame,
    organisations: pd.DataFrame,
    org_types: list[str],
) -> list[str]:
    """Trusts of the metric's type that are in no collaborative of this collaborative's type (SPEC §7)."""
    kind = collaboratives.set_index("collaborative_code").loc[collaborative, "collaborative_type"]
    if kind in TRUST_TYPE_OF_COLLABORATIVE:  # an acute collaborative is compared with acute trusts, and so on
        org_types = [t for t in org_types if t == TRUST_TYPE_OF_COLLABORATIVE[kind]]
    same_kind = set(collaboratives.loc[collaboratives["collaborative_type"] == kind, "collaborative_code"])
    in_same_kind = set(memberships.loc[memberships["collaborative_code"].isin(same_kind), "current_org_code"])
    candidates = organisations[organisations["org_type"].isin(org_types) & organisations["is_current"]]
    return sorted(set(candidates["org_code"]) - in_same_kind)


def evaluation_panel(
    collaborative: str,
    metric: str,
    metric_month: pd.DataFrame,
    org_month: pd.DataFrame,
    collaboratives: pd.DataFrame,
    memberships: pd.DataFrame,
    organisations: pd.DataFrame,
    applies: dict,
    first: date,
    last: date,
) -> pd.DataFrame:
    """The organisation-month panel of the difference-in-differences and the event study: today's member trusts
    of the collaborative's type (treated) and the comparator trusts, months `first` to `last`."""
    org_types = list(applies[metric]) if metric in applies else []
    treated = sorted(
        set(
            metric_month.loc[
                (metric_month["collaborative_code"] == collaborative)
                & (metric_month["membership_basis"] == "as_is")
                & (metric_month["org_code"] != "ALL")
                & (metric_month["metric_code"] == metric),
                "org_code",
            ]
        )
    )
    comparators = comparator_orgs(collaborative, collaboratives, memberships, organisations, org_types)
    kind = collaboratives.set_index("collaborative_code").loc[collaborative, "collaborative_type"]
    if kind in TRUST_TYPE_OF_COLLABORATIVE:
        of_kind = set(organisations.loc[organisations["org_type"] == TRUST_TYPE_OF_COLLABORATIVE[kind], "org_code"])
        treated = [org for org in treated if org in of_kind]
    panel = org_month[
        (org_month["metric_code"] == metric)
        & org_month["org_code"].isin(treated + comparators)
        & (org_month["period_month"] >= pd.Timestamp(first))
        & (org_month["period_month"] <= pd.Timestamp(last))
    ][["org_code", "period_month", "value"]].dropna()
    # One order whatever order DuckDB returned the rows in: the regressions' sums, and so the bootstrap's ties
    # between equal statistics, depend on it, and a rerun on the same data must give the same figures.
    panel = panel.sort_values(["org_code", "period_month"], kind="stable").reset_index(drop=True)
    panel = panel.assign(treated=panel["org_code"].isin(treated))
    return panel


def _synthetic_control_rows(panel: pd.DataFrame, go_live: date, collaborative: str, metric: str, donor_rows: list):
    """The synthetic control's Estimate for fct_evaluation; its donors (weight and own placebo) into `donor_rows`."""
    result = synthetic_control(panel, go_live, transition_months=EVALUATION_TRANSITION_MONTHS)
    placebos = result.placebos.set_index("org_code")
    ratio = result.post_rmspe / result.pre_rmspe if result.pre_rmspe > 0 else float("nan")
    for org, weight in result.weights.items():
        donor_rows.append(
            {
                "collaborative_code": collaborative,
                "metric_code": metric,
                "org_code": org,
                "weight": weight,
                "placebo_estimate": float(placebos.loc[org, "estimate"]),
                "placebo_pre_rmspe": float(placebos.loc[org, "pre_rmspe"]),
                "placebo_post_rmspe": float(placebos.loc[org, "post_rmspe"]),
                "placebo_rmspe_ratio": float(placebos.loc[org, "ratio"]),
                "treated_pre_rmspe": result.pre_rmspe,
                "treated_rmspe_ratio": ratio,
                "donor_count": result.donor_count,
                "pre_periods": result.pre_periods,
                "post_periods": result.post_periods,
                "go_live_date": go_live,
            }
        )
    return result.as_estimate()


@dataclass(frozen=True)
class EvaluationCase:
    """One collaborative and metric of a benefits register to evaluate: its go-live, its window and its panel of
    member and comparator trusts (built once, for every method that needs it)."""

    collaborative: str
    metric: str
    go_live: date
    first: date
    last: date
    panel: pd.DataFrame


def evaluation_cases(
    register: pd.DataFrame,
    metric_month: pd.DataFrame,
    org_month: pd.DataFrame,
    collaboratives: pd.DataFrame,
    memberships: pd.DataFrame,
    organisations: pd.DataFrame,
    metrics: pd.DataFrame,
) -> list[EvaluationCase]:
    """Every collaborative (with a go-live date) and metric its register tracks by value, with its window and panel."""
    applies = dict(zip(metrics["metric_code"], metrics["applies_to_org_types"], strict=True))
    go_lives = dict(zip(collaboratives["collaborative_code"], collaboratives["go_live_date"], strict=True))
    pairs = register.loc[register["measure"] == "value", ["collaborative_code", "metric_code"]].drop_duplicates()
    cases = []
    for collaborative, metric in pairs.itertuples(index=False):
        if pd.isna(go_lives.get(collaborative)):
            continue
        go_live = _month(go_lives[collaborative])
        first = _add_months(go_live, -EVALUATION_WINDOW_MONTHS)
        last = _add_months(go_live, EVALUATION_WINDOW_MONTHS + EVALUATION_TRANSITION_MONTHS - 1)
        panel = evaluation_panel(
            collaborative,
            metric,
            metric_month,
            org_month,
            collaboratives,
            memberships,
            organisations,
            applies,
            first,
            last,
        )
        cases.append(EvaluationCase(collaborative, metric, go_live, first, last, panel))
    return cases


def build_evaluation(
    cases: list[EvaluationCase], metric_month: pd.DataFrame, donors: list[dict] | None = None
) -> pd.DataFrame:
    """Before/after, difference-in-differences, interrupted time series and synthetic control for each case
    (a collaborative and metric of its benefits register), around the collaborative's go-live date (as_is:
    like-for-like). With `donors` (a list) the synthetic control's donor rows are appended to it."""
    rows = []
    donor_rows = donors if donors is not None else []
    for case in cases:
        collaborative, metric, go_live, first, last, panel = (
            case.collaborative,
            case.metric,
            case.go_live,
            case.first,
            case.last,
            case.panel,
        )
        series = metric_month[
            (metric_month["collaborative_code"] == collaborative)
            & (metric_month["org_code"] == "ALL")
            & (metric_month["membership_basis"] == "as_is")
            & (metric_month["metric_code"] == metric)
            & ~metric_month["is_partial"]
        ][["period_month", "value"]].dropna()
        windowed = series[
            (series["period_month"] >= pd.Timestamp(first)) & (series["period_month"] <= pd.Timestamp(last))
        ]
        attempts = [
            (
                "mean_difference",
                partial(
                    before_after,
                    series,
                    go_live,
                    window_months=EVALUATION_WINDOW_MONTHS,
                    transition_months=EVALUATION_TRANSITION_MONTHS,
                ),
            ),
            ("its", partial(interrupted_time_series, windowed, go_live)),
        ]
        attempts.append(
            ("did", partial(difference_in_differences, panel, go_live, transition_months=EVALUATION_TRANSITION_MONTHS))
        )
        attempts.append(
            (
                "synthetic_control_gap",
                partial(_synthetic_control_rows, panel, go_live, collaborative, metric, donor_rows),
            )
        )
        for estimate_type, attempt in attempts:
            try:
                result = attempt()
            except ValueError as error:
                log.warning("Evaluation of %s %s (%s) not possible: %s", collaborative, metric, estimate_type, error)
                continue
            if isinstance(result, tuple):
                level, slope = result
                rows.append(_estimate_row(collaborative, metric, go_live, level, "level_change"))
                rows.append(_estimate_row(collaborative, metric, go_live, slope, "slope_change"))
            else:
                rows.append(_estimate_row(collaborative, metric, go_live, result, estimate_type))
    return _typed("fct_evaluation", rows)


def _event_time_label(event_time: int, is_binned: bool) -> str:
    if is_binned:
        return f"≤ {event_time}" if event_time < 0 else f"≥ +{event_time}"
    return f"+{event_time}" if event_time > 0 else str(event_time)


def build_event_study(cases: list[EvaluationCase]) -> pd.DataFrame:
    """Leads and lags around go-live for each case the DiD evaluates, on the same panel (same comparators and
    months); one row per event time, the reference month (−1) included at zero."""
    rows = []
    for case in cases:
        collaborative, metric, go_live, panel = case.collaborative, case.metric, case.go_live, case.panel
        try:
            study = event_study(panel, go_live)
        except ValueError as error:
            log.warning("Event study of %s %s not possible: %s", collaborative, metric, error)
            continue
        for e in study.estimates:
            rows.append(
                {
                    "collaborative_code": collaborative,
                    "metric_code": metric,
                    "event_time": e.event_time,
                    "event_time_label": _event_time_label(e.event_time, e.is_binned),
                    "is_binned": e.is_binned,
                    "is_reference": e.is_reference,
                    "months_in_bin": e.months,
                    "estimate": e.estimate,
                    "ci_lower": e.ci_lower,
                    "ci_upper": e.ci_upper,
                    "p_value": e.p_value,
                    "is_bounded": e.bounded,
                    "inference": "reference" if e.is_reference else study.inference,
                    "pre_periods": study.pre_periods,
                    "post_periods": study.post_periods,
                    "treated_count": study.treated_count,
                    "comparator_count": study.comparator_count,
                    "pre_trend_p_value": study.pre_trend_p_value,
                    "pre_trend_inference": study.pre_trend_inference,
                    "note": study.note,
                    "go_live_date": go_live,
                }
            )
    return _typed("fct_event_study", rows)


# ---------------------------------------------------------------------------------------------------------------


def build_benefits_marts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Read the dbt marts from the build database, write fct_spc, dim_benefit, fct_benefit_tracking and
    fct_evaluation, fct_event_study and fct_synthetic_control_donor into its marts schema; return their row counts."""
    # Every read in a fixed order (DuckDB's parallel scans return rows in any order), so reruns give equal figures.
    metric_month = con.execute("select * from marts.fct_collaborative_metric_month order by all").df()
    metric_month["period_month"] = pd.to_datetime(metric_month["period_month"])
    metrics = con.execute("select * from marts.dim_metric order by all").df()
    collaboratives = con.execute("select * from marts.dim_collaborative order by all").df()
    variation = con.execute(
        "select distinct collaborative_code, metric_code, period_month, coefficient_of_variation "
        "from marts.fct_variation order by all"
    ).df()
    register = con.execute("select * from staging.stg_reference__benefits order by benefit_id").df()
    org_month = con.execute(
        "select * from intermediate.int_metric__org_month where not is_suppressed order by all"
    ).df()
    org_month["period_month"] = pd.to_datetime(org_month["period_month"])
    memberships = con.execute("select * from marts.bridge_collaborative_membership order by all").df()
    organisations = con.execute("select * from marts.dim_organisation order by all").df()
    months = [
        _month(m)
        for m in con.execute("select period_month from intermediate.int_reporting_months order by 1").df()[
            "period_month"
        ]
    ]

    fct_spc = build_spc(metric_month, metrics, collaboratives)
    dim_benefit, fct_benefit_tracking = build_benefit_tracking(register, metric_month, variation, months)
    donors: list[dict] = []
    cases = evaluation_cases(register, metric_month, org_month, collaboratives, memberships, organisations, metrics)
    fct_evaluation = build_evaluation(cases, metric_month, donors)
    fct_synthetic_control_donor = _typed("fct_synthetic_control_donor", donors)
    fct_event_study = build_event_study(cases)
    written = {}
    for name, frame in [
        ("fct_spc", fct_spc),
        ("dim_benefit", dim_benefit),
        ("fct_benefit_tracking", fct_benefit_tracking),
        ("fct_evaluation", fct_evaluation),
        ("fct_event_study", fct_event_study),
        ("fct_synthetic_control_donor", fct_synthetic_control_donor),
    ]:
        _replace_table(con, name, frame)
        written[name] = len(frame)
    return written
