{#-
    Every catalogue metric for every collaborative, membership basis and month, computed from the members'
    trust-level data the way each metric adds up:
    - RTT: the members' week bands pooled (so the median is the median of the pooled waiting list);
    - out-of-area placements: the members' published counts added up; a suppressed member adds nothing and
      makes the total partial (fct_collaborative_metric_month flags it);
    - lengths of stay: counts are the sum of the members' served (rounded) figures over the members whose
      figure is served; means, medians and percentages are computed from the unrounded spells of those same
      members. A member whose figure is suppressed is left out (the collaborative row is then partial), so
      the collaborative figure minus its members' shown figures is always 0: nothing suppressed comes back;
    - published acute discharge sitrep figures (acute_los_*): the members' figures added up (averages of daily
      counts, monthly totals and snapshot means all add across trusts); a member without a figure adds nothing
      and makes the total partial (fct_collaborative_metric_month flags it).
-#}
with members as (
    select * from {{ ref('int_collaborative_members__monthly') }}
),

rtt_month as (
    select * from {{ ref('int_rtt__collaborative_month') }}
),

oap as (
    select * from {{ ref('fct_oap_provider_month') }}
),

published as (
    select * from {{ ref('int_metric__org_month') }}
    where
        metric_code in (
            'mhsds_los_discharges_18plus', 'mhsds_los_bed_days_18plus', 'mhsds_los_mean_days_18plus',
            'mhsds_bed_days_month'
        )
),

-- published MHSDS counts: the members' published figures added up (a suppressed member adds nothing, the row is
-- then partial); the 18+ mean pooled as the members' bed days over their discharges, over the members whose
-- published mean is shown
published_metrics as (
    select
        members.collaborative_code,
        members.membership_basis,
        members.period_month,
        published.metric_code,
        sum(published.numerator) filter (where published.value is not null) as numerator,
        sum(published.denominator) filter (where published.value is not null) as denominator
    from members
    inner join published
        on members.org_code = published.org_code
        and members.period_month = published.period_month
    group by all
),

