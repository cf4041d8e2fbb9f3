{#-
    MHSDS MHS001 Master Patient Index, typed: the person of each submission record (RecordNumber), with the age at
    the end of the reporting period (AgeRepPeriodEnd) the MHS140/MHS156 age rules use. Patient-level; never
    published.
-#}
with mpi as (
    select * from {{ source('los_mh', 'mpi') }}
)

select
    period_month,
    source_file,
    source_row,
    uniq_submission_id,
    uniq_month_id,
    record_number,
    person_id,
    age_rep_period_end,
    nullif(trim(ethnic_category), '') as ethnicity,
    imd_decile,
    row_problem
from mpi
