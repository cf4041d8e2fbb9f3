with collaboratives as (
    select * from {{ ref('collaboratives') }}
)

select
    upper(trim(collaborative_code)) as collaborative_code,
    trim(collaborative_name) as collaborative_name,
    lower(trim(collaborative_type)) as collaborative_type,
    lower(trim(governance_model)) as governance_model,
    nullif(upper(trim(lead_provider_code)), '') as lead_provider_code,
    {{ list_map(split_to_list('icb_codes', ';'), 'code', 'upper(trim(code))') }} as icb_codes,
    cast(established_date as date) as established_date,
    cast(go_live_date as date) as go_live_date
from collaboratives
