"""The four dashboards as Superset's native asset bundle: database, datasets, charts and dashboards.

This module is the definition; ``dashboards/bundle/`` holds the YAML it writes (readable, reviewed, committed),
which is what the deployer zips and imports. ``python -m orchestration.dashboards.bundle`` rewrites the YAML;
``tests/test_dashboards.py`` fails when the committed YAML and this definition disagree, and runs every
dataset's SQL against a real serving database.

Every uuid is a uuid5 of the object's name, so a re-import updates objects in place rather than duplicating
them. Datasets are virtual (SQL over the serving marts) so that each can carry the names people use
(collaborative, member trust, ICB, metric) beside the codes, and so that every dataset offers the same filter
columns under the same names: one dashboard filter then applies to every chart that has its column.

Two conventions keep the charts honest:
- A collaborative spanning two ICBs appears once per ICB in the collaborative-level datasets, so that the ICB
  filter finds it. Charts over those datasets therefore aggregate with MAX over identical rows (or group by
  every shown column), never SUM, which would count the collaborative twice.
- Totals across trusts (an ICB's waiting list) are summed from trust-level facts, never from collaboratives
  (SPEC §5.3): those datasets carry no collaborative column at all.
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestration.analytics.marts import EVALUATION_TRANSITION_MONTHS, EVALUATION_WINDOW_MONTHS
from orchestration.dashboards import charts as c
from orchestration.resources import REPO_ROOT
from orchestration.sources.feeds import FEEDS

BUNDLE_DIR = REPO_ROOT / "dashboards" / "bundle"
NAMESPACE = uuid.UUID("5b1c4d0e-7f3a-5c55-9a4e-2f0c9d7b6a11")
VERSION = "1.0.0"
DATABASE_NAME = "Collaborative benefits warehouse"
#: The bundle's URI; the deployer replaces it with the absolute path of the serving database it points at.
BUNDLE_SQLALCHEMY_URI = "duckdb:///warehouse/serving.duckdb"
#: Read-only, no external access (no reading files or URLs from SQL), no DML (SPEC §9).
DATABASE_EXTRA = {
    "engine_params": {"connect_args": {"read_only": True, "config": {"enable_external_access": False}}},
    "metadata_params": {},
    "metadata_cache_timeout": {},
    "schemas_allowed_for_csv_upload": [],
    "allows_virtual_table_explore": True,
    "disable_data_preview": False,
}

# Audiences (the roles the deployer creates; users also get Superset's Gamma role for the basic menus).
PMO = "PMO"
ICB_ANALYST = "ICB analyst"
EVALUATOR = "Evaluator"


def stable_uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


# ---------------------------------------------------------------------------------------------------------------
# Datasets


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    label: str
    description: str = ""

    @property
    def is_dttm(self) -> bool:
        return self.type in {"DATE", "TIMESTAMP"}


@dataclass(frozen=True)
class Dataset:
    """A virtual dataset. ``rls`` says how a PMO role is restricted on it: by ``collaborative_code``, by the
    member trusts' ``org_code``, or not at all (feed-level data quality)."""

    name: str
    description: str
    sql: str
    columns: tuple[Column, ...]
    audiences: tuple[str, ...]
    rls: str | None = None  # "collaborative" | "member_trusts" | None

    @property
    def uuid(self) -> str:
        return stable_uuid("dataset", self.name)

    def has(self, column: str) -> bool:
        return any(col.name == column for col in self.columns)


def _col(name: str, type_: str, label: str, description: str = "") -> Column:
    return Column(name, type_, label, description)


# Filter columns: the same names in every dataset that has them.
COLLABORATIVE_CODE = _col("collaborative_code", "VARCHAR", "Collaborative code", "Collaborative's short code.")
COLLABORATIVE = _col("collaborative", "VARCHAR", "Collaborative", "Provider collaborative.")
ICB = _col("icb", "VARCHAR", "ICB", "Integrated care board (a collaborative spanning two ICBs is listed under both).")
TRUST = _col("trust", "VARCHAR", "Member trust", "NHS trust.")
ORG_CODE = _col("org_code", "VARCHAR", "Trust code", "ODS code of the trust (successor code after a merger).")
METRIC_CODE = _col("metric_code", "VARCHAR", "Metric code", "Metric code from the catalogue.")
METRIC = _col("metric", "VARCHAR", "Metric", "Metric, in words.")
PERIOD = _col("period_month", "DATE", "Month", "First day of the month the figure is for.")
BENEFIT = _col("benefit", "VARCHAR", "Benefit", "Benefit id and title from the programme office's register.")

_ICB_NAME = "replace(replace(icb_name, 'NHS ', ''), ' Integrated Care Board', ' ICB')"

CTE_ICBS = f"""icbs as (
    select icb_code, any_value({_ICB_NAME}) as icb
    from main.dim_organisation
    where icb_code is not null
    group by icb_code
)"""

CTE_COLLABORATIVE_ICBS = """collaborative_icbs as (
    select
        spans.collaborative_code,
        spans.collaborative,
        coalesce(icbs.icb, spans.icb_code) as icb
    from (
        select collaborative_code, collaborative_name as collaborative, unnest(icb_codes) as icb_code
        from main.dim_collaborative
    ) as spans
    left join icbs on icbs.icb_code = spans.icb_code
)"""

CTE_TRUSTS = f"""trusts as (
    select org_code, org_name as trust, {_ICB_NAME} as icb
    from main.dim_organisation
)"""

CTE_BENEFITS = """benefits as (
    select
        benefit.benefit_id,
        benefit.collaborative_code,
        benefit.metric_code,
        benefit.scope_org_code,
        benefit.benefit_id || ' · ' || benefit.title as benefit,
        case
            when benefit.measure = 'coefficient_of_variation'
                then 'Variation between members in: ' || metric.metric_name
            else metric.metric_name
        end as metric
    from main.dim_benefit as benefit
    left join main.dim_metric as metric on metric.metric_code = benefit.metric_code
)"""

_FEED_LABEL = (
    "case source " + " ".join(f"when '{feed.name}' then '{feed.title}'" for feed in FEEDS) + " else source end"
)

_VARIATION_LABEL = """case {col}
            when 'common_cause' then 'Common cause'
            when 'special_cause_improvement_high' then 'Improvement (high)'
            when 'special_cause_improvement_low' then 'Improvement (low)'
            when 'special_cause_concern_high' then 'Concern (high)'
            when 'special_cause_concern_low' then 'Concern (low)'
            when 'special_cause_neutral_high' then 'Neutral (high)'
            when 'special_cause_neutral_low' then 'Neutral (low)'
            else coalesce(replace({col}, '_', ' '), 'Not enough data')
        end"""

_ASSURANCE_LABEL = """case {col}
            when 'consistently_passes' then 'Consistently passes'
            when 'consistently_fails' then 'Consistently fails'
            when 'inconsistent' then 'Hit and miss'
            else 'No target or data'
        end"""

_RAG_LABEL = """case {col}
            when 'achieved' then 'Achieved'
            when 'green' then 'Green'
            when 'amber' then 'Amber'
            when 'red' then 'Red'
            else 'Grey (no data)'
        end"""


def _with(*ctes: str) -> str:
    return "with\n" + ",\n".join(ctes) + "\n"


