with metrics as (
    select * from {{ ref('metrics') }}
)

select
    lower(trim(metric_code)) as metric_code,
    trim(metric_name) as metric_name,
    lower(trim(source)) as source,
    lower(trim(unit)) as unit,
    lower(trim(better)) as better,
    {{ list_map(split_to_list('lower(applies_to_org_type)', ';'), 'org_type', 'trim(org_type)') }}
        as applies_to_org_types,
    definition
from metrics
