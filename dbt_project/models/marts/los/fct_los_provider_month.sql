{#-
    Lengths of stay per trust, setting and month of discharge, from patient-level spells, with disclosure
    control: fewer than 5 discharges suppresses the row (NULL values, is_suppressed), and any other count
    between 1 and 4 is suppressed on its own. No identifier leaves the build database.
-#}
with spells as (
    select * from {{ ref('int_los__discharged_spells') }}
),

measured as (
    select
        discharge_month as period_month,
        org_code,
        setting,
        {{ los_measures() }}
    from spells
    group by discharge_month, org_code, setting
)

select
    period_month,
    org_code,
    setting,
    {{ los_disclosure_controlled() }}
from measured
