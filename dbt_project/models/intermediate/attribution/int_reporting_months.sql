{#- Every month from the first to the last month any activity feed holds data: the calendar attribution is laid
    over. -#}
with feed_months as (
    select period_month from {{ ref('stg_rtt__full_extract') }}
    union
    select period_month from {{ ref('stg_oap__monthly_statistics') }}
    union
    select cast(date_trunc('month', discharge_date) as date) from {{ ref('stg_los_acute__apc_spells') }}
    where discharge_date is not null
    union
    select cast(date_trunc('month', discharge_date) as date) from {{ ref('stg_los_mh__hospital_spells') }}
    where discharge_date is not null
    union
    select period_month from {{ ref('stg_acute_long_stay__daily_discharge_sitrep') }}
),

bounds as (
    select
        min(period_month) as first_month,
        max(period_month) as last_month
    from feed_months
)

{{ month_spine('bounds', 'first_month', 'last_month') }}
