{#-
    Every organisation the warehouse knows: the reference trusts, plus any provider that appears in a feed but
    is not in the reference data yet (org_type 'not_in_reference', name as published), so real national files
    load whole and the gap is visible rather than dropped.
-#}
with organisations as (
    select * from {{ ref('stg_reference__organisations') }}
),

icbs as (
    select * from {{ ref('stg_reference__icbs') }}
),

current_codes as (
    select * from {{ ref('int_organisations__current_code') }}
),

rtt_providers as (
    select
        provider_org_code as org_code,
        {{ value_at_max('provider_org_name', 'period_month') }} as org_name,
        -- the provider's parent in the latest file is its ICB (NHS England's current layout)
        {{ value_at_max('provider_parent_org_code', 'period_month') }} as icb_code
    from {{ ref('stg_rtt__full_extract') }}
    group by provider_org_code
),

reference_organisations as (
    select
        organisations.org_code,
        organisations.org_name,
        organisations.org_type,
        organisations.icb_code,
        organisations.region_code,
        organisations.open_date,
        organisations.close_date,
        current_codes.current_org_code,
        true as is_in_reference
    from organisations
    left join current_codes
        on organisations.org_code = current_codes.org_code
),

organisations_only_in_feeds as (
    select
        rtt_providers.org_code,
        rtt_providers.org_name,
        'not_in_reference' as org_type,
        rtt_providers.icb_code,
        provider_icbs.region_code,
        cast(null as date) as open_date,
        cast(null as date) as close_date,
        rtt_providers.org_code as current_org_code,
        false as is_in_reference
    from rtt_providers
    left join icbs as provider_icbs
        on rtt_providers.icb_code = provider_icbs.icb_code
    where rtt_providers.org_code not in (select organisations.org_code from organisations)
),

all_organisations as (
    select * from reference_organisations
    union all
    select * from organisations_only_in_feeds
),

regions as (
    select distinct
        region_code,
        region_name
    from icbs
)

select
    all_organisations.org_code,
    all_organisations.org_name,
    all_organisations.org_type,
    all_organisations.icb_code,
    all_organisations.region_code,
    icbs.icb_name,
    coalesce(icbs.region_name, regions.region_name) as region_name,
    all_organisations.open_date,
    all_organisations.close_date,
    all_organisations.current_org_code,
    all_organisations.org_code = all_organisations.current_org_code as is_current,
    all_organisations.is_in_reference
from all_organisations
left join icbs
    on all_organisations.icb_code = icbs.icb_code
left join regions
    on all_organisations.region_code = regions.region_code
