{#-
    The same figure two ways: NHS England's published length of stay of a trust (fct_los_published_month) beside
    the figure this warehouse computes from the trust's own patient-level extract, for the trust-months that have
    both, and their difference: an analyst's first question about a computed figure is whether it matches the
    published number.

    Compared like for like, on the publisher's definition and period: MHSDS MHS140a / MHS140b (mean and median
    length of stay of discharges from adult acute beds, ages 18 to 64, rolling quarter ending in period_month)
    against the same statistics of the MHS140-cohort spells of int_los__discharged_spells discharged in those three
    months. The computed side serves no count (a quarterly count beside the served monthly ones could be
    differenced): only the mean or median, computed from unrounded spells and shown where the quarter has at least
    as many discharges as the setting's rule shows (dc_is_hidden), and the computed discharges, rounded to 5 as the
    rule rounds a count, as a whole per cent of the published count. The acute sitrep publishes no length of stay of discharged spells (only averages of
    daily counts and weekly snapshots of additional bed days), so acute trusts have no row here.
-#}
with published as (
    select *
    from {{ ref('fct_los_published_month') }}
    where setting = 'mental_health'
        and period_type = 'rolling_quarter'
        and cohort = 'adult_acute_18_64'
        and measure in ('mean_los_days', 'median_los_days', 'people_discharged')
),

quarters as (
    select distinct
        org_code,
        period_month
    from published
),

spells as (
    select * from {{ ref('int_los__discharged_spells') }}
    where setting = 'mental_health'
),

computed as (
    select
        quarters.org_code,
        quarters.period_month,
        count(spells.spell_id) as discharges,
        avg(spells.los_days) as mean_los_days,
        {{ percentile_cont('spells.los_days', 0.5) }} as median_los_days,
        count(distinct date_trunc('month', spells.discharge_month)) as months_with_discharges
    from quarters
    left join spells
        on quarters.org_code = spells.org_code
        and spells.discharge_month
        between {{ dbt.dateadd('month', -2, 'quarters.period_month') }} and quarters.period_month
    group by quarters.org_code, quarters.period_month
),

pivoted as (
    select
        published.org_code,
        published.period_month,
        max(published.published_value) filter (where published.measure = 'mean_los_days') as published_mean,
        bool_or(published.is_suppressed) filter (where published.measure = 'mean_los_days') as mean_suppressed,
        max(published.published_value) filter (where published.measure = 'median_los_days') as published_median,
        bool_or(published.is_suppressed) filter (where published.measure = 'median_los_days') as median_suppressed,
        max(published.published_value) filter (where published.measure = 'people_discharged')
            as published_discharges,
        {{ ordered_string_agg('published.source_file', "'; '", distinct=true) }} as source_file
    from published
    group by published.org_code, published.period_month
),

compared as (
    select
        pivoted.*,
        computed.discharges as computed_discharges,
        {{ dc_is_hidden('computed.discharges', "'mental_health'") }} as computed_hidden,
        computed.mean_los_days as computed_mean,
        computed.median_los_days as computed_median
    from pivoted
    inner join computed
        on pivoted.org_code = computed.org_code
        and pivoted.period_month = computed.period_month
    where computed.discharges > 0
),

measures as (
    select
        org_code,
        period_month,
        source_file,
        computed_hidden,
        computed_discharges,
        published_discharges,
        'mean_los_days' as measure,
        'Mean length of stay (days)' as measure_name,
        'MHS140a' as source_measure_id,
        published_mean as published_value,
        mean_suppressed as published_suppressed,
        computed_mean as computed_raw
    from compared
    union all
    select
        org_code,
        period_month,
        source_file,
        computed_hidden,
        computed_discharges,
        published_discharges,
        'median_los_days' as measure,
        'Median length of stay (days)' as measure_name,
        'MHS140b' as source_measure_id,
        published_median as published_value,
        median_suppressed as published_suppressed,
        computed_median as computed_raw
    from compared
)

select
    'mental_health' as setting,
    org_code,
    period_month,
    'rolling_quarter' as period_type,
    'adult_acute_18_64' as cohort,
    measure,
    measure_name,
    source_measure_id,
    published_value,
    coalesce(published_suppressed, false) as published_is_suppressed,
    case when not computed_hidden then round(computed_raw, 1) end as computed_value,
    computed_hidden as computed_is_suppressed,
    case
        when not computed_hidden and published_value is not null then round(computed_raw - published_value, 1)
    end as difference,
    case
        when not computed_hidden and published_value > 0
            then round(100.0 * cast(computed_raw - published_value as double) / published_value, 1)
    end as pct_difference,
    case
        when not computed_hidden and published_discharges > 0
            then round(100.0 * cast({{ dc_round('computed_discharges') }} as double) / published_discharges, 0)
    end as computed_pct_of_published_discharges,
    source_file
from measures
