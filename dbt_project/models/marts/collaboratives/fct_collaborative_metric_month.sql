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

provider_month as (
    select * from {{ ref('fct_rtt_provider_month') }}
    where treatment_function_code = 'ALL'
),

collaborative_month as (
    select * from {{ ref('int_rtt__collaborative_month') }}
),

provider_metric_structs as (
    select
        org_code,
        period_month,
        unnest({{ rtt_metric_structs() }}) as metric
    from provider_month
),

provider_metrics as (
    select
        org_code,
        period_month,
        metric.metric_code,
        metric.numerator,
        metric.denominator,
        metric.value
    from provider_metric_structs
),

collaborative_metric_structs as (
    select
        collaborative_code,
        membership_basis,
        period_month,
        unnest({{ rtt_metric_structs() }}) as metric
    from collaborative_month
),

collaborative_metrics as (
    select
        collaborative_code,
        membership_basis,
        period_month,
        metric.metric_code,
        metric.numerator,
        metric.denominator,
        metric.value
    from collaborative_metric_structs
),

member_rows as (
    select
        members.collaborative_code,
        members.org_code,
        members.membership_basis,
        members.period_month,
        metrics.metric_code,
        members.member_role,
        provider_metrics.numerator,
        provider_metrics.denominator,
        provider_metrics.value,
        coalesce(members.org_type = metrics.applies_to_org_type, false) as is_expected
    from members
    inner join metrics
        on metrics.source = 'rtt'
    left join provider_metrics
        on members.org_code = provider_metrics.org_code
        and members.period_month = provider_metrics.period_month
        and metrics.metric_code = provider_metrics.metric_code
    -- a member of another type (a mental health partner in an acute collaborative) appears only if it reports
    where members.org_type = metrics.applies_to_org_type
        or provider_metrics.org_code is not null
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
        cast(null as varchar) as member_role,
        collaborative_metrics.numerator,
        collaborative_metrics.denominator,
        collaborative_metrics.value,
        coverage.members_reporting < coverage.members_expected or collaborative_metrics.value is null
            as is_partial,
        coverage.members_expected,
        coverage.members_reporting
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
        case when is_expected and value is not null then 1 else 0 end as members_reporting
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
    members_reporting
from unioned
