{#-
    Typed and renamed OAP statistics, one row per published cell. A suppressed cell stays NULL with
    is_suppressed: never zero. Levels are kept as published (a sender of UNKNOWN, an IMD decile such as
    "01 Most deprived"): whether a sender is a trust is decided in the intermediate layer.
-#}
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
    trim(breakdown) = 'England' or trim(breakdown) like 'England; %' as is_national,
    trim(primary_level) as primary_level,
    trim(primary_level_description) as primary_level_description,
    trim(secondary_level) as secondary_level,
    trim(secondary_level_description) as secondary_level_description,
    trim(measure_id) as measure_id,
    trim(measure_name) as measure_name,
    measure_value_published,
    measure_value,
    is_suppressed,
    row_flags
from monthly_statistics
