{#- Memberships as the programme office recorded them, with the code that carries each member's history today. -#}
with memberships as (
    select * from {{ ref('stg_reference__memberships') }}
),

current_codes as (
    select * from {{ ref('int_organisations__current_code') }}
)

select
    memberships.collaborative_code,
    memberships.org_code,
    memberships.member_role,
    memberships.valid_from,
    memberships.valid_to,
    coalesce(current_codes.current_org_code, memberships.org_code) as current_org_code,
    memberships.valid_to is null as is_open,
    memberships.note
from memberships
left join current_codes
    on memberships.org_code = current_codes.org_code
