{#-
    Every MHSDS hospital provider spell once, in its latest record, with the bed type of the ward stay that ends
    at discharge and the person's age, as NHS England's monthly publication builds its length-of-stay measures
    (NHSDigital/mental-health-monthly-statistics, menh_bbrb 01_los/los_prep.py; measure_metadata.py MHS140,
    MHS156):

    * latest record: a spell appears in each month's submission while active and a month can be resubmitted; the
      row with the highest UniqMonthID wins, then the highest UniqSubmissionID, then the latest file month, then
      the later line (the publication keeps the record current at the period end: RecordEndDate open);
    * final ward stay: MHS502 of the same submission record (RecordNumber) and spell whose EndDateWardStay is the
      spell's DischDateHospProvSpell (the latest starting one if several), its MHAdmittedPatientClass giving
      bed_type (macros/los.sql); an open spell takes its open ward stay;
    * person: MHS001 of the same submission record, AgeRepPeriodEnd (age at the end of that reporting period);
    * cohorts: MHS140 adult acute beds, ages 18 to 64; MHS156 adult acute, older adult acute and PICU beds, 18+.

    Patient-level: build database only.
-#}
with spell_records as (
    select
        *,
        row_number() over (
            partition by spell_id
            order by
                uniq_month_id desc nulls last, uniq_submission_id desc nulls last, period_month desc, source_row desc
        ) as nth_latest
    from {{ ref('stg_los_mh__hospital_spells') }}
),

spells as (
    select * from spell_records
    where nth_latest = 1
),

ward_stays as (
    select * from {{ ref('stg_los_mh__ward_stays') }}
),

final_ward_stays as (
    select
        spells.period_month,
        spells.spell_id,
        ward_stays.admitted_patient_class,
        ward_stays.bed_type,
        ward_stays.row_problem,
        row_number() over (
            partition by spells.spell_id order by ward_stays.start_date desc, ward_stays.source_row desc
        ) as nth_latest
    from spells
    inner join ward_stays
        on spells.period_month = ward_stays.period_month
        and spells.spell_id = ward_stays.spell_id
        and spells.record_number = ward_stays.record_number
        and (
            spells.discharge_date = ward_stays.end_date
            or (spells.discharge_date is null and ward_stays.end_date is null)
        )
),

final_ward_stay as (
    select
        period_month,
        spell_id,
        admitted_patient_class,
        bed_type,
        row_problem
    from final_ward_stays
    where nth_latest = 1
),

people_records as (
    select
        *,
        row_number() over (partition by period_month, record_number order by source_row desc) as nth_latest
    from {{ ref('stg_los_mh__mpi') }}
),

people as (
    select * from people_records
    where nth_latest = 1
)

select
    spells.period_month,
    spells.setting,
    spells.spell_id,
    spells.person_id,
    spells.provider_org_code,
    spells.uniq_month_id,
    spells.uniq_submission_id,
    spells.start_date,
    spells.discharge_date,
    spells.los_days,
    final_ward_stay.admitted_patient_class,
    final_ward_stay.bed_type,
    people.age_rep_period_end,
    people.imd_decile,
    people.ethnicity,
    coalesce(spells.row_problem, final_ward_stay.row_problem) as row_problem,
    coalesce(final_ward_stay.bed_type = 'adult_acute' and people.age_rep_period_end between 18 and 64, false)
        as is_mhs140_cohort,
    coalesce(
        final_ward_stay.bed_type in ('adult_acute', 'older_adult_acute', 'picu') and people.age_rep_period_end >= 18,
        false
    ) as is_mhs156_cohort
from spells
left join final_ward_stay
    on spells.spell_id = final_ward_stay.spell_id
left join people
    on spells.period_month = people.period_month
    and spells.record_number = people.record_number
