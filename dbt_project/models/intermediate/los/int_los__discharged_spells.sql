{#-
    Every discharged spell once, in the setting whose length of stay the benefits track: acute admitted spells,
    and mental health spells on adult acute beds aged 18 to 64 (NHS England's MHS140 cohort). A spell open over
    several months appears in several monthly files: the latest file's row wins. Rows with a problem (discharged before admission, unknown provider, …)
    are left out here and counted in the data-quality figures. Providers are mapped through successions.
    Patient-level: this table stays in the build database.
-#}
with acute as (
    -- spells built from HES / SUS+ episodes; only ordinary admissions (CLASSPAT 1) have a length of stay measured
    select
        period_month,
        setting,
        spell_id,
        provider_org_code,
        start_date,
        discharge_date,
        los_days,
        imd_decile,
        ethnicity,
        row_problem,
        is_ordinary_admission as is_in_scope
    from {{ ref('stg_los_acute__apc_spells') }}
),

mental_health as (
    -- MHSDS spells, one per spell in its latest record (int_los_mh__spells), in NHS England's MHS140 cohort: the
    -- ward stay ending at discharge on an adult acute bed (v5 10 / v6 200), aged 18 to 64 at the period end
    select
        period_month,
        setting,
        spell_id,
        provider_org_code,
        start_date,
        discharge_date,
        los_days,
        imd_decile,
        ethnicity,
        row_problem,
        is_mhs140_cohort as is_in_scope
    from {{ ref('int_los_mh__spells') }}
),

current_codes as (
    select * from {{ ref('int_organisations__current_code') }}
),

spells as (
    select * from acute
    union all
    select * from mental_health
),

ranked as (
    select
        *,
        row_number() over (
            partition by setting, spell_id order by period_month desc, discharge_date desc nulls last
        ) as nth_latest
    from spells
),

latest as (
    select * from ranked
    where nth_latest = 1
)

select
    latest.setting,
    latest.spell_id,
    coalesce(current_codes.current_org_code, latest.provider_org_code) as org_code,
    latest.start_date,
    latest.discharge_date,
    cast(date_trunc('month', latest.discharge_date) as date) as discharge_month,
    latest.los_days,
    latest.imd_decile,
    case when latest.imd_decile between 1 and 10 then cast(ceil(latest.imd_decile / 2) as integer) end
        as imd_quintile,
    latest.ethnicity
from latest
left join current_codes
    on latest.provider_org_code = current_codes.org_code
where latest.discharge_date is not null
    and latest.row_problem is null
    and latest.is_in_scope
