{#-
    Typed published length-of-stay cells of the main MHSDS monthly file, England and Provider rows. A suppressed
    cell stays NULL with is_suppressed: never zero. period_type keeps rolling quarters and months apart.
-#}
with monthly_statistics as (
    select * from {{ source('mhsds_los', 'monthly_statistics') }}
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
    trim(breakdown) = 'England' as is_national,
    trim(primary_level) as primary_level,
    trim(primary_level_description) as primary_level_description,
    trim(measure_id) as measure_id,
    trim(measure_name) as measure_name,
    measure_value_published,
    measure_value,
    is_suppressed,
    row_flags
from monthly_statistics