DATASETS: tuple[Dataset, ...] = (
    # --- Benefits tracker (PMO) ---------------------------------------------------------------------------------
    Dataset(
        name="pmo_benefit_register",
        description="The benefits register with where each benefit stands in the latest month: baseline, "
        "target, latest value, trajectory, RAG and SPC assurance. One row per benefit (and ICB spanned).",
        sql=_with(CTE_ICBS, CTE_COLLABORATIVE_ICBS, CTE_BENEFITS)
        + f"""select
    register.benefit_id,
    register.collaborative_code,
    ci.collaborative,
    ci.icb,
    benefits.benefit,
    benefits.metric,
    case
        when register.scope_org_code is null then 'Whole collaborative'
        else coalesce(scoped.org_name, register.scope_org_code)
    end as scope,
    case register.direction when 'decrease' then 'Lower is better' else 'Higher is better' end as direction,
    register.owner,
    register.programme,
    register.baseline_value as baseline,
    register.target_value as target,
    cast(register.target_date as date) as target_date,
    latest.period_month as latest_month,
    latest.actual_value as latest,
    latest.trajectory_value as trajectory,
    latest.pct_of_target_achieved,
    {_RAG_LABEL.format(col="latest.rag_status")} as rag,
    {_VARIATION_LABEL.format(col="latest.spc_variation")} as spc_variation,
    {_ASSURANCE_LABEL.format(col="latest.spc_assurance")} as spc_assurance
from main.dim_benefit as register
inner join benefits on benefits.benefit_id = register.benefit_id
inner join collaborative_icbs as ci on ci.collaborative_code = register.collaborative_code
left join main.fct_benefit_tracking as latest
    on latest.benefit_id = register.benefit_id and latest.is_latest_month
left join main.dim_organisation as scoped on scoped.org_code = register.scope_org_code""",
        columns=(
            _col("benefit_id", "VARCHAR", "Benefit id"),
            COLLABORATIVE_CODE,
            COLLABORATIVE,
            ICB,
            BENEFIT,
            METRIC,
            _col("scope", "VARCHAR", "Scope", "Whole collaborative, or the one member trust the benefit is about."),
            _col("direction", "VARCHAR", "Better is", "Whether a fall or a rise is an improvement."),
            _col("owner", "VARCHAR", "Owner"),
            _col("programme", "VARCHAR", "Programme"),
            _col("baseline", "DOUBLE", "Baseline", "Mean over the register's baseline window (or the value given)."),
            _col("target", "DOUBLE", "Target"),
            _col("target_date", "DATE", "Target date"),
            _col("latest_month", "DATE", "Latest month"),
            _col("latest", "DOUBLE", "Latest", "Value in the latest month (smoothed where the register asks)."),
            _col("trajectory", "DOUBLE", "Trajectory", "Where the straight line from baseline to target is now."),
            _col(
                "pct_of_target_achieved", "DOUBLE", "% of target achieved", "(latest − baseline) ÷ (target − baseline)."
            ),
            _col(
                "rag",
                "VARCHAR",
                "RAG",
                "Achieved when the target is met; green on or ahead of trajectory; amber behind it by no more than the "
                "tolerance; red beyond it; grey when data are missing, partial or suppressed.",
            ),
            _col(
                "spc_variation",
                "VARCHAR",
                "Variation (SPC)",
                "Making Data Count variation icon in words: special-cause improvement or concern (high or low), or "
                "common cause.",
            ),
            _col(
                "spc_assurance",
                "VARCHAR",
                "Assurance (SPC)",
                "Making Data Count assurance: whether the process limits say the target will consistently be met, "
                "consistently missed, or hit and miss.",
            ),
        ),
        audiences=(PMO, ICB_ANALYST),
        rls="collaborative",
    ),
    Dataset(
        name="pmo_benefit_spc",
        description="Each benefit month by month: the value, its Making Data Count SPC mean and process "
        "limits, special-cause points, and the trajectory to target. One row per benefit, month (and ICB).",
        sql=_with(CTE_ICBS, CTE_COLLABORATIVE_ICBS, CTE_BENEFITS)
        + """select
    tracking.benefit_id,
    tracking.collaborative_code,
    ci.collaborative,
    ci.icb,
    benefits.benefit,
    benefits.metric,
    tracking.period_month,
    tracking.monthly_value,
    tracking.actual_value,
    tracking.spc_mean,
    tracking.spc_upl,
    tracking.spc_lpl,
    case when tracking.spc_point_type = 'special_cause_improvement' then tracking.monthly_value end
        as special_cause_improvement,
    case when tracking.spc_point_type = 'special_cause_concern' then tracking.monthly_value end
        as special_cause_concern,
    tracking.baseline_value,
    tracking.trajectory_value,
    tracking.target_value
from main.fct_benefit_tracking as tracking
inner join benefits on benefits.benefit_id = tracking.benefit_id
inner join collaborative_icbs as ci on ci.collaborative_code = tracking.collaborative_code""",
        columns=(
            _col("benefit_id", "VARCHAR", "Benefit id"),
            COLLABORATIVE_CODE,
            COLLABORATIVE,
            ICB,
            BENEFIT,
            METRIC,
            PERIOD,
            _col("monthly_value", "DOUBLE", "Monthly value", "The month's value (what SPC is computed on)."),
            _col("actual_value", "DOUBLE", "Actual", "The value tracked against trajectory (smoothed where asked)."),
            _col("spc_mean", "DOUBLE", "Mean", "SPC mean of the month's limit group."),
            _col("spc_upl", "DOUBLE", "Upper process limit", "Mean + 2.66 × average moving range."),
            _col("spc_lpl", "DOUBLE", "Lower process limit", "Mean − 2.66 × average moving range."),
            _col("special_cause_improvement", "DOUBLE", "Special cause: improvement"),
            _col("special_cause_concern", "DOUBLE", "Special cause: concern"),
            _col("baseline_value", "DOUBLE", "Baseline"),
            _col("trajectory_value", "DOUBLE", "Trajectory"),
            _col("target_value", "DOUBLE", "Target"),
        ),
        audiences=(PMO, ICB_ANALYST),
        rls="collaborative",
    ),
    Dataset(
        name="pmo_member_contribution",
        description="Each member trust's figures on the measure of each benefit (members of that month), and "
        "its share of the collaborative's total. One row per benefit, member trust and month.",
        sql=_with(CTE_ICBS, CTE_TRUSTS, CTE_BENEFITS)
        + """, members as (
    select collaborative_code, org_code, period_month, metric_code, value, numerator
    from main.fct_collaborative_metric_month
    where membership_basis = 'as_was' and org_code <> 'ALL'
),
totals as (
    select collaborative_code, period_month, metric_code, numerator as collaborative_numerator
    from main.fct_collaborative_metric_month
    where membership_basis = 'as_was' and org_code = 'ALL'
),
latest as (
    select max(period_month) as latest_month from main.fct_collaborative_metric_month
)
select
    benefits.benefit_id,
    benefits.collaborative_code,
    collaborative.collaborative_name as collaborative,
    benefits.benefit,
    benefits.metric,
    members.org_code,
    coalesce(trusts.trust, members.org_code) as trust,
    trusts.icb,
    members.period_month,
    members.value,
    members.numerator,
    100.0 * members.numerator / nullif(totals.collaborative_numerator, 0) as share_of_collaborative_pct,
    members.period_month = latest.latest_month as is_latest_month
from benefits
inner join main.dim_collaborative as collaborative on collaborative.collaborative_code = benefits.collaborative_code
inner join members
    on members.collaborative_code = benefits.collaborative_code and members.metric_code = benefits.metric_code
left join totals
    on totals.collaborative_code = members.collaborative_code
    and totals.metric_code = members.metric_code
    and totals.period_month = members.period_month
left join trusts on trusts.org_code = members.org_code
cross join latest
where benefits.scope_org_code is null or benefits.scope_org_code = members.org_code""",
        columns=(
            _col("benefit_id", "VARCHAR", "Benefit id"),
            COLLABORATIVE_CODE,
            COLLABORATIVE,
            BENEFIT,
            METRIC,
            ORG_CODE,
            TRUST,
            _col("icb", "VARCHAR", "ICB", "The trust's integrated care board."),
            PERIOD,
            _col("value", "DOUBLE", "Value", "The member trust's value on the benefit's measure."),
            _col("numerator", "DOUBLE", "Count", "The member's count behind the value (patients, bed days …)."),
            _col(
                "share_of_collaborative_pct",
                "DOUBLE",
                "Share of the collaborative (%)",
                "The member's count as a percentage of the collaborative's (additive measures only).",
            ),
            _col("is_latest_month", "BOOLEAN", "Latest month"),
        ),
        audiences=(PMO, ICB_ANALYST),
        rls="collaborative",
    ),
    # --- Outcomes monitor (ICB) ---------------------------------------------------------------------------------
    Dataset(
        name="icb_collaborative_outcomes",
        description="Every metric for every collaborative and month, counting that month's members (as was). "
        "One row per collaborative, ICB spanned, metric and month.",
        sql=_with(CTE_ICBS, CTE_COLLABORATIVE_ICBS)
        + """select
    outcome.collaborative_code,
    ci.collaborative,
    ci.icb,
    outcome.metric_code,
    metric.metric_name as metric,
    metric.unit,
    outcome.period_month,
    outcome.value,
    outcome.is_partial,
    outcome.members_reporting,
    outcome.members_expected,
    outcome.period_month = max(outcome.period_month) over (
        partition by outcome.collaborative_code, outcome.metric_code
    ) as is_latest_month
from main.fct_collaborative_metric_month as outcome
inner join collaborative_icbs as ci on ci.collaborative_code = outcome.collaborative_code
inner join main.dim_metric as metric on metric.metric_code = outcome.metric_code
where outcome.membership_basis = 'as_was' and outcome.org_code = 'ALL'""",
        columns=(
            COLLABORATIVE_CODE,
            COLLABORATIVE,
            ICB,
            METRIC_CODE,
            METRIC,
            _col("unit", "VARCHAR", "Unit"),
            PERIOD,
            _col("value", "DOUBLE", "Value"),
            _col("is_partial", "BOOLEAN", "Partial", "A member's figure was suppressed or missing that month."),
            _col("members_reporting", "BIGINT", "Members reporting"),
            _col("members_expected", "BIGINT", "Members expected"),
            _col(
                "is_latest_month", "BOOLEAN", "Latest month", "The latest month held for this collaborative and metric."
            ),
        ),
        audiences=(ICB_ANALYST, EVALUATOR),
        rls="collaborative",
    ),
    Dataset(
        name="icb_member_variation",
        description="Each member trust against its collaborative, with funnel-plot limits (95% and 99.8%) for "
        "proportions. One row per collaborative, metric, month and member trust.",
        sql=_with(CTE_ICBS, CTE_TRUSTS)
        + """select
    variation.collaborative_code,
    collaborative.collaborative_name as collaborative,
    variation.org_code,
    coalesce(trusts.trust, variation.org_code) as trust,
    trusts.icb,
    variation.metric_code,
    metric.metric_name as metric,
    variation.period_month,
    variation.value,
    variation.denominator,
    variation.collaborative_value,
    variation.lower_95,
    variation.upper_95,
    variation.lower_998,
    variation.upper_998,
    variation.lower_998_unadjusted,
    variation.upper_998_unadjusted,
    variation.phi,
    variation.tau2,
    variation.dispersion_trusts,
    case variation.outlier_flag
        when 'above_998' then 'Above the 99.8% limit'
        when 'above_95' then 'Above the 95% limit'
        when 'within' then 'Within the limits'
        when 'below_95' then 'Below the 95% limit'
        when 'below_998' then 'Below the 99.8% limit'
        else 'No limits (not a proportion)'
    end as funnel_position,
    variation.coefficient_of_variation,
    variation.period_month = max(variation.period_month) over (
        partition by variation.collaborative_code, variation.metric_code
    ) as is_latest_month
from main.fct_variation as variation
inner join main.dim_collaborative as collaborative
    on collaborative.collaborative_code = variation.collaborative_code
inner join main.dim_metric as metric on metric.metric_code = variation.metric_code
left join trusts on trusts.org_code = variation.org_code""",
        columns=(
            COLLABORATIVE_CODE,
            COLLABORATIVE,
            ORG_CODE,
            TRUST,
            _col("icb", "VARCHAR", "ICB", "The trust's integrated care board."),
            METRIC_CODE,
            METRIC,
            PERIOD,
            _col("value", "DOUBLE", "Member value"),
            _col("denominator", "DOUBLE", "Denominator", "Patients waiting, discharges …: the funnel's x axis."),
            _col("collaborative_value", "DOUBLE", "Collaborative value", "The funnel's centre line."),
            _col("lower_95", "DOUBLE", "Lower 95% limit"),
            _col("upper_95", "DOUBLE", "Upper 95% limit"),
            _col("lower_998", "DOUBLE", "Lower 99.8% limit"),
            _col("upper_998", "DOUBLE", "Upper 99.8% limit"),
            _col(
                "lower_998_unadjusted",
                "DOUBLE",
                "Lower 99.8% limit (unadjusted)",
                "Binomial limit without the allowance for variation between trusts.",
            ),
            _col("upper_998_unadjusted", "DOUBLE", "Upper 99.8% limit (unadjusted)"),
            _col(
                "phi",
                "DOUBLE",
                "Dispersion ratio (φ)",
                "Spread of all trusts of the type that month beyond chance (1 = none).",
            ),
            _col(
                "tau2", "DOUBLE", "Between-trust variance (τ²)", "Added to each trust's variance to widen the limits."
            ),
            _col("dispersion_trusts", "BIGINT", "Trusts in the dispersion estimate"),
            _col("funnel_position", "VARCHAR", "Against the funnel limits"),
            _col("coefficient_of_variation", "DOUBLE", "Coefficient of variation", "Across members, that month."),
            _col("is_latest_month", "BOOLEAN", "Latest month"),
        ),
        audiences=(ICB_ANALYST, EVALUATOR),
        rls="collaborative",
    ),
    Dataset(
        name="icb_trust_outcomes",
        description="Waiting list, long waits and 18-week performance of every trust and month, so that ICB "
        "totals are summed from trusts (each counted once), never from collaboratives. One row per trust and month.",
        sql=_with(CTE_ICBS, CTE_TRUSTS)
        + """select
    rtt.org_code,
    coalesce(trusts.trust, rtt.org_code) as trust,
    coalesce(trusts.icb, 'Unknown ICB') as icb,
    rtt.period_month,
    cast(rtt.incomplete_pathways as bigint) as waiting_list,
    rtt.within_18_weeks,
    rtt.over_52_weeks,
    rtt.over_65_weeks,
    rtt.over_78_weeks,
    rtt.over_104_weeks
from main.fct_rtt_provider_month as rtt
left join trusts on trusts.org_code = rtt.org_code
where rtt.treatment_function_code = 'ALL'""",
        columns=(
            ORG_CODE,
            TRUST,
            _col("icb", "VARCHAR", "ICB", "The trust's integrated care board."),
            PERIOD,
            _col("waiting_list", "BIGINT", "Waiting list", "Incomplete RTT pathways at month end."),
            _col("within_18_weeks", "BIGINT", "Waiting 18 weeks or less"),
            _col("over_52_weeks", "BIGINT", "Waiting more than 52 weeks"),
            _col("over_65_weeks", "BIGINT", "Waiting more than 65 weeks"),
            _col("over_78_weeks", "BIGINT", "Waiting more than 78 weeks"),
            _col("over_104_weeks", "BIGINT", "Waiting more than 104 weeks"),
        ),
        audiences=(ICB_ANALYST, EVALUATOR),
        rls="member_trusts",
    ),
    Dataset(
        name="icb_rtt_geography",
        description="The RTT waiting list of England, each NHS England region and each ICB as NHS England publishes "
        "them, on today's ICBs over all history (comparable across the April 2026 mergers): by provider (the trusts "
        "in the ICB, non-English commissioners included) and by commissioner (the ICB's own population); England "
        "leaves out non-English commissioners, as NHS England does. One row per month, geography and basis.",
        sql="""select
    geography.period_month,
    geography.geography_level,
    geography.geography_code,
    geography.geography_name as icb,
    case geography.attribution_basis
        when 'provider' then 'Trusts in the ICB'
        else 'The ICB''s population'
    end as basis,
    geography.incomplete_pathways as waiting_list,
    geography.within_18_weeks,
    geography.pct_within_18_weeks,
    geography.over_52_weeks,
    geography.non_english_commissioner_pathways
from main.fct_rtt_geography_month as geography
where geography.icb_basis = 'as_is'""",
        columns=(
            PERIOD,
            _col("geography_level", "VARCHAR", "Level", "england, region, icb or unassigned."),
            _col("geography_code", "VARCHAR", "Code", "ICB, region or England code."),
            _col("icb", "VARCHAR", "ICB", "Integrated care board, region or England, as published."),
            _col("basis", "VARCHAR", "Basis", "Trusts in the ICB (by provider) or the ICB's population."),
            _col("waiting_list", "BIGINT", "Waiting list", "Incomplete RTT pathways at month end."),
            _col("within_18_weeks", "BIGINT", "Waiting 18 weeks or less"),
            _col("pct_within_18_weeks", "DOUBLE", "% within 18 weeks"),
            _col("over_52_weeks", "BIGINT", "Waiting more than 52 weeks"),
            _col("non_english_commissioner_pathways", "BIGINT", "Of which non-English commissioners"),
        ),
        audiences=(ICB_ANALYST, EVALUATOR),
        rls=None,
    ),
    # --- Evaluation -----------------------------------------------------------------------------------------------
    Dataset(
        name="eval_estimates",
        description="Effect estimates around each collaborative's go-live, by method, with 95% confidence "
        "intervals and the months and comparators behind them. One row per collaborative, metric, method and "
        "estimate (and ICB).",
        sql=_with(CTE_ICBS, CTE_COLLABORATIVE_ICBS)
        + """select
    estimate.collaborative_code,
    ci.collaborative,
    ci.icb,
    estimate.metric_code,
    metric.metric_name as metric,
    estimate.collaborative_code || ' · ' || metric.metric_name as evaluated_series,
    case estimate.method
        when 'before_after' then 'Before/after'
        when 'did' then 'Difference-in-differences'
        when 'its' then 'Interrupted time series'
        when 'synthetic_control' then 'Synthetic control'
        else estimate.method
    end as method,
    case estimate.estimate_type
        when 'mean_difference' then 'Mean after − mean before'
        when 'did' then 'Effect against comparator trusts'
        when 'level_change' then 'Step change at go-live'
        when 'slope_change' then 'Change in monthly trend'
        when 'synthetic_control_gap' then 'Mean gap after go-live against the synthetic control'
        else estimate.estimate_type
    end as estimate_type,
    estimate.estimate,
    estimate.std_error,
    estimate.ci_lower,
    estimate.ci_upper,
    estimate.p_value,
    estimate.pre_periods,
    estimate.post_periods,
    estimate.comparator_count,
    estimate.pre_trend_p_value,
    estimate.note,
    case estimate.inference
        when 'welch_t' then 'Welch t-test'
        when 'newey_west_t' then 'Newey–West (HAC) t'
        when 'cluster_robust_t' then 'Clustered t (few-cluster caution)'
        when 'wild_cluster_bootstrap_webb_restricted' then 'Wild cluster bootstrap (Webb, restricted)'
        when 'placebo_groups_in_space' then 'Placebo groups in space (rank p-value)'
        else estimate.inference
    end as inference,
    estimate.go_live_date
from main.fct_evaluation as estimate
inner join collaborative_icbs as ci on ci.collaborative_code = estimate.collaborative_code
inner join main.dim_metric as metric on metric.metric_code = estimate.metric_code""",
        columns=(
            COLLABORATIVE_CODE,
            COLLABORATIVE,
            ICB,
            METRIC_CODE,
            METRIC,
            _col("evaluated_series", "VARCHAR", "Evaluated series", "Collaborative and metric evaluated."),
            _col("method", "VARCHAR", "Method"),
            _col("estimate_type", "VARCHAR", "Estimate"),
            _col("estimate", "DOUBLE", "Estimate", "In the metric's unit (per month for a change in trend)."),
            _col("std_error", "DOUBLE", "Standard error"),
            _col("ci_lower", "DOUBLE", "95% CI lower"),
            _col("ci_upper", "DOUBLE", "95% CI upper"),
            _col("p_value", "DOUBLE", "p-value"),
            _col("pre_periods", "BIGINT", "Months before"),
            _col("post_periods", "BIGINT", "Months after"),
            _col(
                "comparator_count",
                "BIGINT",
                "Comparator trusts",
                "Comparators of the DiD, donors of the synthetic control.",
            ),
            _col("pre_trend_p_value", "DOUBLE", "Pre-trend p-value", "Test of parallel trends before go-live (DiD)."),
            _col("note", "VARCHAR", "Note"),
            _col(
                "inference",
                "VARCHAR",
                "Inference",
                "Where the interval and p-value come from; DiD uses a wild cluster bootstrap, which holds with few "
                "trusts.",
            ),
            _col("go_live_date", "DATE", "Go-live"),
        ),
        audiences=(EVALUATOR,),
        rls="collaborative",
    ),
    Dataset(
        name="eval_event_study",
        description="The event study around each collaborative's go-live: month by month, the member trusts' "
        "difference from the comparator trusts relative to the month before go-live, with its 95% interval (wild "
        "cluster bootstrap) and the joint test of the months before go-live. One row per collaborative, metric, "
        "event time (and ICB).",
        sql=_with(CTE_ICBS, CTE_COLLABORATIVE_ICBS)
        + """select
    study.collaborative_code,
    ci.collaborative,
    ci.icb,
    study.metric_code,
    metric.metric_name as metric,
    study.collaborative_code || ' · ' || metric.metric_name as evaluated_series,
    study.event_time,
    study.event_time_label,
    study.is_binned,
    study.is_reference,
    study.months_in_bin,
    study.estimate,
    study.ci_lower,
    study.ci_upper,
    study.p_value,
    study.pre_periods,
    study.post_periods,
    study.treated_count,
    study.comparator_count,
    study.pre_trend_p_value,
    case
        when study.pre_trend_p_value < 0.05 then 'Leads not jointly zero: pre-trend fails'
        when study.pre_trend_p_value is not null then 'Leads jointly zero: no evidence of a pre-trend'
        else 'Pre-trend not tested'
    end as pre_trend,
    case study.inference
        when 'wild_cluster_bootstrap_webb_restricted' then 'Wild cluster bootstrap (Webb, restricted)'
        when 'cluster_robust_t' then 'Clustered t (few-cluster caution)'
        when 'reference' then 'Reference month (zero by definition)'
        else study.inference
    end as inference,
    study.note,
    study.go_live_date
from main.fct_event_study as study
inner join collaborative_icbs as ci on ci.collaborative_code = study.collaborative_code
inner join main.dim_metric as metric on metric.metric_code = study.metric_code""",
        columns=(
            COLLABORATIVE_CODE,
            COLLABORATIVE,
            ICB,
            METRIC_CODE,
            METRIC,
            _col("evaluated_series", "VARCHAR", "Evaluated series", "Collaborative and metric evaluated."),
            _col(
                "event_time",
                "BIGINT",
                "Months from go-live",
                "0 is the go-live month, −1 the reference; the first and last hold every month beyond them.",
            ),
            _col("event_time_label", "VARCHAR", "Event time"),
            _col("is_binned", "BOOLEAN", "Binned end", "The event time holds every month beyond it."),
            _col("is_reference", "BOOLEAN", "Reference month"),
            _col("months_in_bin", "BIGINT", "Months in bin"),
            _col(
                "estimate",
                "DOUBLE",
                "Difference from comparators",
                "Members minus comparators, relative to the month before go-live, in the metric's unit.",
            ),
            _col("ci_lower", "DOUBLE", "95% CI lower"),
            _col("ci_upper", "DOUBLE", "95% CI upper"),
            _col("p_value", "DOUBLE", "p-value"),
            _col("pre_periods", "BIGINT", "Months before"),
            _col("post_periods", "BIGINT", "Months after"),
            _col("treated_count", "BIGINT", "Member trusts"),
            _col("comparator_count", "BIGINT", "Comparator trusts"),
            _col(
                "pre_trend_p_value",
                "DOUBLE",
                "Pre-trend p-value",
                "Joint test that every month before go-live is zero (cluster-robust Wald F).",
            ),
            _col("pre_trend", "VARCHAR", "Pre-trend", "The joint test of the leads, in words."),
            _col("inference", "VARCHAR", "Inference", "Where the interval comes from."),
            _col("note", "VARCHAR", "Note"),
            _col("go_live_date", "DATE", "Go-live"),
        ),
        audiences=(EVALUATOR,),
        rls="collaborative",
    ),
    Dataset(
        name="eval_synthetic_donors",
        description="The synthetic control's donor trusts for each evaluated collaborative series: the weight each "
        "carries in the synthetic collaborative, and its own placebo (the donor as if it were treated). One row per "
        "collaborative, metric and donor trust (and ICB).",
        sql=_with(CTE_ICBS, CTE_COLLABORATIVE_ICBS, CTE_TRUSTS)
        + """select
    donor.collaborative_code,
    ci.collaborative,
    ci.icb,
    donor.metric_code,
    metric.metric_name as metric,
    donor.collaborative_code || ' · ' || metric.metric_name as evaluated_series,
    donor.org_code,
    coalesce(trusts.trust, donor.org_code) as trust,
    donor.weight,
    donor.placebo_estimate,
    donor.placebo_pre_rmspe,
    donor.placebo_rmspe_ratio,
    donor.treated_pre_rmspe,
    donor.treated_rmspe_ratio,
    donor.donor_count,
    donor.pre_periods,
    donor.post_periods,
    donor.go_live_date
from main.fct_synthetic_control_donor as donor
inner join collaborative_icbs as ci on ci.collaborative_code = donor.collaborative_code
inner join main.dim_metric as metric on metric.metric_code = donor.metric_code
left join trusts on trusts.org_code = donor.org_code""",
        columns=(
            COLLABORATIVE_CODE,
            COLLABORATIVE,
            ICB,
            METRIC_CODE,
            METRIC,
            _col("evaluated_series", "VARCHAR", "Evaluated series", "Collaborative and metric evaluated."),
            ORG_CODE,
            TRUST,
            _col("weight", "DOUBLE", "Weight", "The donor's share of the synthetic collaborative (weights sum to 1)."),
            _col("placebo_estimate", "DOUBLE", "Placebo gap", "The donor's own mean gap after go-live, as if treated."),
            _col("placebo_pre_rmspe", "DOUBLE", "Placebo pre-period RMSPE"),
            _col("placebo_rmspe_ratio", "DOUBLE", "Placebo post/pre RMSPE"),
            _col(
                "treated_pre_rmspe",
                "DOUBLE",
                "Collaborative pre-period RMSPE",
                "How closely the synthetic collaborative follows the real one before go-live.",
            ),
            _col(
                "treated_rmspe_ratio",
                "DOUBLE",
                "Collaborative post/pre RMSPE",
                "Beside the donors' own ratios: the classic in-space placebo view (the p-value and interval come from "
                "placebo groups as large as the collaborative, see the estimate's note).",
            ),
            _col("donor_count", "BIGINT", "Donor trusts"),
            _col("pre_periods", "BIGINT", "Months before"),
            _col("post_periods", "BIGINT", "Months after"),
            _col("go_live_date", "DATE", "Go-live"),
        ),
        audiences=(EVALUATOR,),
        rls="collaborative",
    ),
    Dataset(
        name="eval_before_after",
        description="Each evaluated collaborative series (like-for-like membership) month by month, split at "
        f"go-live into before, the {EVALUATION_TRANSITION_MONTHS} transition months left out of the estimates, and "
        f"after, with the means of the {EVALUATION_WINDOW_MONTHS} months either side. One row per evaluated series, "
        "month (and ICB).",
        sql=_with(CTE_ICBS, CTE_COLLABORATIVE_ICBS)
        + f""", evaluated as (
    select distinct collaborative_code, metric_code, go_live_date from main.fct_evaluation
),
series as (
    select
        outcome.collaborative_code,
        outcome.metric_code,
        outcome.period_month,
        evaluated.go_live_date,
        case when outcome.is_partial then null else outcome.value end as value,
        date_diff('month', evaluated.go_live_date, outcome.period_month) as months_from_go_live
    from main.fct_collaborative_metric_month as outcome
    inner join evaluated
        on evaluated.collaborative_code = outcome.collaborative_code
        and evaluated.metric_code = outcome.metric_code
    where outcome.membership_basis = 'as_is' and outcome.org_code = 'ALL'
),
windows as (
    select
        *,
        avg(case when months_from_go_live between -{EVALUATION_WINDOW_MONTHS} and -1 then value end)
            over (partition by collaborative_code, metric_code) as before_mean,
        avg(
            case
                when months_from_go_live between {EVALUATION_TRANSITION_MONTHS}
                    and {EVALUATION_TRANSITION_MONTHS + EVALUATION_WINDOW_MONTHS - 1} then value
            end
        ) over (partition by collaborative_code, metric_code) as after_mean
    from series
)
select
    windows.collaborative_code,
    ci.collaborative,
    ci.icb,
    windows.metric_code,
    metric.metric_name as metric,
    windows.collaborative_code || ' · ' || metric.metric_name as evaluated_series,
    windows.period_month,
    windows.go_live_date,
    windows.months_from_go_live,
    windows.value,
    case when windows.months_from_go_live < 0 then windows.value end as value_before,
    case when windows.months_from_go_live between 0 and {EVALUATION_TRANSITION_MONTHS - 1} then windows.value end
        as value_transition,
    case when windows.months_from_go_live >= {EVALUATION_TRANSITION_MONTHS} then windows.value end as value_after,
    case when windows.months_from_go_live between -{EVALUATION_WINDOW_MONTHS} and -1 then windows.before_mean end
        as before_mean,
    case
        when windows.months_from_go_live between {EVALUATION_TRANSITION_MONTHS}
            and {EVALUATION_TRANSITION_MONTHS + EVALUATION_WINDOW_MONTHS - 1} then windows.after_mean
    end as after_mean,
    100.0 * windows.value / nullif(windows.before_mean, 0) as value_indexed
from windows
inner join collaborative_icbs as ci on ci.collaborative_code = windows.collaborative_code
inner join main.dim_metric as metric on metric.metric_code = windows.metric_code""",
        columns=(
            COLLABORATIVE_CODE,
            COLLABORATIVE,
            ICB,
            METRIC_CODE,
            METRIC,
            _col("evaluated_series", "VARCHAR", "Evaluated series", "Collaborative and metric evaluated."),
            PERIOD,
            _col("go_live_date", "DATE", "Go-live"),
            _col("months_from_go_live", "BIGINT", "Months from go-live", "0 is the go-live month."),
            _col(
                "value",
                "DOUBLE",
                "Value",
                "Collaborative value, today's members over all history; partial months left out.",
            ),
            _col("value_before", "DOUBLE", "Before go-live"),
            _col("value_transition", "DOUBLE", "Transition (left out)"),
            _col("value_after", "DOUBLE", "After go-live"),
            _col("before_mean", "DOUBLE", f"Mean of the {EVALUATION_WINDOW_MONTHS} months before"),
            _col("after_mean", "DOUBLE", f"Mean of the {EVALUATION_WINDOW_MONTHS} months after"),
            _col("value_indexed", "DOUBLE", "Index (months before = 100)"),
        ),
        audiences=(EVALUATOR,),
        rls="collaborative",
    ),
    Dataset(
        name="eval_member_series",
        description="The member trusts (today's members) of each evaluated collaborative series, month by month. "
        "One row per evaluated series, member trust and month.",
        sql=_with(CTE_ICBS, CTE_TRUSTS)
        + """, evaluated as (
    select distinct collaborative_code, metric_code, go_live_date from main.fct_evaluation
)
select
    member.collaborative_code,
    collaborative.collaborative_name as collaborative,
    member.org_code,
    coalesce(trusts.trust, member.org_code) as trust,
    trusts.icb,
    member.metric_code,
    metric.metric_name as metric,
    member.collaborative_code || ' · ' || metric.metric_name as evaluated_series,
    member.period_month,
    date_diff('month', evaluated.go_live_date, member.period_month) as months_from_go_live,
    case when member.is_suppressed then null else member.value end as value
from main.fct_collaborative_metric_month as member
inner join evaluated
    on evaluated.collaborative_code = member.collaborative_code and evaluated.metric_code = member.metric_code
inner join main.dim_collaborative as collaborative on collaborative.collaborative_code = member.collaborative_code
inner join main.dim_metric as metric on metric.metric_code = member.metric_code
left join trusts on trusts.org_code = member.org_code
where member.membership_basis = 'as_is' and member.org_code <> 'ALL'""",
        columns=(
            COLLABORATIVE_CODE,
            COLLABORATIVE,
            ORG_CODE,
            TRUST,
            _col("icb", "VARCHAR", "ICB", "The trust's integrated care board."),
            METRIC_CODE,
            METRIC,
            _col("evaluated_series", "VARCHAR", "Evaluated series", "Collaborative and metric evaluated."),
            PERIOD,
            _col("months_from_go_live", "BIGINT", "Months from go-live"),
            _col("value", "DOUBLE", "Value"),
        ),
        audiences=(EVALUATOR,),
        rls="collaborative",
    ),
    # --- Data quality -------------------------------------------------------------------------------------------
    Dataset(
        name="dq_check_results",
        description="Every quality check of the feeds: file contracts of loaded months, files rejected, "
        "rows loaded but left out of the measures, and rows flagged by warnings in files loaded all the same. One "
        "row per run, feed, month and check.",
        sql=f"""select
    source,
    {_FEED_LABEL} as feed,
    period_month,
    check_name,
    case
        when check_name = 'file_contract' then 'File contract (layout, types, internal sums)'
        when starts_with(check_name, 'rejected_file:')
            then 'File rejected: ' || replace(substr(check_name, 15), '_', ' ')
        when starts_with(check_name, 'row_left_out:')
            then 'Rows left out: ' || replace(substr(check_name, 14), '_', ' ')
        when starts_with(check_name, 'row_flagged:')
            then 'Rows flagged (warning, file loaded): ' || replace(substr(check_name, 13), '_', ' ')
        when starts_with(check_name, 'mart_warning:')
            then 'Mart warning (published): ' || replace(substr(check_name, 14), '_', ' ')
        else replace(check_name, '_', ' ')
    end as check_label,
    case
        when success then 'Passed'
        when starts_with(check_name, 'row_flagged:') or starts_with(check_name, 'mart_warning:') then 'Warning'
        else 'Failed or rows left out'
    end as result,
    case when success then 1 else 0 end as passed,
    observed_value,
    details,
    run_at
from main.fct_data_quality""",
        columns=(
            _col("source", "VARCHAR", "Feed code"),
            _col("feed", "VARCHAR", "Feed"),
            PERIOD,
            _col("check_name", "VARCHAR", "Check code"),
            _col("check_label", "VARCHAR", "Check"),
            _col("result", "VARCHAR", "Result"),
            _col("passed", "INTEGER", "Passed (1/0)"),
            _col("observed_value", "DOUBLE", "Observed", "Violations, rows left out, or rows flagged."),
            _col("details", "VARCHAR", "Details"),
            _col("run_at", "TIMESTAMP", "Checked at"),
        ),
        audiences=(PMO, ICB_ANALYST, EVALUATOR),
        rls=None,
    ),
    Dataset(
        name="dq_source_freshness",
        description="Each feed's latest month, when it was last loaded, how many months it holds, how many "
        "months the publisher revised, and the share of its values suppressed. One row per feed.",
        sql=f"""select
    source,
    {_FEED_LABEL} as feed,
    latest_period,
    date_diff('month', latest_period, current_date) as months_since_latest,
    months_held,
    loaded_at,
    revisions,
    100.0 * suppressed_share as suppressed_pct
from main.dim_source_freshness""",
        columns=(
            _col("source", "VARCHAR", "Feed code"),
            _col("feed", "VARCHAR", "Feed"),
            _col("latest_period", "DATE", "Latest month held"),
            _col("months_since_latest", "BIGINT", "Months since the latest month"),
            _col("months_held", "BIGINT", "Months held"),
            _col("loaded_at", "TIMESTAMP", "Last loaded (UTC)"),
            _col("revisions", "BIGINT", "Months revised", "Months the publisher replaced with a revision."),
            _col("suppressed_pct", "DOUBLE", "Suppressed (%)", "Share of values suppressed (small numbers)."),
        ),
        audiences=(PMO, ICB_ANALYST, EVALUATOR),
        rls=None,
    ),
    Dataset(
        name="dq_suppression",
        description="Values suppressed for disclosure control, by feed, trust and month: published "
        "out-of-area placement counts marked '*', and length-of-stay trust-months suppressed by the "
        "publisher's rule (acute, HES: 1 to 7 discharges; mental health, MHSDS: under 5). "
        "One row per feed, trust and month.",
        sql=_with(CTE_ICBS, CTE_TRUSTS)
        + """, suppression as (
    select
        'oap' as source,
        period_month,
        org_code,
        5 as values_total,
        cast(inappropriate_oaps_started_suppressed as integer)
        + cast(inappropriate_oap_bed_days_suppressed as integer)
        + cast(inappropriate_oaps_active_end_suppressed as integer)
        + cast(inappropriate_oaps_ended_suppressed as integer)
        + cast(adult_acute_inappropriate_oap_bed_days_suppressed as integer) as values_suppressed
    from main.fct_oap_provider_month
    union all
    select
        case setting when 'acute' then 'los_acute' else 'los_mh' end as source,
        period_month,
        org_code,
        1 as values_total,
        cast(is_suppressed as integer) as values_suppressed
    from main.fct_los_provider_month
)
select
    suppression.source,
    """
        + _FEED_LABEL.replace("source", "suppression.source")
        + """ as feed,
    suppression.period_month,
    suppression.org_code,
    coalesce(trusts.trust, suppression.org_code) as trust,
    trusts.icb,
    suppression.values_total,
    suppression.values_suppressed
from suppression
left join trusts on trusts.org_code = suppression.org_code""",
        columns=(
            _col("source", "VARCHAR", "Feed code"),
            _col("feed", "VARCHAR", "Feed"),
            PERIOD,
            ORG_CODE,
            TRUST,
            _col("icb", "VARCHAR", "ICB", "The trust's integrated care board."),
            _col("values_total", "INTEGER", "Values published"),
            _col("values_suppressed", "INTEGER", "Values suppressed"),
        ),
        audiences=(PMO, ICB_ANALYST, EVALUATOR),
        rls="member_trusts",
    ),
    Dataset(
        name="dq_los_published_vs_computed",
        description="The same length of stay two ways: NHS England's published mental health figure (MHSDS MHS140a "
        "mean, MHS140b median: adult acute beds, ages 18 to 64, the rolling quarter ending in the month) beside the "
        "figure computed here from the trust's own MHSDS extract, and the difference. One row per trust, quarter "
        "and measure where both exist.",
        sql=_with(CTE_ICBS, CTE_TRUSTS)
        + """select
    compared.period_month,
    compared.org_code,
    coalesce(trusts.trust, compared.org_code) as trust,
    trusts.icb,
    case compared.measure
        when 'mean_los_days' then 'Mean length of stay (days)'
        when 'median_los_days' then 'Median length of stay (days)'
    end as measure,
    compared.source_measure_id,
    compared.published_value,
    compared.computed_value,
    compared.difference,
    compared.pct_difference,
    compared.computed_pct_of_published_discharges,
    case
        when compared.published_is_suppressed then 'Published figure suppressed (*)'
        when compared.computed_is_suppressed then 'Computed figure hidden (under 5 discharges)'
        when abs(compared.difference) <= 0.5 then 'Matches (published figures are whole days)'
        else 'Differs'
    end as comparison,
    compared.source_file
from main.fct_los_published_vs_computed as compared
left join trusts on trusts.org_code = compared.org_code""",
        columns=(
            PERIOD,
            ORG_CODE,
            TRUST,
            _col("icb", "VARCHAR", "ICB", "The trust's integrated care board."),
            _col("measure", "VARCHAR", "Measure"),
            _col("source_measure_id", "VARCHAR", "Published measure", "NHS England's MEASURE_ID (MHS140a, MHS140b)."),
            _col("published_value", "DOUBLE", "Published (days)", "As NHS England published it, whole days."),
            _col("computed_value", "DOUBLE", "Computed here (days)", "From the trust's MHSDS extract."),
            _col("difference", "DOUBLE", "Difference (days)", "Computed minus published."),
            _col("pct_difference", "DOUBLE", "Difference (%)", "As a per cent of the published figure."),
            _col(
                "computed_pct_of_published_discharges",
                "DOUBLE",
                "Extract discharges as % of published",
                "Spells in the extract as a per cent of the people NHS England counts: well under 100 means the "
                "extract misses spells.",
            ),
            _col("comparison", "VARCHAR", "Comparison"),
            _col("source_file", "VARCHAR", "Published file"),
        ),
        audiences=(PMO, ICB_ANALYST, EVALUATOR),
        rls="member_trusts",
    ),
    Dataset(
        name="dq_partial_figures",
        description="Collaborative figures flagged partial because a member's value was suppressed or missing. "
        "One row per collaborative, ICB spanned, metric and month.",
        sql=_with(CTE_ICBS, CTE_COLLABORATIVE_ICBS)
        + """select
    outcome.collaborative_code,
    ci.collaborative,
    ci.icb,
    outcome.metric_code,
    metric.metric_name as metric,
    outcome.period_month,
    outcome.is_partial,
    outcome.members_expected,
    outcome.members_reporting
from main.fct_collaborative_metric_month as outcome
inner join collaborative_icbs as ci on ci.collaborative_code = outcome.collaborative_code
inner join main.dim_metric as metric on metric.metric_code = outcome.metric_code
where outcome.membership_basis = 'as_was' and outcome.org_code = 'ALL'""",
        columns=(
            COLLABORATIVE_CODE,
            COLLABORATIVE,
            ICB,
            METRIC_CODE,
            METRIC,
            PERIOD,
            _col("is_partial", "BOOLEAN", "Partial"),
            _col("members_expected", "BIGINT", "Members expected"),
            _col("members_reporting", "BIGINT", "Members reporting"),
        ),
        audiences=(PMO, ICB_ANALYST, EVALUATOR),
        rls="collaborative",
    ),
)

