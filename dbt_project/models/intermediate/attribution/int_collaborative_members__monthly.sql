{#-
    Which organisations count for which collaborative in which month, on both membership bases (SPEC §5):
    - as_was: the members whose membership was valid on the month's first day (accountability);
    - as_is: the members valid at the "as at" month (today, or var membership_as_at), over all history
      (like-for-like trends).
    Membership codes are mapped through successions first, so a merged trust's history belongs to its
    successor; when a predecessor and its successor both count in a month they count once.
    A trust in two collaboratives appears under both.
-#}
with memberships as (
    select * from {{ ref('stg_reference__memberships') }}
),

current_codes as (
    select * from {{ ref('int_organisations__current_code') }}
),

organisations as (
    select * from {{ ref('stg_reference__organisations') }}
),

reporting_months as (
    select * from {{ ref('int_reporting_months') }}
),

as_at as (
    select
        coalesce(
            {% if var('membership_as_at') %}cast('{{ var("membership_as_at") }}' as date){% else %}null{% endif %},
            max(period_month)
        ) as as_at_month
    from reporting_months
),

memberships_current_code as (
    select
        memberships.collaborative_code,
        coalesce(current_codes.current_org_code, memberships.org_code) as org_code,
        memberships.org_code as membership_org_code,
        memberships.member_role,
        memberships.valid_from,
        memberships.valid_to
    from memberships
    left join current_codes
        on memberships.org_code = current_codes.org_code
),

as_was as (
    select
        memberships_current_code.*,
        reporting_months.period_month,
        'as_was' as membership_basis
    from memberships_current_code
    inner join reporting_months
        on memberships_current_code.valid_from <= reporting_months.period_month
        and (
            memberships_current_code.valid_to is null
            or memberships_current_code.valid_to > reporting_months.period_month
        )
),

as_is as (
    select
        memberships_current_code.*,
        reporting_months.period_month,
        'as_is' as membership_basis
    from memberships_current_code
    cross join as_at
    cross join reporting_months
    where memberships_current_code.valid_from <= as_at.as_at_month
        and (memberships_current_code.valid_to is null or memberships_current_code.valid_to > as_at.as_at_month)
),

both_bases as (
    select * from as_was
    union all
    select * from as_is
),

deduplicated as (
    select
        collaborative_code,
        membership_basis,
        period_month,
        org_code,
        -- a lead provider is also a member; a partner is the weakest tie
        {{ value_at_min(
            'member_role', "case member_role when 'lead_provider' then 1 when 'member' then 2 else 3 end"
        ) }} as member_role,
        {{ sorted_distinct_list('membership_org_code') }} as membership_org_codes
    from both_bases
    group by collaborative_code, membership_basis, period_month, org_code
)

select
    deduplicated.collaborative_code,
    deduplicated.membership_basis,
    deduplicated.period_month,
    deduplicated.org_code,
    deduplicated.member_role,
    organisations.org_type,
    deduplicated.membership_org_codes
from deduplicated
left join organisations
    on deduplicated.org_code = organisations.org_code
