{#-
    RTT waiting-list measures for each collaborative, membership basis and month, computed from the members'
    trust totals added band by band (so the collaborative median is the median of the pooled waiting list, not
    an average of medians). Only members with data contribute; fct_collaborative_metric_month flags the gaps.
-#}
with members as (
    select * from {{ ref('int_collaborative_members__monthly') }}
),

provider_bands as (
    select * from {{ ref('int_rtt__provider_month_bands') }}
    where treatment_function_code = 'ALL'
),

pivoted as (
    select
        members.collaborative_code,
        members.membership_basis,
        members.period_month,
        count(distinct provider_bands.org_code) as members_with_data,
        {{ rtt_pivot_parts('provider_bands') }}
    from members
    inner join provider_bands
        on members.org_code = provider_bands.org_code
        and members.period_month = provider_bands.period_month
    group by
        members.collaborative_code,
        members.membership_basis,
        members.period_month
),

distributions as (
    select
        *,
        {{ rtt_wait_band_list() }} as wait_bands
    from pivoted
),

measured as (
    select
        *,
        {{ rtt_cumulative('wait_bands') }} as wait_bands_cumulative
    from distributions
)

select
    collaborative_code,
    membership_basis,
    period_month,
    members_with_data,
    band_layout,
    {{ list_last('wait_bands_cumulative') }} as incomplete_pathways,
    {{ rtt_waiting_measures() }},
    incomplete_pathways_with_dta,
    clock_starts,
    {{ rtt_clock_stops('admitted_clock_stops', 'non_admitted_clock_stops') }} as clock_stops
from measured
