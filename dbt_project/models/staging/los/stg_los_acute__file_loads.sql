with file_loads as (
    select * from {{ source('los_acute', 'file_loads') }}
)

select
    load_id,
    source_file,
    period_month,
    sha256,
    file_bytes,
    row_count,
    is_revision,
    action,
    is_current,
    loaded_at
from file_loads
