{#- Rows of the main MHSDS file the mhsds_los feed counted and did not load (other measures and breakdowns). -#}
with rows_not_taken as (
    select * from {{ source('mhsds_los', 'rows_not_taken') }}
)

select
    period_month,
    source_file,
    measure_id,
    breakdown,
    row_count
from rows_not_taken
