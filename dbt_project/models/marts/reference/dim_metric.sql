select
    metric_code,
    metric_name,
    source,
    unit,
    better,
    applies_to_org_types,
    definition
from {{ ref('stg_reference__metrics') }}
