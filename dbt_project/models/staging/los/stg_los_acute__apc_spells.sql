{#- Acute admitted patient care spells, typed, with length of stay in days (discharge date − admission date). -#}
with apc_spells as (
    select * from {{ source('los_acute', 'apc_spells') }}
)

select
    period_month,
    source_file,
    source_row,
    'acute' as setting,
    epikey as spell_id,
    encrypted_hesid as person_id,
    upper(trim(procode3)) as provider_org_code,
    admission_date as start_date,
    discharge_date,
    date_diff('day', admission_date, discharge_date) as los_days,
    trim(admission_method) as admission_method,
    trim(patient_classification) as patient_classification,
    trim(treatment_specialty) as treatment_specialty,
    imd_decile,
    nullif(trim(ethnicity), '') as ethnicity,
    row_problem
from apc_spells
