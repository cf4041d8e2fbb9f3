{#-
    The month-end waiting list (RTT Part_2, incomplete pathways) of every provider and commissioner pair, with the
    ICB each belonged to in that month's file: the building block of the geography totals (England, NHS England
    region, ICB), on both bases an ICB analyst uses (by provider: the trusts in the ICB; by commissioner: the ICB's
    own population, from Commissioner Parent Org Code). Summed over treatment functions from the detail rows
    (C_999 is never added), with the provider mapped through successions as everywhere else.
    Incremental by month, like int_rtt__provider_month_bands.
-#}
{{ config(materialized='incremental', **month_partitioned_config()) }}
{%- set months = months_to_rebuild(rtt_raw_month_versions()) %}

with full_extract as {{ not_materialized() }} (
    select * from {{ ref('stg_rtt__full_extract') }}
    where rtt_part_type = 'Part_2'
        and not is_total_row
    {%- if is_incremental() %}
        and {{ period_month_in(months) }}
    {%- endif %}
),

month_versions as (
    {{ rtt_raw_month_versions() | indent(4) }}
),

current_codes as (
    select * from {{ ref('int_organisations__current_code') }}
),

waiting as (
    select
        full_extract.period_month,
        coalesce(current_codes.current_org_code, full_extract.provider_org_code) as org_code,
        full_extract.provider_parent_org_code,
        {{ any_non_null('full_extract.provider_parent_name') }} as provider_parent_name,
        full_extract.commissioner_org_code,
        {{ any_non_null('full_extract.commissioner_org_name') }} as commissioner_org_name,
        nullif(full_extract.commissioner_parent_org_code, '') as commissioner_parent_org_code,
        {{ any_non_null('full_extract.commissioner_parent_name') }} as commissioner_parent_name,
        full_extract.is_non_english_commissioner,
        max(full_extract.band_layout) as band_layout,
        cast(sum(full_extract.total_all) as bigint) as incomplete_pathways,
        cast(sum({{ rtt_waiting_within(18) }}) as bigint) as within_18_weeks,
        {%- for weeks in [52, 65, 78, 104] %}
            cast(sum({{ rtt_waiting_over(weeks, 'full_extract.band_layout') }}) as bigint) as over_{{ weeks }}_weeks,
        {%- endfor %}
        count(*) as detail_rows
    from full_extract
    left join current_codes
        on full_extract.provider_org_code = current_codes.org_code
    group by
        full_extract.period_month,
        coalesce(current_codes.current_org_code, full_extract.provider_org_code),
        full_extract.provider_parent_org_code,
        full_extract.commissioner_org_code,
        nullif(full_extract.commissioner_parent_org_code, ''),
        full_extract.is_non_english_commissioner
)

select
    waiting.period_month,
    waiting.org_code,
    waiting.provider_parent_org_code,
    waiting.provider_parent_name,
    waiting.commissioner_org_code,
    waiting.commissioner_org_name,
    waiting.commissioner_parent_org_code,
    waiting.commissioner_parent_name,
    waiting.is_non_english_commissioner,
    waiting.band_layout,
    waiting.incomplete_pathways,
    waiting.within_18_weeks,
    waiting.over_52_weeks,
    waiting.over_65_weeks,
    waiting.over_78_weeks,
    waiting.over_104_weeks,
    waiting.detail_rows,
    {{ month_source_version('month_versions.upstream_version') }} as source_version
from waiting
inner join month_versions
    on waiting.period_month = month_versions.period_month
