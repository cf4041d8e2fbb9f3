{#- Every month for which any activity feed holds data: the calendar attribution is laid over. -#}
with rtt_months as (
    select distinct period_month from {{ ref('stg_rtt__full_extract') }}
),

bounds as (
    select
        min(period_month) as first_month,
        max(period_month) as last_month
    from rtt_months
)

select cast(month_start as date) as period_month
from bounds,
    range(first_month, last_month + interval 1 month, interval 1 month) as months (month_start)
