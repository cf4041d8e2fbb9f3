{#-
    Every catalogue metric for every collaborative, membership basis and month, computed from the members'
    trust-level data the way each metric adds up:
    - RTT: the members' week bands pooled (so the median is the median of the pooled waiting list);
    - out-of-area placements: the members' published counts added up; a suppressed member adds nothing and
      makes the total partial (fct_collaborative_metric_month flags it);
    - lengths of stay: the members' discharged spells pooled, leaving out a member whose own month was
      suppressed (so the total never reveals it by difference), with the same disclosure control.
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

los_provider as (
    select * from {{ ref('fct_los_provider_month') }}
),

spells as (
    select * from {{ ref('int_los__discharged_spells') }}
),

rtt_metrics as (
    select
        collaborative_code,
        membership_basis,
        period_month,
        unnest({{ rtt_metric_structs() }}) as metric
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
        unnest([
            {
                metric_code: 'oap_inappropriate_bed_days',
                numerator: cast(inappropriate_oap_bed_days as double),
                denominator: cast(null as double),
                value: cast(inappropriate_oap_bed_days as double)
            },
            {
                metric_code: 'oap_inappropriate_active_end',
                numerator: cast(inappropriate_oaps_active_end as double),
                denominator: cast(null as double),
                value: cast(inappropriate_oaps_active_end as double)
            },
            {
                metric_code: 'oap_inappropriate_started',
                numerator: cast(inappropriate_oaps_started as double),
                denominator: cast(null as double),
                value: cast(inappropriate_oaps_started as double)
            }
        ]) as metric
    from oap_totals
),

reportable_members as (
    select
        members.collaborative_code,
        members.membership_basis,
        members.period_month,
        members.org_code,
        los_provider.setting
    from members
    inner join los_provider
        on members.org_code = los_provider.org_code
        and members.period_month = los_provider.period_month
        and members.org_type = los_provider.setting
    where not los_provider.is_suppressed
),

los_measured as (
    select
        reportable_members.collaborative_code,
        reportable_members.membership_basis,
        reportable_members.period_month,
        {{ los_measures('spells.los_days') }}
    from reportable_members
    inner join spells
        on reportable_members.org_code = spells.org_code
        and reportable_members.period_month = spells.discharge_month
        and reportable_members.setting = spells.setting
    group by reportable_members.collaborative_code, reportable_members.membership_basis, reportable_members.period_month
),

los_controlled as (
    select
        collaborative_code,
        membership_basis,
        period_month,
        {{ los_disclosure_controlled() }}
    from los_measured
),

los_metrics as (
    select
        collaborative_code,
        membership_basis,
        period_month,
        unnest({{ los_metric_structs() }}) as metric
    from los_controlled
),

unioned as (
    select * from rtt_metrics
    union all
    select * from oap_metrics
    union all
    select * from los_metrics
)

select
    collaborative_code,
    membership_basis,
    period_month,
    metric.metric_code,
    metric.numerator,
    metric.denominator,
    metric.value
from unioned
