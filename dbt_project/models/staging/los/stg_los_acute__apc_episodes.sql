{#-
    Acute admitted patient care episodes (HES APC / SUS+ APC, one row per episode), typed. Placeholder dates
    (1800-01-01, 1801-01-01) arrive here as NULL: the loader read them as missing and counted them
    (placeholder_dates). Patient-level: build database only.
-#}
with apc_episodes as (
    select * from {{ source('los_acute', 'apc_episodes') }}
)

select
    period_month,
    file_month,
    source_file,
    source_row,
    epikey,
    trim(spell_id) as provider_spell_id,
    episode_order,
    person_id,
    upper(trim(provider)) as provider_org_code,
    episode_start,
    episode_end,
    admission_date,
    discharge_date,
    trim(patient_classification) as patient_classification,
    trim(admission_method) as admission_method,
    trim(treatment_specialty) as treatment_specialty,
    spell_duration_days,
    imd_decile,
    nullif(trim(ethnicity), '') as ethnicity,
    placeholder_dates,
    row_problem
from apc_episodes
