{#-
    Lengths of stay per trust, setting, month of discharge and deprivation quintile (IMD quintile 1 = most
    deprived; 'unknown' where the decile is missing), with the same disclosure control as the trust totals.
-#}
with spells as (
    select * from {{ ref('int_los__discharged_spells') }}
),

measured as (
    select
        discharge_month as period_month,
        org_code,
        setting,
        coalesce(cast(imd_quintile as varchar), 'unknown') as imd_quintile,
        {{ los_measures() }}
    from spells
    group by discharge_month, org_code, setting, coalesce(cast(imd_quintile as varchar), 'unknown')
)

select
    period_month,
    org_code,
    setting,
    imd_quintile,
    discharges < 5 as is_suppressed,
    case when discharges >= 5 then discharges end as discharges,
    case when discharges >= 5 then mean_los_days end as mean_los_days,
    case when discharges >= 5 then median_los_days end as median_los_days
from measured