DATASET_BY_NAME = {dataset.name: dataset for dataset in DATASETS}


# ---------------------------------------------------------------------------------------------------------------
# Charts


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    description: str
    dataset: str
    spec: c.ChartSpec
    #: Dashboard filters (by name) this chart ignores although its dataset has their column.
    ignores: tuple[str, ...] = ()

    @property
    def uuid(self) -> str:
        return stable_uuid("chart", self.key)


M = c.metric
W = c.where

NUMBER = ",.0f"
ONE_DP = ",.1f"

KEY_METRICS = [
    "rtt_incomplete_pathways",
    "rtt_pct_within_18_weeks",
    "rtt_over_52_weeks",
    "rtt_median_wait_weeks",
    "oap_inappropriate_bed_days",
    "los_mean_days",
]


def _outcome_line(key: str, title: str, metric_code: str, label: str, description: str, **kwargs: Any) -> Chart:
    return Chart(
        key=key,
        title=title,
        description=description,
        dataset="icb_collaborative_outcomes",
        spec=c.timeseries(
            "echarts_timeseries_line",
            metrics=[M("MAX(value)", label)],
            groupby=["collaborative"],
            filters=[c.period(), W("metric_code", "==", metric_code)],
            **kwargs,
        ),
        ignores=("Metric",),
    )


