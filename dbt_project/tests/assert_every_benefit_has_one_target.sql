{#- A benefit needs a target: a value, or a percentage change from baseline, not both and not neither. -#}
select benefit_id
from {{ ref('stg_reference__benefits') }}
where (target_value is null) = (target_change_pct is null)
