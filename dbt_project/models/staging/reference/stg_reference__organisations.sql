with organisations as (
    select * from {{ ref('organisations') }}
)

select
    upper(trim(org_code)) as org_code,
    trim(org_name) as org_name,
    lower(trim(org_type)) as org_type,
    upper(trim(icb_code)) as icb_code,
    upper(trim(region_code)) as region_code,
    cast(open_date as date) as open_date,
    cast(close_date as date) as close_date,
    coalesce(nullif(lower(trim(icb_basis)), ''), 'ods') as icb_basis
from organisations
