with benefits as (
    select * from {{ ref('benefits') }}
)

select
    upper(trim(benefit_id)) as benefit_id,
    upper(trim(collaborative_code)) as collaborative_code,
    trim(title) as title,
    lower(trim(metric_code)) as metric_code,
    lower(trim(coalesce(measure, 'value'))) as measure,
    nullif(upper(trim(scope_org_code)), '') as scope_org_code,
    lower(trim(direction)) as direction,
    baseline_start,
    baseline_end,
    baseline_value,
    target_value,
    target_change_pct,
    target_date,
    tolerance,
    coalesce(smoothing_months, 1) as smoothing_months,
    trim(owner) as owner,
    trim(programme) as programme,
    rebase_date,
    coalesce(screen_outliers, true) as screen_outliers
from benefits