CHARTS: tuple[Chart, ...] = (
    # --- Benefits tracker ----------------------------------------------------------------------------------------
    Chart(
        key="benefit_register",
        title="Benefits register: where each benefit stands",
        description="Each benefit in the programme office's register with its baseline, target, the latest month's "
        "value, where the trajectory says it should be, RAG status and what SPC says about variation and assurance.",
        dataset="pmo_benefit_register",
        spec=c.table(
            groupby=[
                "benefit",
                "scope",
                "metric",
                "baseline",
                "target",
                "target_date",
                "latest_month",
                "latest",
                "trajectory",
                "pct_of_target_achieved",
                "rag",
                "spc_variation",
                "spc_assurance",
                "owner",
            ],
            sort_by=M("MIN(benefit_id)", "Benefit id"),
            column_config={
                "baseline": {"d3NumberFormat": ONE_DP},
                "target": {"d3NumberFormat": ONE_DP},
                "latest": {"d3NumberFormat": ONE_DP},
                "trajectory": {"d3NumberFormat": ONE_DP},
                "pct_of_target_achieved": {"d3NumberFormat": ".0f"},
            },
        ),
        ignores=("Benefit", "Period"),
    ),
    Chart(
        key="benefit_spc",
        title="SPC chart for the selected benefit: monthly value, mean and process limits",
        description="Making Data Count XmR chart of the benefit's monthly value. Points outside the limits, runs "
        "and trends are special causes, coloured as improvement or concern. Limits restart at the rebase date. "
        "Pick the benefit in the Benefit filter.",
        dataset="pmo_benefit_spc",
        spec=c.mixed_timeseries(
            lines=[
                M("MAX(monthly_value)", "Monthly value"),
                M("MAX(spc_mean)", "Mean"),
                M("MAX(spc_upl)", "Upper process limit"),
                M("MAX(spc_lpl)", "Lower process limit"),
                M("MAX(target_value)", "Target"),
            ],
            points=[
                M("MAX(special_cause_improvement)", "Special cause: improvement"),
                M("MAX(special_cause_concern)", "Special cause: concern"),
            ],
            filters=[c.period()],
        ),
    ),
    Chart(
        key="benefit_trajectory",
        title="Progress against trajectory for the selected benefit",
        description="The tracked value (smoothed where the register asks) against the straight-line trajectory "
        "from baseline to target.",
        dataset="pmo_benefit_spc",
        spec=c.timeseries(
            "echarts_timeseries_line",
            metrics=[
                M("MAX(actual_value)", "Actual"),
                M("MAX(trajectory_value)", "Trajectory"),
                M("MAX(baseline_value)", "Baseline"),
                M("MAX(target_value)", "Target"),
            ],
            filters=[c.period()],
            truncate_y_axis=True,
        ),
    ),
    Chart(
        key="benefit_member_values",
        title="Each member trust on the selected benefit's measure",
        description="The member trusts' own values on the measure the benefit tracks (members of that month), so "
        "a programme office can see which trusts drive the collaborative's figure.",
        dataset="pmo_member_contribution",
        spec=c.timeseries(
            "echarts_timeseries_line",
            metrics=[M("MAX(value)", "Value")],
            groupby=["trust"],
            filters=[c.period()],
            truncate_y_axis=True,
        ),
    ),
    Chart(
        key="benefit_member_share",
        title="Each member's contribution in the latest month",
        description="Each member trust's value and its share of the collaborative's total count (patients waiting, "
        "bed days …) in the latest month, for every benefit.",
        dataset="pmo_member_contribution",
        spec=c.table(
            groupby=["trust", "benefit"],
            metrics=[
                M("MAX(value)", "Latest value"),
                M("MAX(numerator)", "Count"),
                M("MAX(share_of_collaborative_pct)", "Share of the collaborative (%)"),
            ],
            filters=[W("is_latest_month", "IS TRUE")],
            column_config={
                "Latest value": {"d3NumberFormat": ONE_DP},
                "Count": {"d3NumberFormat": NUMBER},
                "Share of the collaborative (%)": {"d3NumberFormat": ".1f", "showCellBars": True},
            },
        ),
        ignores=("Period",),
    ),
    # --- Outcomes monitor ----------------------------------------------------------------------------------------
    _outcome_line(
        "outcome_waiting_list",
        "Waiting list by collaborative",
        "rtt_incomplete_pathways",
        "Patients waiting",
        "Incomplete referral-to-treatment pathways at month end, summed over the collaborative's members of that "
        "month.",
        y_axis_format=NUMBER,
    ),
    _outcome_line(
        "outcome_long_waits",
        "Long waits: patients waiting more than 52 weeks",
        "rtt_over_52_weeks",
        "Waiting more than 52 weeks",
        "Patients on the waiting list for more than 52 weeks at month end, by collaborative.",
        y_axis_format=NUMBER,
    ),
    _outcome_line(
        "outcome_18_weeks",
        "18-week performance against the 92% standard",
        "rtt_pct_within_18_weeks",
        "% waiting 18 weeks or less",
        "Share of the waiting list waiting 18 weeks or less, by collaborative; the dashed line is the 92% "
        "constitutional standard.",
        y_axis_format=".1f",
        annotation_layers=[c.formula_annotation("92% standard", 92)],
    ),
    _outcome_line(
        "outcome_oap_bed_days",
        "Inappropriate out-of-area placement bed days",
        "oap_inappropriate_bed_days",
        "Inappropriate OAP bed days",
        "Bed days of inappropriate out-of-area placements in the month (MHSDS OAP02, sending trusts), by "
        "mental health collaborative. Published figures are rounded to 5.",
        y_axis_format=NUMBER,
    ),
    _outcome_line(
        "outcome_length_of_stay",
        "Mean length of stay (days)",
        "los_mean_days",
        "Mean length of stay",
        "Mean length of stay of spells discharged in the month: acute for acute collaboratives, adult acute "
        "mental health beds for mental health collaboratives.",
        y_axis_format=ONE_DP,
    ),
    Chart(
        key="outcome_side_by_side",
        title="Collaboratives side by side, latest month",
        description="The headline measures of each collaborative in its latest month. Pick metrics in the Metric "
        "filter.",
        dataset="icb_collaborative_outcomes",
        spec=c.pivot_table(
            rows=["collaborative"],
            columns=["metric"],
            metrics=[M("MAX(value)", "Value")],
            filters=[W("is_latest_month", "IS TRUE"), W("metric_code", "IN", KEY_METRICS)],
            value_format=",.1~f",
        ),
        ignores=("Period",),
    ),
    Chart(
        key="outcome_member_funnel",
        title="Member funnel plot: waiting within 18 weeks, latest month",
        description="Each member trust's 18-week performance against the size of its waiting list, with its "
        "collaborative's value and the 95% and 99.8% funnel limits at that size, widened for the variation between "
        "all acute trusts that month beyond chance (over-dispersion, as FunnelPlotR and SHMI). A trust outside the "
        "99.8% limits differs by more than chance and the usual spread between trusts. For learning, not ranking.",
        dataset="icb_member_variation",
        spec=c.timeseries(
            "echarts_timeseries_scatter",
            x_axis="denominator",
            temporal=False,
            metrics=[
                M("MAX(value)", "Member trust"),
                M("MAX(collaborative_value)", "Collaborative"),
                M("MAX(lower_95)", "95% limit (lower)"),
                M("MAX(upper_95)", "95% limit (upper)"),
                M("MAX(lower_998)", "99.8% limit (lower)"),
                M("MAX(upper_998)", "99.8% limit (upper)"),
            ],
            filters=[W("is_latest_month", "IS TRUE"), W("metric_code", "==", "rtt_pct_within_18_weeks")],
            x_axis_title="Patients waiting (trust)",
            y_axis_title="% within 18 weeks",
            y_axis_format=".1f",
            markers=True,
            truncate_y_axis=True,
        ),
        ignores=("Metric", "Period"),
    ),
    Chart(
        key="outcome_funnel_outliers",
        title="Member trusts against the funnel limits, latest month",
        description="Where each member trust sits against its collaborative's funnel limits, for every "
        "proportion measure in the latest month.",
        dataset="icb_member_variation",
        spec=c.table(
            groupby=["collaborative", "trust", "metric", "funnel_position"],
            metrics=[
                M("MAX(value)", "Member value"),
                M("MAX(collaborative_value)", "Collaborative value"),
                M("MAX(denominator)", "Denominator"),
            ],
            filters=[W("is_latest_month", "IS TRUE"), W("lower_95", "IS NOT NULL")],
            sort_by=M("MAX(abs(value - collaborative_value))", "Distance from the collaborative"),
            sort_descending=True,
            column_config={
                "Member value": {"d3NumberFormat": ONE_DP},
                "Collaborative value": {"d3NumberFormat": ONE_DP},
                "Denominator": {"d3NumberFormat": NUMBER},
            },
        ),
        ignores=("Period",),
    ),
    Chart(
        key="outcome_icb_waiting_list",
        title="Waiting list by ICB, summed from trusts",
        description="Incomplete pathways of every trust in the ICB, each trust counted once (a trust in two "
        "collaboratives is not counted twice).",
        dataset="icb_trust_outcomes",
        spec=c.timeseries(
            "echarts_timeseries_line",
            metrics=[M("SUM(waiting_list)", "Patients waiting")],
            groupby=["icb"],
            filters=[c.period()],
            y_axis_format=NUMBER,
        ),
    ),
    Chart(
        key="outcome_icb_published",
        title="Waiting list by ICB as NHS England publishes it (today's ICBs, trusts in the ICB)",
        description="Every trust's pathways under the ICB it sits in today, over all history, so a trend runs "
        "straight through the April 2026 ICB mergers. Read from fct_rtt_geography_month, which also holds the "
        "ICB's own population (by commissioner), the ICBs as they were, regions and England.",
        dataset="icb_rtt_geography",
        spec=c.timeseries(
            "echarts_timeseries_line",
            metrics=[M("SUM(waiting_list)", "Patients waiting")],
            groupby=["icb"],
            filters=[
                c.period(),
                c.where("geography_level", "==", "icb"),
                c.where("basis", "==", "Trusts in the ICB"),
            ],
            y_axis_format=NUMBER,
        ),
    ),
    # --- Evaluation ----------------------------------------------------------------------------------------------
    Chart(
        key="evaluation_estimates",
        title="Did collaboration make a difference? Estimates with 95% confidence intervals, by method",
        description="Before/after (12 months either side of go-live, transition months left out), "
        "difference-in-differences against comparable trusts outside such collaboratives (errors clustered by "
        "trust, with a pre-trend test), interrupted time series (Newey–West errors) and synthetic control (a "
        "weighted mix of comparator trusts fitted before go-live; p-value and interval from each donor as if "
        "treated; in simulation its interval covers 87% for a nominal 95%, so the DiD is the headline). An "
        "interval that spans zero is no evidence of an effect.",
        dataset="eval_estimates",
        spec=c.table(
            groupby=[
                "collaborative",
                "metric",
                "method",
                "estimate_type",
                "estimate",
                "ci_lower",
                "ci_upper",
                "p_value",
                "pre_periods",
                "post_periods",
                "comparator_count",
                "pre_trend_p_value",
                "inference",
                "go_live_date",
            ],
            sort_by=M("MIN(evaluated_series || method || estimate_type)", "Order"),
            column_config={
                "estimate": {"d3NumberFormat": ",.2f"},
                "ci_lower": {"d3NumberFormat": ",.2f"},
                "ci_upper": {"d3NumberFormat": ",.2f"},
                "p_value": {"d3NumberFormat": ".3f"},
                "pre_trend_p_value": {"d3NumberFormat": ".3f"},
            },
        ),
        ignores=("Evaluated series",),
    ),
    Chart(
        key="evaluation_event_study",
        title="Event study: members against comparators month by month around go-live, with 95% intervals",
        description="The member trusts' difference from the comparator trusts in each month from go-live, relative "
        "to the month before go-live (zero), with trust and month fixed effects, on the same trusts and months as "
        "the difference-in-differences; the first and last points hold every month beyond them. Intervals come from "
        "the restricted wild cluster bootstrap. Points before go-live should sit around zero: if they do not (see "
        "the pre-trend test beside the chart), the comparison trusts were on a different path before "
        "go-live and the effect is to be treated with caution. Pick the series in the Evaluated series filter.",
        dataset="eval_event_study",
        spec=c.timeseries(
            "echarts_timeseries_line",
            x_axis="event_time",
            temporal=False,
            metrics=[
                M("MAX(estimate)", "Difference from comparators"),
                M("MAX(ci_lower)", "95% CI lower"),
                M("MAX(ci_upper)", "95% CI upper"),
            ],
            x_axis_title="Months from go-live (−1 = reference)",
            markers=True,
        ),
    ),
    Chart(
        key="evaluation_pre_trend",
        title="Were members and comparators on the same path before go-live?",
        description="The joint test that the event study's months before go-live are all zero (cluster-robust "
        "Wald F over trusts). A small p-value says the comparison trusts were on a different path before go-live, "
        "so the difference-in-differences and event-study effects are to be treated with caution.",
        dataset="eval_event_study",
        spec=c.table(
            groupby=[
                "collaborative",
                "metric",
                "pre_trend",
                "pre_trend_p_value",
                "pre_periods",
                "post_periods",
                "treated_count",
                "comparator_count",
            ],
            sort_by=M("MIN(evaluated_series)", "Order"),
            column_config={"pre_trend_p_value": {"d3NumberFormat": ".3f"}},
        ),
        ignores=("Evaluated series",),
    ),
    Chart(
        key="evaluation_synthetic_donors",
        title="Synthetic control: the donor trusts behind the selected series, and their placebos",
        description="Each comparator trust's weight in the synthetic collaborative (fitted on the months before "
        "go-live) and its own placebo: its gap after go-live and its post/pre RMSPE ratio when it is treated as if "
        "it had gone live. The estimate's p-value and interval come from placebo groups of as many donors as the "
        "collaborative has members (a mean of several trusts is less noisy than any one), named in its note.",
        dataset="eval_synthetic_donors",
        spec=c.table(
            groupby=[
                "trust",
                "weight",
                "placebo_estimate",
                "placebo_pre_rmspe",
                "placebo_rmspe_ratio",
                "treated_pre_rmspe",
                "treated_rmspe_ratio",
                "donor_count",
            ],
            sort_by=M("MAX(weight)", "Weight"),
            column_config={
                "weight": {"d3NumberFormat": ".3f"},
                "placebo_estimate": {"d3NumberFormat": ",.2f"},
                "placebo_pre_rmspe": {"d3NumberFormat": ",.2f"},
                "placebo_rmspe_ratio": {"d3NumberFormat": ",.2f"},
                "treated_pre_rmspe": {"d3NumberFormat": ",.2f"},
                "treated_rmspe_ratio": {"d3NumberFormat": ",.2f"},
            },
        ),
    ),
    Chart(
        key="evaluation_before_after",
        title="Before and after go-live for the selected series",
        description=f"The collaborative's monthly value (today's members over all history), in three parts: "
        f"before go-live, the {EVALUATION_TRANSITION_MONTHS} transition months the estimates leave out, and after. "
        f"Flat lines are the means of the {EVALUATION_WINDOW_MONTHS} months either side, whose difference is the "
        "before/after estimate. Pick the series in the Evaluated series filter.",
        dataset="eval_before_after",
        spec=c.timeseries(
            "echarts_timeseries_line",
            metrics=[
                M("MAX(value_before)", "Before go-live"),
                M("MAX(value_transition)", "Transition (left out)"),
                M("MAX(value_after)", "After go-live"),
                M("MAX(before_mean)", f"Mean, {EVALUATION_WINDOW_MONTHS} months before"),
                M("MAX(after_mean)", f"Mean, {EVALUATION_WINDOW_MONTHS} months after"),
            ],
            filters=[c.period()],
            truncate_y_axis=True,
        ),
    ),
    Chart(
        key="evaluation_indexed",
        title="Every evaluated series around its go-live (months before go-live = 100)",
        description="Each evaluated collaborative series divided by its mean over the 12 months before go-live, "
        "on a common axis of months from go-live (0 = go-live), so that series in different units can be compared.",
        dataset="eval_before_after",
        spec=c.timeseries(
            "echarts_timeseries_line",
            x_axis="months_from_go_live",
            temporal=False,
            metrics=[M("MAX(value_indexed)", "Index")],
            groupby=["evaluated_series"],
            filters=[
                W("months_from_go_live", ">=", -EVALUATION_WINDOW_MONTHS),
                W("months_from_go_live", "<=", EVALUATION_TRANSITION_MONTHS + EVALUATION_WINDOW_MONTHS - 1),
            ],
            x_axis_title="Months from go-live",
            y_axis_format=".0f",
        ),
        ignores=("Evaluated series", "Period"),
    ),
    Chart(
        key="evaluation_members",
        title="Member trusts of the selected series before and after go-live",
        description="The member trusts' own values on the evaluated measure, to see whether a change is shared "
        "or driven by one trust.",
        dataset="eval_member_series",
        spec=c.timeseries(
            "echarts_timeseries_line",
            metrics=[M("MAX(value)", "Value")],
            groupby=["trust"],
            filters=[c.period()],
            truncate_y_axis=True,
        ),
    ),
    # --- Data quality --------------------------------------------------------------------------------------------
    Chart(
        key="quality_checks_by_month",
        title="Quality checks by month and result",
        description="File contracts of every month loaded, files rejected and rows left out of the measures.",
        dataset="dq_check_results",
        spec=c.timeseries(
            "echarts_timeseries_bar",
            metrics=[M("COUNT(*)", "Checks")],
            groupby=["result"],
            filters=[c.period()],
            stack=True,
            y_axis_format=NUMBER,
        ),
    ),
    Chart(
        key="quality_share_passed",
        title="Checks passed",
        description="Share of all checks in the period that passed.",
        dataset="dq_check_results",
        spec=c.big_number_total(
            metric_=M("100.0 * AVG(passed)", "% of checks passed"),
            filters=[c.period()],
            subheader="% of checks passed",
            number_format=".1f",
        ),
    ),
    Chart(
        key="quality_failed_checks",
        title="Checks that failed or left rows out",
        description="What was found, in which feed, month and file, so it can be fixed at source.",
        dataset="dq_check_results",
        spec=c.table(
            groupby=["feed", "period_month", "check_label", "details"],
            metrics=[M("SUM(observed_value)", "Rows or violations")],
            filters=[c.period(), W("passed", "==", 0)],
            column_config={"Rows or violations": {"d3NumberFormat": NUMBER}},
        ),
    ),
    Chart(
        key="quality_los_published_vs_computed",
        title="Length of stay: published by NHS England and computed here",
        description="An analyst's first question about a computed figure: does it match the published number? "
        "Mental health trusts' mean and median length of stay (adult acute beds, 18 to 64, rolling quarter) as "
        "MHSDS publishes them and as this warehouse computes them from the trust's own extract. Published figures "
        "are whole days, so differences up to half a day are rounding; MHS140 counts people, the extract spells.",
        dataset="dq_los_published_vs_computed",
        spec=c.table(
            groupby=[
                "trust",
                "period_month",
                "measure",
                "published_value",
                "computed_value",
                "difference",
                "pct_difference",
                "computed_pct_of_published_discharges",
                "comparison",
            ],
            filters=[c.period()],
            column_config={
                "computed_value": {"d3NumberFormat": ".1f"},
                "difference": {"d3NumberFormat": "+.1f"},
                "pct_difference": {"d3NumberFormat": "+.1f"},
            },
        ),
    ),
    Chart(
        key="quality_freshness",
        title="Freshness by feed",
        description="Each feed's latest month, when it was last loaded, how many months it holds, how many months "
        "the publisher revised, and the share of its values suppressed.",
        dataset="dq_source_freshness",
        spec=c.table(
            groupby=[
                "feed",
                "latest_period",
                "months_since_latest",
                "months_held",
                "loaded_at",
                "revisions",
                "suppressed_pct",
            ],
            sort_by=M("MIN(feed)", "Feed order"),
            column_config={"suppressed_pct": {"d3NumberFormat": ".1f"}},
        ),
    ),
    Chart(
        key="quality_revisions",
        title="Months revised by the publishers",
        description="Months of the feeds that a publisher replaced with a revised file (the revision replaced the "
        "earlier figures; both files are kept for audit).",
        dataset="dq_source_freshness",
        spec=c.big_number_total(
            metric_=M("SUM(revisions)", "Months revised"),
            subheader="months revised by the publishers",
            number_format=NUMBER,
        ),
    ),
    Chart(
        key="quality_share_suppressed",
        title="Values suppressed",
        description="Share of trust-level values withheld for disclosure control in the period: published "
        "counts marked '*' and length-of-stay trust-months suppressed by the publisher's rule (HES: 1 to 7 "
        "discharges; MHSDS: under 5).",
        dataset="dq_suppression",
        spec=c.big_number_total(
            metric_=M("100.0 * SUM(values_suppressed) / SUM(values_total)", "% of values suppressed"),
            filters=[c.period()],
            subheader="% of trust-level values suppressed",
            number_format=".1f",
        ),
    ),
    Chart(
        key="quality_suppression",
        title="Suppressed values by month and feed",
        description="Values withheld for disclosure control: published out-of-area placement counts marked '*' "
        "(never read as zero) and length-of-stay trust-months suppressed by the publisher's rule (HES: 1 to 7 "
        "discharges; MHSDS: under 5).",
        dataset="dq_suppression",
        spec=c.timeseries(
            "echarts_timeseries_bar",
            metrics=[M("SUM(values_suppressed)", "Values suppressed")],
            groupby=["feed"],
            filters=[c.period()],
            stack=True,
            y_axis_format=NUMBER,
        ),
    ),
    Chart(
        key="quality_partial_figures",
        title="Collaborative figures flagged partial",
        description="Number of a collaborative's metrics that were partial in the month because a member's "
        "value was suppressed or missing: read those months with care.",
        dataset="dq_partial_figures",
        spec=c.timeseries(
            "echarts_timeseries_bar",
            metrics=[M("COUNT(DISTINCT CASE WHEN is_partial THEN metric_code END)", "Partial metrics")],
            groupby=["collaborative"],
            filters=[c.period()],
            stack=True,
            y_axis_format=NUMBER,
        ),
    ),
)

