{#-
    RTT counts summed over commissioners (SPEC §3.1: a provider appears once per commissioner) and mapped
    through successions to the organisation that carries the provider's history, one row per organisation,
    treatment function, RTT part and month, plus treatment_function_code 'ALL' for the trust total.
    The trust total is the sum of the detail rows: the pre-summed C_999 rows are left out, never added (the
    file contract has already checked that C_999 equals the detail).
    Bands stay columns here so that summing stays a plain vectorised sum (SPEC §12), and are summed for the
    incomplete pathways (Part_2) only: the other parts keep their totals, their bands are null.
    Incremental by month (macros/incremental_months.sql): a run rebuilds only the months whose file load or
    successions changed, so a monthly update reads one month of the raw layer, not the whole history.
-#}
{{ config(materialized='incremental', **month_partitioned_config()) }}
{%- set months = months_to_rebuild(rtt_raw_month_versions()) %}

with full_extract as {{ not_materialized() }} (
    select * from {{ ref('stg_rtt__full_extract') }}
    {%- if is_incremental() %}
    where {{ period_month_in(months) }}
    {%- endif %}
),

month_versions as (
    {{ rtt_raw_month_versions() | indent(4) }}
),

current_codes as (
    select * from {{ ref('int_organisations__current_code') }}
),

detail_rows as {{ not_materialized() }} (
    select
        full_extract.*,
        coalesce(current_codes.current_org_code, full_extract.provider_org_code) as org_code
    from full_extract
    left join current_codes
        on full_extract.provider_org_code = current_codes.org_code
    where not full_extract.is_total_row
),

-- Commissioners and published provider codes are counted from their distinct combinations below, not with
-- count(distinct) and list() over the raw rows: those aggregates cannot spill to disk, and at national scale
-- (ten million rows) they do not fit the memory the build is given (profiles.yml).
-- Week bands are summed for Part_2 rows only: the incomplete pathways are the waiting list whose distribution
-- every measure reads (rtt_pivot_parts); the other parts are read for their totals. Summing 105 bands for all five
-- parts was four fifths of this model's work at national scale, for figures nothing used.
-- `group by grouping sets` is valid DuckDB that sqlfluff's duckdb dialect cannot parse yet (PRS). In this CTE the
-- failed parse also hides the union and upsets the indentation rule, so both are off for it; the two CTEs below
-- only waive their grouping sets line.
-- noqa: disable=PRS,LT02
summed as (
    {%- for parts, with_bands in [("= 'Part_2'", true), ("<> 'Part_2'", false)] %}
        select
            period_month,
            org_code,
            case when grouping(treatment_function_code) = 1 then 'ALL' else treatment_function_code end
                as treatment_function_code,
            case
                when grouping(treatment_function_code) = 1 then 'All treatment functions'
                else {{ any_non_null('treatment_function_name') }}
            end as treatment_function_name,
            rtt_part_type,
            max(band_layout) as band_layout,
            {%- for column in rtt_band_columns() %}
            {% if with_bands %}cast(sum({{ column }}) as bigint){% else %}cast(null as bigint){% endif %}
                as {{ column }},
            {%- endfor %}
            cast(sum(total) as bigint) as total,
            cast(sum(patients_with_unknown_clock_start_date) as bigint) as patients_with_unknown_clock_start_date,
            cast(sum(total_all) as bigint) as total_all
        from detail_rows
        where rtt_part_type {{ parts }}
        group by grouping sets (
            (period_month, org_code, treatment_function_code, rtt_part_type),
            (period_month, org_code, rtt_part_type)
        )
        {%- if loop.first %}

        union all
        {%- endif %}
    {%- endfor %}
),
-- noqa: enable=PRS,LT02

commissioner_keys as (
    select
        period_month,
        org_code,
        case when grouping(treatment_function_code) = 1 then 'ALL' else treatment_function_code end
            as treatment_function_code,
        rtt_part_type,
        commissioner_org_code
    from detail_rows
    group by grouping sets (  -- noqa: PRS
        (period_month, org_code, treatment_function_code, rtt_part_type, commissioner_org_code),
        (period_month, org_code, rtt_part_type, commissioner_org_code)
    )
),

provider_keys as (
    select
        period_month,
        org_code,
        case when grouping(treatment_function_code) = 1 then 'ALL' else treatment_function_code end
            as treatment_function_code,
        rtt_part_type,
        provider_org_code
    from detail_rows
    group by grouping sets (  -- noqa: PRS
        (period_month, org_code, treatment_function_code, rtt_part_type, provider_org_code),
        (period_month, org_code, rtt_part_type, provider_org_code)
    )
),

commissioner_counts as (
    select
        period_month,
        org_code,
        treatment_function_code,
        rtt_part_type,
        count(commissioner_org_code) as commissioner_count
    from commissioner_keys
    group by period_month, org_code, treatment_function_code, rtt_part_type
),

reported_codes as (
    select
        period_month,
        org_code,
        treatment_function_code,
        rtt_part_type,
        {{ sorted_distinct_list('provider_org_code') }} as reported_org_codes
    from provider_keys
    group by period_month, org_code, treatment_function_code, rtt_part_type
)

select
    summed.period_month,
    summed.org_code,
    summed.treatment_function_code,
    summed.treatment_function_name,
    summed.rtt_part_type,
    summed.band_layout,
    commissioner_counts.commissioner_count,
    reported_codes.reported_org_codes,
    {%- for column in rtt_band_columns() + ['total', 'patients_with_unknown_clock_start_date', 'total_all'] %}
        summed.{{ column }},
    {%- endfor %}
    {{ month_source_version('month_versions.upstream_version') }} as source_version
from summed
inner join commissioner_counts
    on summed.period_month = commissioner_counts.period_month
    and summed.org_code = commissioner_counts.org_code
    and summed.treatment_function_code = commissioner_counts.treatment_function_code
    and summed.rtt_part_type = commissioner_counts.rtt_part_type
inner join reported_codes
    on summed.period_month = reported_codes.period_month
    and summed.org_code = reported_codes.org_code
    and summed.treatment_function_code = reported_codes.treatment_function_code
    and summed.rtt_part_type = reported_codes.rtt_part_type
inner join month_versions
    on summed.period_month = month_versions.period_month
