{#- Mental health hospital spells, typed, with length of stay in days (discharge date − start date). -#}
with hospital_spells as (
    select * from {{ source('los_mh', 'hospital_spells') }}
)

select
    period_month,
    source_file,
    source_row,
    'mental_health' as setting,
    uniq_hosp_prov_spell_id as spell_id,
    person_id,
    upper(trim(org_id_prov)) as provider_org_code,
    start_date,
    discharge_date,
    date_diff('day', start_date, discharge_date) as los_days,
    trim(ward_type) as ward_type,
    trim(admitted_patient_class) as admitted_patient_class,
    {{ los_mh_adult_acute_condition('trim(ward_type)', 'trim(admitted_patient_class)') }} as is_adult_acute,
    imd_decile,
    nullif(trim(ethnic_category), '') as ethnicity,
    row_problem
from hospital_spells
