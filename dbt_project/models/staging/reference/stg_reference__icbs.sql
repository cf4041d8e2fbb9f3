with icbs as (
    select * from {{ ref('icbs') }}
)

select
    upper(trim(icb_code)) as icb_code,
    trim(icb_name) as icb_name,
    upper(trim(region_code)) as region_code,
    trim(region_name) as region_name
from icbs