published_structs as (
    select
        collaborative_code,
        membership_basis,
        period_month,
        {{ struct_of([
            ('metric_code', 'metric_code'),
            ('numerator', 'numerator'),
            ('denominator', 'denominator'),
            ('value', "case when metric_code = 'mhsds_los_mean_days_18plus' then round(numerator / nullif(denominator, 0))
                else numerator end"),
        ]) }} as metric
    from published_metrics
),

los_provider as (
    select * from {{ ref('fct_los_provider_month') }}
),

spells as (
    select * from {{ ref('int_los__discharged_spells') }}
),

acute_long_stay as (
    select * from {{ ref('int_acute_long_stay__provider_month') }}
),

rtt_metrics as (
    select
        collaborative_code,
        membership_basis,
        period_month,
        {{ unnest_list(rtt_metric_structs()) }} as metric
    from rtt_month
),

oap_totals as (
    select
        members.collaborative_code,
        members.membership_basis,
        members.period_month,
        sum(oap.inappropriate_oap_bed_days) as inappropriate_oap_bed_days,
        sum(oap.inappropriate_oaps_active_end) as inappropriate_oaps_active_end,
        sum(oap.inappropriate_oaps_started) as inappropriate_oaps_started
    from members
    inner join oap
        on members.org_code = oap.org_code
        and members.period_month = oap.period_month
    group by members.collaborative_code, members.membership_basis, members.period_month
),

oap_metrics as (
    select
        collaborative_code,
        membership_basis,
        period_month,
        {{ unnest_list(oap_metric_structs()) }} as metric
    from oap_totals
),

los_members as (
    select
        members.collaborative_code,
        members.membership_basis,
        members.period_month,
        members.org_code,
        los_provider.setting,
        los_provider.discharges,
        los_provider.bed_days,
        los_provider.mean_los_days,
        los_provider.median_los_days,
        los_provider.long_stay_discharges_21plus,
        los_provider.long_stay_pct_21plus
    from members
    inner join los_provider
        on members.org_code = los_provider.org_code
        and members.period_month = los_provider.period_month
        and members.org_type = los_provider.setting
),

-- Counts: the sum of the members' served (rounded) figures, over the members whose figure is served, so a
-- collaborative's figure adds up to its members' and subtraction can never give a suppressed member back.
los_counts as (
    select
        collaborative_code,
        membership_basis,
        period_month,
        sum(bed_days) as bed_days,
        sum(bed_days) filter (where mean_los_days is not null) as mean_numerator,
        sum(discharges) filter (where mean_los_days is not null) as mean_denominator,
        sum(discharges) filter (where median_los_days is not null) as median_denominator,
        sum(long_stay_discharges_21plus) filter (where long_stay_pct_21plus is not null) as long_stay_numerator,
        sum(discharges) filter (where long_stay_pct_21plus is not null) as long_stay_denominator
    from los_members
    group by collaborative_code, membership_basis, period_month
),

-- Means, medians and percentages: from the unrounded spells of the same members (those whose own figure is shown).
los_values as (
    select
        los_members.collaborative_code,
        los_members.membership_basis,
        los_members.period_month,
        -- a collaborative can pool trusts of both settings (an acute collaborative with a mental health partner):
        -- its percentages are then rounded as the stricter rule says (the fewer decimals)
        min({{ dc_percent_decimals('los_members.setting') }}) as percent_decimals,
        avg(spells.los_days) filter (where los_members.mean_los_days is not null) as mean_los_days,
        {{ percentile_cont('spells.los_days', 0.5) }} filter (where los_members.median_los_days is not null)
            as median_los_days,
        count(*) filter (where los_members.long_stay_pct_21plus is not null and spells.los_days >= 21)
            as long_stays,
        count(*) filter (where los_members.long_stay_pct_21plus is not null) as long_stay_spells
    from los_members
    inner join spells
        on los_members.org_code = spells.org_code
        and los_members.period_month = spells.discharge_month
        and los_members.setting = spells.setting
    group by los_members.collaborative_code, los_members.membership_basis, los_members.period_month
),

los_metrics as (
    select
        los_counts.collaborative_code,
        los_counts.membership_basis,
        los_counts.period_month,
        {{ unnest_list(metric_structs([
            ('los_mean_days', 'los_counts.mean_numerator', 'los_counts.mean_denominator', 'los_values.mean_los_days'),
            ('los_median_days', 'null', 'los_counts.median_denominator', 'los_values.median_los_days'),
            (
                'los_long_stay_pct_21plus', 'los_counts.long_stay_numerator', 'los_counts.long_stay_denominator',
                dc_round_to_decimals(
                    '100.0 * cast(los_values.long_stays as double) / nullif(los_values.long_stay_spells, 0)',
                    'los_values.percent_decimals'
                )
            ),
            ('los_bed_days', 'los_counts.bed_days', 'null', 'los_counts.bed_days'),
        ])) }} as metric
    from los_counts
    left join los_values
        on los_counts.collaborative_code = los_values.collaborative_code
        and los_counts.membership_basis = los_values.membership_basis
        and los_counts.period_month = los_values.period_month
),

acute_long_stay_metrics as (
    select
        members.collaborative_code,
        members.membership_basis,
        members.period_month,
        {{ struct_of([
            ('metric_code', 'acute_long_stay.metric_code'),
            ('numerator', 'sum(acute_long_stay.value)'),
            ('denominator', 'cast(null as double)'),
            ('value', 'sum(acute_long_stay.value)'),
        ]) }} as metric
    from members
    inner join acute_long_stay
        on members.org_code = acute_long_stay.org_code
        and members.period_month = acute_long_stay.period_month
    group by members.collaborative_code, members.membership_basis, members.period_month, acute_long_stay.metric_code
),

unioned as (
    select * from rtt_metrics
    union all
    select * from oap_metrics
    union all
    select * from los_metrics
    union all
    select * from acute_long_stay_metrics
    union all
    select * from published_structs
)

select
    unioned.collaborative_code,
    unioned.membership_basis,
    unioned.period_month,
    metric.metric_code,
    metric.numerator,
    metric.denominator,
    metric.value
from unioned
