{#-
    NHS England's published lengths of stay per trust and month, in a shape the computed patient-level figures
    (fct_los_provider_month) can join to later: one row per setting, trust, month, period type, cohort and
    measure. Mental health rows come from the main MHSDS monthly data file (stg_mhsds_los__monthly_statistics,
    Provider breakdown; measures in orchestration/sources/mhsds_los_layout.py); the acute rows are NHS England's acute
    discharge sitrep (int_los_published__acute), in the same columns. A provider code is mapped to the code that carries its history
    today; codes outside seeds/reference are left out. `*` stays suppressed (NULL, is_suppressed), never zero.
    england_value is England's published figure for the same period, measure and cohort, for context.
-#}
with published_rows as (
    select
        *,
        row_number() over (
            partition by period_month, reporting_period_start, breakdown, primary_level, measure_id order by source_row
        ) as nth_copy
    from {{ ref('stg_mhsds_los__monthly_statistics') }}
),

statistics as (
    select * from published_rows
    where nth_copy = 1
),

measures as (
    select measure_rows.* from (
        values
        ('MHS156', 'discharges', 'adult_acute_older_adult_picu_18plus', true),
        ('MHS156a', 'bed_days', 'adult_acute_older_adult_picu_18plus', true),
        ('MHS156b', 'mean_los_days', 'adult_acute_older_adult_picu_18plus', false),
        ('MHS140', 'people_discharged', 'adult_acute_18_64', true),
        ('MHS140a', 'mean_los_days', 'adult_acute_18_64', false),
        ('MHS140b', 'median_los_days', 'adult_acute_18_64', false),
        ('MHS141', 'people_discharged', 'older_adult_acute_65plus', true),
        ('MHS141a', 'mean_los_days', 'older_adult_acute_65plus', false),
        ('MHS141b', 'median_los_days', 'older_adult_acute_65plus', false),
        ('MHS142', 'people_discharged', 'all_beds_0_17', true),
        ('MHS142a', 'mean_los_days', 'all_beds_0_17', false),
        ('MHS142b', 'median_los_days', 'all_beds_0_17', false),
        ('MHS100', 'people_discharged_los_60plus', 'adult_acute_18_64', true),
        ('MHS100b', 'pct_discharged_los_60plus', 'adult_acute_18_64', false),
        ('MHS101', 'people_discharged_los_90plus', 'adult_acute_18_64', true),
        ('MHS101b', 'pct_discharged_los_90plus', 'adult_acute_18_64', false),
        ('MHS102', 'people_discharged_los_60plus', 'older_adult_acute_65plus', true),
        ('MHS102b', 'pct_discharged_los_60plus', 'older_adult_acute_65plus', false),
        ('MHS103', 'people_discharged_los_90plus', 'older_adult_acute_65plus', true),
        ('MHS103b', 'pct_discharged_los_90plus', 'older_adult_acute_65plus', false),
        ('MHS104', 'people_discharged_los_60plus', 'all_beds_0_17', true),
        ('MHS104b', 'pct_discharged_los_60plus', 'all_beds_0_17', false),
        ('MHS105', 'people_discharged_los_90plus', 'all_beds_0_17', true),
        ('MHS105b', 'pct_discharged_los_90plus', 'all_beds_0_17', false),
        ('MHS24', 'occupied_bed_days', 'all_beds_all_ages', true),
        ('MHS25', 'occupied_bed_days_less_leave', 'all_beds_all_ages', true)
    ) as measure_rows (source_measure_id, measure, cohort, is_count)
),

current_codes as (
    select * from {{ ref('int_organisations__current_code') }}
),

england as (
    select
        period_month,
        period_type,
        measure_id,
        measure_value as england_value
    from statistics
    where is_national
),

providers as (
    select
        statistics.*,
        current_codes.current_org_code as org_code
    from statistics
    inner join current_codes
        on statistics.primary_level = current_codes.org_code
    where statistics.breakdown = 'Provider'
),

mental_health as (
    select
        'mental_health' as setting,
        providers.org_code,
        providers.period_month,
        providers.period_type,
        measures.cohort,
        measures.measure,
        -- two published codes of one trust today (a merger inside the period): counts add up, a mean does not
        case
            when count(*) = 1 then {{ any_non_null('providers.measure_value') }}
            when measures.is_count then sum(providers.measure_value)
        end as published_value,
        bool_or(providers.is_suppressed) as is_suppressed,
        providers.measure_id as source_measure_id,
        {{ ordered_string_agg('providers.source_file', "'; '", distinct=true) }} as source_file,
        {{ any_non_null('providers.status') }} as status,
        {{ sorted_distinct_list('providers.primary_level') }} as reported_org_codes
    from providers
    inner join measures
        on providers.measure_id = measures.source_measure_id
    group by
        providers.org_code,
        providers.period_month,
        providers.period_type,
        measures.cohort,
        measures.measure,
        measures.is_count,
        providers.measure_id
),

mental_health_rows as (
    select
        mental_health.setting,
        mental_health.org_code,
        mental_health.period_month,
        mental_health.period_type,
        mental_health.cohort,
        mental_health.measure,
        case when mental_health.is_suppressed then null else mental_health.published_value end as published_value,
        mental_health.is_suppressed,
        mental_health.source_measure_id,
        mental_health.source_file,
        mental_health.status,
        mental_health.reported_org_codes,
        england.england_value
    from mental_health
    left join england
        on mental_health.period_month = england.period_month
        and mental_health.period_type = england.period_type
        and mental_health.source_measure_id = england.measure_id
),

-- NHS England's acute discharge sitrep (int_los_published__acute): adults in general and acute beds, published
-- without suppression; the sitrep's England row is not carried into the feed's trust-month figures
acute_rows as (
    select
        setting,
        org_code,
        period_month,
        period_type,
        'adult_general_and_acute_18plus' as cohort,
        measure,
        published_value,
        is_suppressed,
        source_measure_id,
        source_file,
        cast(null as string) as status,
        {{ list_of(['org_code']) }} as reported_org_codes,
        cast(null as double) as england_value
    from {{ ref('int_los_published__acute') }}
)

select * from mental_health_rows
union all
select * from acute_rows