CHART_BY_KEY = {chart.key: chart for chart in CHARTS}


# ---------------------------------------------------------------------------------------------------------------
# Dashboards


@dataclass(frozen=True)
class Filter:
    """A native dashboard filter. It applies to every chart of the dashboard whose dataset has its column, except
    charts that ignore it by name. ``values_from`` is the dataset whose values the dropdown lists."""

    name: str
    column: str
    values_from: str
    description: str
    kind: str = "filter_select"  # or "filter_time"
    single: bool = False  # single choice, defaulting to the first value (and required)
    parents: tuple[str, ...] = ()  # filters (by name) whose choice narrows this one's values

    @property
    def id(self) -> str:
        return "NATIVE_FILTER-" + c._slug(self.name).replace("_", "-")


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    audience: str
    intro: str
    rows: tuple[tuple[tuple[str, int], ...], ...]  # rows of (chart key, width out of 12)
    filters: tuple[Filter, ...]
    heights: dict[str, int] = field(default_factory=dict)

    @property
    def uuid(self) -> str:
        return stable_uuid("dashboard", self.slug)

    @property
    def chart_keys(self) -> list[str]:
        return [key for row in self.rows for key, _ in row]


def _standard_filters(
    collaborative: str, member: str, icb: str, metric: str, extra: tuple[Filter, ...] = ()
) -> tuple[Filter, ...]:
    return (
        Filter("Collaborative", "collaborative", collaborative, "Provider collaborative(s) to show."),
        Filter("Member trust", "trust", member, "Member trust(s): applies to charts that show trusts."),
        Filter("ICB", "icb", icb, "Integrated care board(s): collaboratives spanning them, or trusts in them."),
        Filter("Metric", "metric", metric, "Metric(s): applies to charts that are not about one measure."),
        *extra,
        Filter("Period", "period_month", "", "Months to show.", kind="filter_time"),
    )


