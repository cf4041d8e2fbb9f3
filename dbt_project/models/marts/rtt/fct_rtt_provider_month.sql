{#-
    RTT waiting times per trust, treatment function and month (treatment_function_code 'ALL' is the trust
    total), with a merged trust's history under its successor. Patient counts here are NHS England's published
    aggregates and pass through as published.
    Incremental by month, like int_rtt__provider_month_bands: only months rebuilt upstream are rebuilt here.
-#}
{{ config(materialized='incremental', **month_partitioned_config()) }}
{%- set months = months_to_rebuild(
    "select period_month, source_version as upstream_version from " ~ ref('int_rtt__provider_month_bands')
) %}

with provider_bands as (
    select * from {{ ref('int_rtt__provider_month_bands') }}
    {%- if is_incremental() %}
    where {{ period_month_in(months) }}
    {%- endif %}
),

pivoted as (
    select
        provider_bands.period_month,
        provider_bands.org_code,
        provider_bands.treatment_function_code,
        {{ any_non_null('provider_bands.treatment_function_name') }} as treatment_function_name,
        max(provider_bands.commissioner_count) as commissioner_count,
        {{ any_non_null('provider_bands.source_version') }} as upstream_version,
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
),

-- rows of the trust's month that a warning-severity file rule flagged (e.g. Part_2A above Part_2): the figures are
-- served as published, and carry the flag so that a reader knows the publication disagrees with itself there
flags as (
    select
        period_month,
        org_code,
        count(distinct source_file || ':' || source_row) as flagged_rows,
        {{ ordered_string_agg('rule', "', '", distinct=true) }} as flagged_rules
    from {{ ref('int_quality__current_row_flags') }}
    where source = 'rtt' and source_row is not null
    group by period_month, org_code
)

select
    measured.period_month,
    measured.org_code,
    measured.treatment_function_code,
    measured.treatment_function_name,
    measured.band_layout,
    measured.commissioner_count,
    {{ list_last('measured.wait_bands_cumulative') }} as incomplete_pathways,
    {{ rtt_waiting_measures() }},
    measured.incomplete_pathways_with_dta,
    measured.clock_starts,
    {{ rtt_clock_stops('measured.admitted_clock_stops', 'measured.non_admitted_clock_stops') }} as clock_stops,
    measured.admitted_clock_stops,
    measured.non_admitted_clock_stops,
    measured.wait_bands,
    coalesce(flags.flagged_rows, 0) as flagged_rows,
    flags.flagged_rules,
    {{ month_source_version('upstream_version') }} as source_version
from measured
left join flags
    on measured.period_month = flags.period_month
    and measured.org_code = flags.org_code
