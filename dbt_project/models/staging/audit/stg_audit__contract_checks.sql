with contract_checks as (
    select * from {{ source('audit', 'contract_checks') }}
)

select
    run_id,
    source,
    period_month,
    sha256,
    passed,
    violations,
    checked_at
from contract_checks
