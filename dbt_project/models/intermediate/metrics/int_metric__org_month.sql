{#-
    Every catalogue metric for every organisation and month, in one shape (numerator, denominator, value,
    is_suppressed), from the trust-level marts. Lengths of stay are taken in the setting of the trust's type:
    admitted patient care for an acute trust, adult acute beds for a mental health trust. NHS England's published
    acute discharge sitrep figures (acute_los_*) come as the publication gives them (int_acute_long_stay__provider_month:
    averages of daily counts, monthly totals, means of weekly snapshots, each metric one period type).
-#}
with rtt as (
    select * from {{ ref('fct_rtt_provider_month') }}
    where treatment_function_code = 'ALL'
),

oap as (
    select * from {{ ref('fct_oap_provider_month') }}
),

los as (
    select * from {{ ref('fct_los_provider_month') }}
),

acute_long_stay as (
    select * from {{ ref('int_acute_long_stay__provider_month') }}
),

-- published MHSDS lengths of stay: one row per trust and month with each measure of its own period beside it
published as (
    select
        org_code,
        period_month,
        {%- for measure_id, name in mhsds_los_metric_measures() %}
            {{ any_non_null('published_value') }} filter (where source_measure_id = '{{ measure_id }}') as {{ name }},
            coalesce(bool_or(is_suppressed) filter (where source_measure_id = '{{ measure_id }}'), false)
                as {{ name }}_suppressed{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ ref('fct_los_published_month') }}
    where setting = 'mental_health'
    group by org_code, period_month
),

organisations as (
    select * from {{ ref('stg_reference__organisations') }}
),

rtt_structs as (
    select
        org_code,
        period_month,
        {{ unnest_list(rtt_metric_structs()) }} as metric,
        false as is_suppressed
    from rtt
),

oap_structs as (
    select
        org_code,
        period_month,
        {{ unnest_list(oap_metric_structs(suppressed=true)) }} as metric
    from oap
),

published_structs as (
    select
        org_code,
        period_month,
        {{ unnest_list(mhsds_los_metric_structs()) }} as metric
    from published
),

los_in_setting as (
    select los.*
    from los
    inner join organisations
        on los.org_code = organisations.org_code
        and los.setting = organisations.org_type
),

los_structs as (
    select
        org_code,
        period_month,
        {{ unnest_list(los_metric_structs()) }} as metric,
        is_suppressed
    from los_in_setting
),

unioned as (
    select
        rtt_structs.org_code,
        rtt_structs.period_month,
        rtt_structs.metric.metric_code,
        rtt_structs.metric.numerator,
        rtt_structs.metric.denominator,
        rtt_structs.metric.value,
        rtt_structs.is_suppressed
    from rtt_structs

    union all

    select
        org_code,
        period_month,
        metric.metric_code,
        metric.numerator,
        metric.denominator,
        metric.value,
        metric.is_suppressed
    from oap_structs

    union all

    select
        org_code,
        period_month,
        metric.metric_code,
        metric.numerator,
        metric.denominator,
        metric.value,
        metric.is_suppressed
    from published_structs

    union all

    select
        org_code,
        period_month,
        metric.metric_code,
        metric.numerator,
        metric.denominator,
        metric.value,
        is_suppressed or metric.value is null as is_suppressed
    from los_structs

    union all

    select
        org_code,
        period_month,
        metric_code,
        value as numerator,
        cast(null as double) as denominator,
        value,
        false as is_suppressed
    from acute_long_stay
)

select * from unioned
