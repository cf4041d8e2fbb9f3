with memberships as (
    select * from {{ ref('memberships') }}
)

select
    upper(trim(collaborative_code)) as collaborative_code,
    upper(trim(org_code)) as org_code,
    lower(trim(member_role)) as member_role,
    cast(valid_from as date) as valid_from,
    cast(valid_to as date) as valid_to,
    note
from memberships
