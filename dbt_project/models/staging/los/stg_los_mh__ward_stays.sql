{#-
    MHSDS MHS502 Ward Stay, typed, with the bed type of NHS England's length-of-stay measures (macros/los.sql:
    los_mh_bed_type, v5 or v6 codes by UniqMonthID). Patient-level; never published.
-#}
with ward_stays as (
    select * from {{ source('los_mh', 'ward_stays') }}
)

select
    period_month,
    source_file,
    source_row,
    uniq_submission_id,
    uniq_month_id,
    record_number,
    uniq_ward_stay_id as ward_stay_id,
    uniq_hosp_prov_spell_id as spell_id,
    start_date,
    end_date,
    admitted_patient_class,
    {{ los_mh_bed_type('uniq_month_id', 'admitted_patient_class') }} as bed_type,
    ward_type,
    row_problem
from ward_stays
