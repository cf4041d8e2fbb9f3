{#-
    Variation between member trusts (SPEC §6), presented as learning rather than a league table: each
    member's value against its collaborative's, month by month (members of that month, as_was). For every metric,
    the coefficient of variation across the members that reported (standard deviation ÷ mean).

    For metrics that are proportions (unit percent, with a denominator), funnel-plot limits at 95% and 99.8% around
    the collaborative's proportion for the member's denominator, adjusted for over-dispersion as FunnelPlotR does by
    default (Spiegelhalter 2005, "PR" data, issue 13):

    - every trust of the member's type with a value that month (all of them, not only the collaborative's 3 to 6
      members, which are too few) gives a z-score on the arcsine-square-root scale,
      z = (asin √p − asin √p̄) / s with s = 1 / (2 √n) and p̄ = Σ numerators ÷ Σ denominators;
    - the z-scores are Winsorised at their 10th and 90th percentiles (linear interpolation, R's type 7),
      φ = mean(z_w²) and, DerSimonian–Laird, τ² = (N φ − (N − 1)) / (Σ w − Σ w² / Σ w) with w = 1 / s², or 0 when
      N φ < N − 1 (no over-dispersion);
    - the limits are sin²(asin √p_c ± z √(s² + τ²)) with p_c the collaborative's proportion (the transformed limit
      clipped to [0, π/2]), z = 1.959964 (95%) and 3.090232 (99.8%).

    The unadjusted limits (normal approximation, p_c ± z √(p_c (1 − p_c) / n)) are kept in the *_unadjusted
    columns; φ, τ² and the number of trusts they were estimated over are carried on every row. With fewer than 5
    trusts of the type in a month τ² is not estimated and the adjusted limits equal the arcsine binomial limits
    (τ² = 0, dispersion_trusts says how many there were).
-#}
with metric_month as (
    select * from {{ ref('fct_collaborative_metric_month') }}
    where membership_basis = 'as_was'
),

metrics as (
    select * from {{ ref('stg_reference__metrics') }}
),

organisations as (
    select
        org_code,
        org_type
    from {{ ref('stg_reference__organisations') }}
),

-- every trust of each type with a proportion that month: the population the dispersion is estimated over
peers as (
    select
        org_month.metric_code,
        org_month.period_month,
        organisations.org_type,
        org_month.numerator,
        org_month.denominator
    from {{ ref('int_metric__org_month') }} as org_month
    inner join metrics
        on org_month.metric_code = metrics.metric_code
    inner join organisations
        on org_month.org_code = organisations.org_code
    where metrics.unit = 'percent'
        and not org_month.is_suppressed
        and org_month.denominator > 0
        and org_month.numerator between 0 and org_month.denominator
),

peer_target as (
    select
        metric_code,
        period_month,
        org_type,
        asin(sqrt(sum(numerator) / sum(denominator))) as target_transformed
    from peers
    group by metric_code, period_month, org_type
),

peer_z as (
    select
        peers.metric_code,
        peers.period_month,
        peers.org_type,
        (asin(sqrt(peers.numerator / peers.denominator)) - peer_target.target_transformed)
        * 2 * sqrt(peers.denominator) as z,
        4 * peers.denominator as w
    from peers
    inner join peer_target
        on peers.metric_code = peer_target.metric_code
        and peers.period_month = peer_target.period_month
        and peers.org_type = peer_target.org_type
),

peer_bounds as (
    select
        metric_code,
        period_month,
        org_type,
        {{ percentile_cont('z', 0.1) }} as lower_z,
        {{ percentile_cont('z', 0.9) }} as upper_z
    from peer_z
    group by metric_code, period_month, org_type
),

dispersion_sums as (
    select
        peer_z.metric_code,
        peer_z.period_month,
        peer_z.org_type,
        count(*) as dispersion_trusts,
        avg(power(least(greatest(peer_z.z, peer_bounds.lower_z), peer_bounds.upper_z), 2)) as phi,
        sum(peer_z.w) as sum_w,
        sum(peer_z.w * peer_z.w) as sum_w2
    from peer_z
    inner join peer_bounds
        on peer_z.metric_code = peer_bounds.metric_code
        and peer_z.period_month = peer_bounds.period_month
        and peer_z.org_type = peer_bounds.org_type
    group by peer_z.metric_code, peer_z.period_month, peer_z.org_type
),

dispersion as (
    select
        metric_code,
        period_month,
        org_type,
        dispersion_trusts,
        case when dispersion_trusts >= 5 then phi end as phi,
        case
            when dispersion_trusts < 5 then null
            when dispersion_trusts * phi < dispersion_trusts - 1 then 0.0
            else greatest(0.0, (dispersion_trusts * phi - (dispersion_trusts - 1)) / (sum_w - sum_w2 / sum_w))
        end as tau2
    from dispersion_sums
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
        spread.coefficient_of_variation,
        dispersion.phi,
        dispersion.tau2,
        coalesce(dispersion.dispersion_trusts, 0) as dispersion_trusts
    from members
    inner join metrics
        on members.metric_code = metrics.metric_code
    left join organisations
        on members.org_code = organisations.org_code
    left join dispersion
        on members.metric_code = dispersion.metric_code
        and members.period_month = dispersion.period_month
        and organisations.org_type = dispersion.org_type
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
        case when has_funnel then sqrt(proportion * (1 - proportion) / denominator) end as standard_error,
        case when has_funnel then asin(sqrt(least(1.0, greatest(0.0, proportion)))) end as centre_transformed,
        case when has_funnel then sqrt(1 / (4 * denominator) + coalesce(tau2, 0)) end as adjusted_spread
    from joined
),

bounded as (
    select
        *,
        case when has_funnel then greatest(0, 100 * (proportion - 1.959964 * standard_error)) end
            as lower_95_unadjusted,
        case when has_funnel then least(100, 100 * (proportion + 1.959964 * standard_error)) end as upper_95_unadjusted,
        case when has_funnel then greatest(0, 100 * (proportion - 3.090232 * standard_error)) end
            as lower_998_unadjusted,
        case when has_funnel then least(100, 100 * (proportion + 3.090232 * standard_error)) end
            as upper_998_unadjusted,
        case when has_funnel then 100 * power(sin(greatest(0, centre_transformed - 1.959964 * adjusted_spread)), 2) end
            as lower_95,
        case when has_funnel then 100 * power(sin(least(pi() / 2, centre_transformed + 1.959964 * adjusted_spread)), 2)
        end as upper_95,
        case when has_funnel then 100 * power(sin(greatest(0, centre_transformed - 3.090232 * adjusted_spread)), 2) end
            as lower_998,
        case when has_funnel then 100 * power(sin(least(pi() / 2, centre_transformed + 3.090232 * adjusted_spread)), 2)
        end as upper_998
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
    lower_95_unadjusted,
    upper_95_unadjusted,
    lower_998_unadjusted,
    upper_998_unadjusted,
    case
        when not has_funnel or value is null then null
        when value > upper_998_unadjusted then 'above_998'
        when value > upper_95_unadjusted then 'above_95'
        when value < lower_998_unadjusted then 'below_998'
        when value < lower_95_unadjusted then 'below_95'
        else 'within'
    end as outlier_flag_unadjusted,
    case when has_funnel then phi end as phi,
    case when has_funnel then tau2 end as tau2,
    case when has_funnel then dispersion_trusts end as dispersion_trusts,
    coefficient_of_variation,
    members_reporting
from bounded
