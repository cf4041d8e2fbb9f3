{#-
    MHSDS MHS501 Hospital Provider Spell, typed: one row per spell per submission (a spell active in several
    months appears in each month's submission), with its length of stay in days (DischDateHospProvSpell −
    StartDateHospProvSpell, as NHS England's HOSP_LOS). Patient-level; never published.
-#}
with hospital_spells as (
    select * from {{ source('los_mh', 'hospital_spells') }}
)

select
    period_month,
    source_file,
    source_row,
    'mental_health' as setting,
    uniq_submission_id,
    uniq_month_id,
    record_number,
    uniq_hosp_prov_spell_id as spell_id,
    person_id,
    upper(trim(org_id_prov)) as provider_org_code,
    start_date,
    discharge_date,
    -- dbt's datediff renders as one long expression on DuckDB
    {{ dbt.datediff('start_date', 'discharge_date', 'day') }} as los_days,  -- noqa: LT05
    method_of_admission,
    method_of_discharge,
    destination_of_discharge,
    row_problem
from hospital_spells
