with mart_checks as (
    select * from {{ source('audit', 'mart_checks') }}
)

select
    run_id,
    checked_at,
    mart,
    check_name,
    success,
    observed_value,
    details
from mart_checks
