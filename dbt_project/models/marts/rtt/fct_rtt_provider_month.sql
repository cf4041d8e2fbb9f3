{#-
    RTT waiting times per trust, treatment function and month (treatment_function_code 'ALL' is the trust
    total), with a merged trust's history under its successor. Patient counts here are NHS England's published
    aggregates and pass through as published.
-#}
with provider_bands as (
    select * from {{ ref('int_rtt__provider_month_bands') }}
),

pivoted as (
    select
        provider_bands.period_month,
        provider_bands.org_code,
        provider_bands.treatment_function_code,
        any_value(provider_bands.treatment_function_name) as treatment_function_name,
        max(provider_bands.commissioner_count) as commissioner_count,
        {{ rtt_pivot_parts('provider_bands') }}
    from provider_bands
    group by
        provider_bands.period_month,
        provider_bands.org_code,
        provider_bands.treatment_function_code
),

distributions as (
    select
        *,
        {{ rtt_wait_band_list() }} as wait_bands
    from pivoted
),

measured as (
    select
        *,
        {{ rtt_cumulative('wait_bands') }} as wait_bands_cumulative
    from distributions
)

select
    period_month,
    org_code,
    treatment_function_code,
    treatment_function_name,
    band_layout,
    commissioner_count,
    wait_bands_cumulative[-1] as incomplete_pathways,
    {{ rtt_waiting_measures() }},
    incomplete_pathways_with_dta,
    clock_starts,
    admitted_clock_stops + non_admitted_clock_stops as clock_stops,
    admitted_clock_stops,
    non_admitted_clock_stops,
    wait_bands
from measured