DASHBOARDS: tuple[Dashboard, ...] = (
    Dashboard(
        slug="benefits-tracker",
        title="Benefits tracker",
        audience=PMO,
        intro="For the **collaborative programme office**: every benefit in the register against its baseline, "
        "trajectory and target, with RAG and Making Data Count assurance; the SPC chart and each member trust's "
        "part for the benefit picked in the **Benefit** filter.",
        rows=(
            (("benefit_register", 12),),
            (("benefit_spc", 7), ("benefit_trajectory", 5)),
            (("benefit_member_values", 7), ("benefit_member_share", 5)),
        ),
        heights={"benefit_register": 100},
        filters=_standard_filters(
            "pmo_benefit_register",
            "pmo_member_contribution",
            "pmo_benefit_register",
            "pmo_benefit_register",
            extra=(
                Filter(
                    "Benefit",
                    "benefit",
                    "pmo_benefit_spc",
                    "The benefit whose SPC chart, trajectory and members are shown.",
                    single=True,
                    parents=("Collaborative", "Metric"),
                ),
            ),
        ),
    ),
    Dashboard(
        slug="outcomes-monitor",
        title="Outcomes monitor",
        audience=ICB_ANALYST,
        intro="For **ICB analysts**: waiting lists, long waits, 18-week performance, inappropriate out-of-area "
        "placements and lengths of stay across collaboratives over time; unwarranted variation between member "
        "trusts; collaboratives side by side; and ICB totals summed from trusts.",
        rows=(
            (("outcome_waiting_list", 6), ("outcome_long_waits", 6)),
            (("outcome_18_weeks", 6), ("outcome_oap_bed_days", 6)),
            (("outcome_length_of_stay", 6), ("outcome_icb_waiting_list", 6)),
            (("outcome_member_funnel", 6), ("outcome_funnel_outliers", 6)),
            (("outcome_side_by_side", 12),),
            (("outcome_icb_published", 12),),
        ),
        filters=_standard_filters(
            "icb_collaborative_outcomes",
            "icb_member_variation",
            "icb_collaborative_outcomes",
            "icb_collaborative_outcomes",
        ),
    ),
    Dashboard(
        slug="evaluation",
        title="Evaluation",
        audience=EVALUATOR,
        intro="For **evaluators**: did collaboration make a difference? Estimates by method with honest "
        "uncertainty, and the series behind them split at go-live. Pick a series in the **Evaluated series** filter.",
        rows=(
            (("evaluation_estimates", 12),),
            (("evaluation_event_study", 8), ("evaluation_pre_trend", 4)),
            (("evaluation_synthetic_donors", 12),),
            (("evaluation_before_after", 7), ("evaluation_indexed", 5)),
            (("evaluation_members", 12),),
        ),
        heights={"evaluation_estimates": 60},
        filters=_standard_filters(
            "eval_estimates",
            "eval_member_series",
            "eval_estimates",
            "eval_estimates",
            extra=(
                Filter(
                    "Evaluated series",
                    "evaluated_series",
                    "eval_before_after",
                    "The collaborative and metric whose series are shown.",
                    single=True,
                    parents=("Collaborative", "Metric"),
                ),
            ),
        ),
    ),
    Dashboard(
        slug="data-quality",
        title="Data quality",
        audience="everyone",
        intro="How far the figures can be trusted: every check on the feeds, how fresh each feed is, what was "
        "suppressed for disclosure control, what the publishers revised, and which collaborative figures are partial.",
        rows=(
            (("quality_share_passed", 4), ("quality_revisions", 4), ("quality_share_suppressed", 4)),
            (("quality_checks_by_month", 6), ("quality_freshness", 6)),
            (("quality_suppression", 6), ("quality_partial_figures", 6)),
            (("quality_los_published_vs_computed", 12),),
            (("quality_failed_checks", 12),),
        ),
        heights={"quality_share_passed": 30, "quality_revisions": 30, "quality_share_suppressed": 30},
        filters=_standard_filters(
            "dq_partial_figures",
            "dq_suppression",
            "dq_suppression",
            "dq_partial_figures",
        ),
    ),
)

