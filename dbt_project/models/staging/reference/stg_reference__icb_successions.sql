with icb_successions as (
    select * from {{ ref('icb_successions') }}
)

select
    upper(trim(predecessor_icb_code)) as predecessor_icb_code,
    upper(trim(successor_icb_code)) as successor_icb_code,
    cast(effective_date as date) as effective_date,
    note
from icb_successions
