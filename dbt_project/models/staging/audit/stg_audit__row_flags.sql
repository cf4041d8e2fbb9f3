{#- The rows that warning-severity rules flagged in files that were loaded (README "Severity policy"). -#}
with row_flags as (
    select * from {{ source('audit', 'row_flags') }}
)

select
    run_id,
    source,
    source_file,
    period_month,
    sha256,
    source_row,
    source_column,
    rule,
    message,
    coalesce(row_count, 1) as row_count,
    flagged_at
from row_flags
