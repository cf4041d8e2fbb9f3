with file_rejections as (
    select * from {{ source('audit', 'file_rejections') }}
)

select
    run_id,
    source,
    source_file,
    period_month,
    source_row,
    source_column,
    rule,
    message,
    quarantined_to,
    rejected_at
from file_rejections