#: Colours for series that mean the same on every chart (Making Data Count: blue improvement, orange concern).
LABEL_COLORS = {
    "Monthly value": "#425563",
    "Mean": "#231F20",
    "Upper process limit": "#768692",
    "Lower process limit": "#768692",
    "Target": "#DA291C",
    "Special cause: improvement": "#41B6E6",
    "Special cause: concern": "#ED8B00",
    "Actual": "#005EB8",
    "Trajectory": "#768692",
    "Baseline": "#AE2573",
    "Before go-live": "#768692",
    "Transition (left out)": "#AEB7BD",
    "After go-live": "#005EB8",
    f"Mean, {EVALUATION_WINDOW_MONTHS} months before": "#425563",
    f"Mean, {EVALUATION_WINDOW_MONTHS} months after": "#003087",
    "Member trust": "#005EB8",
    "Collaborative": "#231F20",
    "95% limit (lower)": "#ED8B00",
    "95% limit (upper)": "#ED8B00",
    "99.8% limit (lower)": "#DA291C",
    "99.8% limit (upper)": "#DA291C",
    "Passed": "#009639",
    "Failed or rows left out": "#DA291C",
}


def filter_scope(dashboard: Dashboard, flt: Filter) -> list[str]:
    """The chart keys a filter applies to: charts whose dataset has its column and that do not ignore it."""
    in_scope = []
    for key in dashboard.chart_keys:
        chart = CHART_BY_KEY[key]
        dataset = DATASET_BY_NAME[chart.dataset]
        if flt.name in chart.ignores:
            continue
        if flt.kind == "filter_time":
            if any(f.get("operator") == "TEMPORAL_RANGE" for f in chart.spec.params.get("adhoc_filters", [])):
                in_scope.append(key)
        elif dataset.has(flt.column):
            in_scope.append(key)
    return in_scope


