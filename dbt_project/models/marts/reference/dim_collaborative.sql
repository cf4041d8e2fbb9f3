with collaboratives as (
    select * from {{ ref('stg_reference__collaboratives') }}
),

organisations as (
    select * from {{ ref('stg_reference__organisations') }}
),

members as (
    select * from {{ ref('stg_reference__memberships') }}
),

member_counts as (
    select
        collaborative_code,
        count(distinct org_code) filter (where valid_to is null) as current_member_count
    from members
    group by collaborative_code
)

select
    collaboratives.collaborative_code,
    collaboratives.collaborative_name,
    collaboratives.collaborative_type,
    collaboratives.governance_model,
    collaboratives.lead_provider_code,
    lead_provider.org_name as lead_provider_name,
    collaboratives.established_date,
    collaboratives.go_live_date,
    collaboratives.icb_codes,
    {{ list_join('collaboratives.icb_codes', "', '") }} as icbs_spanned,
    {{ list_length('collaboratives.icb_codes') }} as icb_count,
    coalesce(member_counts.current_member_count, 0) as current_member_count
from collaboratives
left join organisations as lead_provider
    on collaboratives.lead_provider_code = lead_provider.org_code
left join member_counts
    on collaboratives.collaborative_code = member_counts.collaborative_code
