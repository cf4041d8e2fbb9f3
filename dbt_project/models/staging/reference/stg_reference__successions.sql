with successions as (
    select * from {{ ref('successions') }}
)

select
    upper(trim(predecessor_org_code)) as predecessor_org_code,
    upper(trim(successor_org_code)) as successor_org_code,
    cast(effective_date as date) as effective_date,
    note
from successions
