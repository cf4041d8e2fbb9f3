{#- Typed and renamed OAP statistics. A suppressed cell stays NULL with is_suppressed: never zero. -#}
with monthly_statistics as (
    select * from {{ source('oap', 'monthly_statistics') }}
)

select
    period_month,
    source_file,
    source_row,
    reporting_period_start,
    reporting_period_end,
    period_type,
    status,
    trim(breakdown) as breakdown,
    upper(trim(primary_level)) as primary_level,
    trim(primary_level_description) as primary_level_description,
    trim(secondary_level) as secondary_level,
    trim(secondary_level_description) as secondary_level_description,
    trim(measure_id) as measure_id,
    trim(measure_name) as measure_name,
    measure_value_published,
    measure_value,
    is_suppressed
from monthly_statistics
