{#-
    Every catalogue metric for every collaborative, membership basis and month: one row per member trust and
    one row for the collaborative (org_code 'ALL'). A member expected to report a metric (its organisation type
    is the metric's) but without a value makes the collaborative row partial (SPEC §5 rule 4): the total is
    then the sum of those who reported, flagged, never silently presented as complete.
    Totals across collaboratives must come from organisation-level facts, never from adding these rows: a trust
    in two collaboratives is in both.
-#}
with members as (
    select * from {{ ref('int_collaborative_members__monthly') }}
),

metrics as (
    select * from {{ ref('stg_reference__metrics') }}
),

org_metrics as (
    select * from {{ ref('int_metric__org_month') }}
),

collaborative_metrics as (
    select * from {{ ref('int_metric__collaborative_month') }}
),

member_rows as (
    select
        members.collaborative_code,
        members.org_code,
        members.membership_basis,
        members.period_month,
        metrics.metric_code,
        members.member_role,
        org_metrics.numerator,
        org_metrics.denominator,
        org_metrics.value,
        coalesce(org_metrics.is_suppressed, false) as is_suppressed,
        coalesce({{ list_has('metrics.applies_to_org_types', 'members.org_type') }}, false) as is_expected
    from members
    cross join metrics
    left join org_metrics
        on members.org_code = org_metrics.org_code
        and members.period_month = org_metrics.period_month
        and metrics.metric_code = org_metrics.metric_code
    -- a member of another type (a mental health partner in an acute collaborative) appears only if it reports
    where {{ list_has('metrics.applies_to_org_types', 'members.org_type') }}
        or org_metrics.org_code is not null
),

coverage as (
    select
        collaborative_code,
        membership_basis,
        period_month,
        metric_code,
        count(*) filter (where is_expected) as members_expected,
        count(value) filter (where is_expected) as members_reporting
    from member_rows
    group by collaborative_code, membership_basis, period_month, metric_code
),

collaborative_rows as (
    select
        coverage.collaborative_code,
        'ALL' as org_code,
        coverage.membership_basis,
        coverage.period_month,
        coverage.metric_code,
        cast(null as string) as member_role,
        collaborative_metrics.numerator,
        collaborative_metrics.denominator,
        collaborative_metrics.value,
        coverage.members_reporting < coverage.members_expected or collaborative_metrics.value is null
            as is_partial,
        coverage.members_expected,
        coverage.members_reporting,
        collaborative_metrics.metric_code is not null and collaborative_metrics.value is null as is_suppressed
    from coverage
    left join collaborative_metrics
        on coverage.collaborative_code = collaborative_metrics.collaborative_code
        and coverage.membership_basis = collaborative_metrics.membership_basis
        and coverage.period_month = collaborative_metrics.period_month
        and coverage.metric_code = collaborative_metrics.metric_code
),

member_rows_flagged as (
    select
        collaborative_code,
        org_code,
        membership_basis,
        period_month,
        metric_code,
        member_role,
        numerator,
        denominator,
        value,
        value is null as is_partial,
        case when is_expected then 1 else 0 end as members_expected,
        case when is_expected and value is not null then 1 else 0 end as members_reporting,
        is_suppressed
    from member_rows
),

unioned as (
    select * from collaborative_rows
    union all
    select * from member_rows_flagged
)

select
    collaborative_code,
    org_code,
    membership_basis,
    period_month,
    metric_code,
    numerator,
    denominator,
    value,
    is_partial,
    member_role,
    members_expected,
    members_reporting,
    is_suppressed
from unioned
