{#-
    Lengths of stay per trust, setting and month of discharge, from patient-level spells, with disclosure
    control by the publisher's rule for the setting (macros/disclosure.sql, los_disclosure_controlled): a
    suppressed number of discharges suppresses the row (NULL values, is_suppressed); other counts are rounded to
    the nearest 5 or suppressed on their own. No identifier leaves the build database.
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