def placeholder_chart_ids(dashboard: Dashboard) -> dict[str, int]:
    """Chart ids used inside the bundle; Superset's importer (and the deployer, for ``chartsInScope``) maps them
    to the ids of the imported charts through the chart uuids in the layout."""
    return {key: index for index, key in enumerate(dashboard.chart_keys, start=1)}


def _position(dashboard: Dashboard) -> dict[str, Any]:
    ids = placeholder_chart_ids(dashboard)
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"children": ["GRID_ID"], "id": "ROOT_ID", "type": "ROOT"},
        "HEADER_ID": {"id": "HEADER_ID", "meta": {"text": dashboard.title}, "type": "HEADER"},
    }
    grid_children = ["ROW-intro"]
    position["ROW-intro"] = {
        "children": ["MARKDOWN-intro"],
        "id": "ROW-intro",
        "meta": {"background": "BACKGROUND_TRANSPARENT"},
        "parents": ["ROOT_ID", "GRID_ID"],
        "type": "ROW",
    }
    position["MARKDOWN-intro"] = {
        "children": [],
        "id": "MARKDOWN-intro",
        "meta": {"code": dashboard.intro, "height": 14, "width": 12},
        "parents": ["ROOT_ID", "GRID_ID", "ROW-intro"],
        "type": "MARKDOWN",
    }
    for row_number, row in enumerate(dashboard.rows, start=1):
        row_id = f"ROW-{row_number}"
        grid_children.append(row_id)
        position[row_id] = {
            "children": [f"CHART-{key}" for key, _ in row],
            "id": row_id,
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
            "parents": ["ROOT_ID", "GRID_ID"],
            "type": "ROW",
        }
        for key, width in row:
            chart = CHART_BY_KEY[key]
            position[f"CHART-{key}"] = {
                "children": [],
                "id": f"CHART-{key}",
                "meta": {
                    "chartId": ids[key],
                    "height": dashboard.heights.get(key, 50),
                    "sliceName": chart.title,
                    "uuid": chart.uuid,
                    "width": width,
                },
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "type": "CHART",
            }
    position["GRID_ID"] = {"children": grid_children, "id": "GRID_ID", "parents": ["ROOT_ID"], "type": "GRID"}
    return position


def _native_filter(dashboard: Dashboard, flt: Filter) -> dict[str, Any]:
    ids = placeholder_chart_ids(dashboard)
    in_scope = filter_scope(dashboard, flt)
    by_name = {f.name: f for f in dashboard.filters}
    config: dict[str, Any] = {
        "id": flt.id,
        "name": flt.name,
        "description": flt.description,
        "type": "NATIVE_FILTER",
        "filterType": flt.kind,
        "cascadeParentIds": [by_name[parent].id for parent in flt.parents],
        "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
        "scope": {
            "rootPath": ["ROOT_ID"],
            "excluded": [ids[key] for key in dashboard.chart_keys if key not in in_scope],
        },
        "chartsInScope": [ids[key] for key in in_scope],
        "tabsInScope": [],
    }
    if flt.kind == "filter_time":
        config["targets"] = [{}]
        config["controlValues"] = {"enableEmptyFilter": False}
    else:
        config["targets"] = [{"column": {"name": flt.column}, "datasetUuid": DATASET_BY_NAME[flt.values_from].uuid}]
        config["controlValues"] = {
            "enableEmptyFilter": flt.single,
            "defaultToFirstItem": flt.single,
            "multiSelect": not flt.single,
            "searchAllOptions": False,
            "inverseSelection": False,
        }
        if flt.single:
            config["requiredFirst"] = True
    return config


# ---------------------------------------------------------------------------------------------------------------
# YAML


def _database_yaml() -> dict[str, Any]:
    return {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": BUNDLE_SQLALCHEMY_URI,
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_csv_upload": False,
        "extra": DATABASE_EXTRA,
        "uuid": stable_uuid("database", DATABASE_NAME),
        "version": VERSION,
    }


def _dataset_yaml(dataset: Dataset) -> dict[str, Any]:
    return {
        "table_name": dataset.name,
        "description": dataset.description,
        "main_dttm_col": "period_month" if dataset.has("period_month") else None,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "schema": "main",
        "sql": dataset.sql,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "uuid": dataset.uuid,
        "metrics": [
            {
                "metric_name": "count",
                "verbose_name": "Rows",
                "metric_type": "count",
                "expression": "COUNT(*)",
                "description": None,
                "d3format": None,
                "extra": None,
                "warning_text": None,
            }
        ],
        "columns": [
            {
                "column_name": col.name,
                "verbose_name": col.label,
                "is_dttm": col.is_dttm,
                "is_active": True,
                "type": col.type,
                "groupby": True,
                "filterable": True,
                "expression": None,
                "description": col.description or None,
                "python_date_format": None,
                "extra": None,
            }
            for col in dataset.columns
        ],
        "version": VERSION,
        "database_uuid": stable_uuid("database", DATABASE_NAME),
    }


def _chart_yaml(chart: Chart) -> dict[str, Any]:
    return {
        "slice_name": chart.title,
        "description": chart.description,
        "certified_by": None,
        "certification_details": None,
        "viz_type": chart.spec.viz_type,
        "params": chart.spec.params,
        "query_context": chart.spec.query_context(),
        "cache_timeout": None,
        "uuid": chart.uuid,
        "version": VERSION,
        "dataset_uuid": DATASET_BY_NAME[chart.dataset].uuid,
    }


def _dashboard_yaml(dashboard: Dashboard) -> dict[str, Any]:
    ids = placeholder_chart_ids(dashboard)
    return {
        "dashboard_title": dashboard.title,
        "description": None,
        "css": "",
        "slug": dashboard.slug,
        "certified_by": "",
        "certification_details": "",
        "published": True,
        "uuid": dashboard.uuid,
        "position": _position(dashboard),
        "metadata": {
            "native_filter_configuration": [_native_filter(dashboard, flt) for flt in dashboard.filters],
            "chart_configuration": {},
            "global_chart_configuration": {
                "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
                "chartsInScope": sorted(ids.values()),
            },
            "cross_filters_enabled": False,
            "color_scheme": "supersetColors",
            "label_colors": LABEL_COLORS,
            "shared_label_colors": [],
            "map_label_colors": {},
            "color_scheme_domain": [],
            "refresh_frequency": 0,
            "timed_refresh_immune_slices": [],
            "expanded_slices": {},
            "default_filters": "{}",
        },
        "version": VERSION,
    }


def bundle_files() -> dict[str, dict[str, Any]]:
    """Every file of the bundle (relative path → YAML document)."""
    files: dict[str, dict[str, Any]] = {
        "metadata.yaml": {"version": VERSION, "type": "assets", "timestamp": "2026-01-01T00:00:00+00:00"},
        "databases/collaborative_benefits_warehouse.yaml": _database_yaml(),
    }
    for dataset in DATASETS:
        files[f"datasets/collaborative_benefits_warehouse/{dataset.name}.yaml"] = _dataset_yaml(dataset)
    for chart in CHARTS:
        files[f"charts/{chart.key}.yaml"] = _chart_yaml(chart)
    for dashboard in DASHBOARDS:
        files[f"dashboards/{dashboard.slug}.yaml"] = _dashboard_yaml(dashboard)
    return files


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the datasets' SQL) as literal blocks, so the YAML reads like the SQL it holds."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)

HEADER = (
    "# Written by `python -m orchestration.dashboards.bundle` from orchestration/dashboards/bundle.py: edit that.\n"
)


def render(document: dict[str, Any]) -> str:
    return HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def write_bundle(directory: Path = BUNDLE_DIR) -> list[Path]:
    """Write the bundle's YAML files, removing files no longer defined."""
    files = bundle_files()
    written = []
    for relative, document in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(document), encoding="utf-8")
        written.append(path)
    for stale in directory.rglob("*.yaml"):
        if stale.relative_to(directory).as_posix() not in files:
            stale.unlink()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the dashboards' Superset asset bundle as YAML.")
    parser.add_argument("--out", type=Path, default=BUNDLE_DIR, help=f"folder (default {BUNDLE_DIR})")
    args = parser.parse_args(argv)
    written = write_bundle(args.out)
    print(f"Wrote {len(written)} files under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
