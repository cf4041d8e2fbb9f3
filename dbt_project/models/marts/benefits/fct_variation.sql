{#-
    Variation between member trusts (SPEC §6), presented as learning rather than a league table: each
    member's value against its collaborative's, month by month (members of that month, as_was). For metrics
    that are proportions (unit percent, with a denominator) funnel-plot limits at 95% and 99.8% around the
    collaborative's proportion, for the member's denominator: p ± z √(p(1 − p) / n). For every metric, the
    coefficient of variation across the members that reported (standard deviation ÷ mean).
-#}
with metric_month as (
    select * from {{ ref('fct_collaborative_metric_month') }}
    where membership_basis = 'as_was'
),

metrics as (
    select * from {{ ref('stg_reference__metrics') }}
),

collaborative as (
    select
        collaborative_code,
        period_month,
        metric_code,
        value as collaborative_value
    from metric_month
    where org_code = 'ALL'
),

members as (
    select
        collaborative_code,
        period_month,
        metric_code,
        org_code,
        value,
        denominator
    from metric_month
    where org_code <> 'ALL'
),

spread as (
    select
        collaborative_code,
        period_month,
        metric_code,
        count(value) as members_reporting,
        stddev_samp(value) / nullif(avg(value), 0) as coefficient_of_variation
    from members
    group by collaborative_code, period_month, metric_code
),

joined as (
    select
        members.collaborative_code,
        members.metric_code,
        members.period_month,
        members.org_code,
        members.value,
        members.denominator,
        collaborative.collaborative_value,
        metrics.unit = 'percent' and members.denominator > 0 and collaborative.collaborative_value is not null
            as has_funnel,
        collaborative.collaborative_value / 100.0 as proportion,
        spread.members_reporting,
        spread.coefficient_of_variation
    from members
    inner join metrics
        on members.metric_code = metrics.metric_code
    left join collaborative
        on members.collaborative_code = collaborative.collaborative_code
        and members.period_month = collaborative.period_month
        and members.metric_code = collaborative.metric_code
    left join spread
        on members.collaborative_code = spread.collaborative_code
        and members.period_month = spread.period_month
        and members.metric_code = spread.metric_code
),

limits as (
    select
        *,
        case when has_funnel then sqrt(proportion * (1 - proportion) / denominator) end as standard_error
    from joined
),

bounded as (
    select
        *,
        case when has_funnel then greatest(0, 100 * (proportion - 1.959964 * standard_error)) end as lower_95,
        case when has_funnel then least(100, 100 * (proportion + 1.959964 * standard_error)) end as upper_95,
        case when has_funnel then greatest(0, 100 * (proportion - 3.090232 * standard_error)) end as lower_998,
        case when has_funnel then least(100, 100 * (proportion + 3.090232 * standard_error)) end as upper_998
    from limits
)

select
    collaborative_code,
    metric_code,
    period_month,
    org_code,
    value,
    denominator,
    collaborative_value,
    lower_95,
    upper_95,
    lower_998,
    upper_998,
    case
        when not has_funnel or value is null then null
        when value > upper_998 then 'above_998'
        when value > upper_95 then 'above_95'
        when value < lower_998 then 'below_998'
        when value < lower_95 then 'below_95'
        else 'within'
    end as outlier_flag,
    coefficient_of_variation,
    members_reporting
from bounded
