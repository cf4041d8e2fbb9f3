{#-
    Acute hospital provider spells built from their episodes the way NHS England builds them from HES APC: the
    episodes of a provider's spell (PROCODE3 + SUSSPELLID / PROVSPNOPS, or SUS+ Hospital Provider Spell Number)
    form one spell; its last episode (highest EPIORDER, then the one with DISDATE) gives the discharge; length of
    stay = DISDATE − ADMIDATE in days (ADMIDATE from the last episode, else the earliest on any episode).
    Length of stay counts for ordinary admissions only (CLASSPAT 1): day cases (2) and regular day / night
    attenders (3, 4) are kept here, flagged, and left out of the measures downstream. A spell carries a row
    problem when any of its episodes does. Patient-level: build database only.
-#}
with episodes as (
    select * from {{ ref('stg_los_acute__apc_episodes') }}
),

ranked as (
    select
        *,
        row_number() over spell_episodes as nth_from_last,
        count(*) over spell as episode_count,
        min(admission_date) over spell as earliest_admission_date,
        max(row_problem) over spell as spell_row_problem
    from episodes
    window
        spell as (partition by provider_org_code, provider_spell_id),
        spell_episodes as (
            partition by provider_org_code, provider_spell_id
            order by episode_order desc, discharge_date desc nulls last, episode_end desc nulls last, source_row desc
        )
)

select
    period_month,
    source_file,
    source_row,
    'acute' as setting,
    provider_org_code || ':' || provider_spell_id as spell_id,
    provider_spell_id,
    person_id,
    provider_org_code,
    coalesce(admission_date, earliest_admission_date) as start_date,
    discharge_date,
    -- dbt's datediff renders as one long expression on DuckDB
    {{ dbt.datediff('coalesce(admission_date, earliest_admission_date)', 'discharge_date', 'day') }} as los_days,  -- noqa: LT05
    admission_method,
    patient_classification,
    coalesce(patient_classification = '1', false) as is_ordinary_admission,
    coalesce(patient_classification in ('2', '3', '4'), false) as is_day_case_or_regular_attender,
    treatment_specialty,
    episode_count,
    imd_decile,
    ethnicity,
    spell_row_problem as row_problem
from ranked
where nth_from_last = 1
