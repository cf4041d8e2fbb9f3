{#-
    Typed acute discharge sitrep cells, one row per published cell of each month's current file. Level is
    lower-cased (the publisher writes Provider and PROVIDER); a row repeated word for word is kept once (the
    contract flags it no_repeated_rows). is_in_month is false for a row the contract flagged row_in_file_month
    (dated outside the file's month): it is kept, and never counted in any month's figure.
-#}
with cells as (
    select
        *,
        row_number() over (
            partition by period_month, period, lower(trim(level)), trim(org_code), metric_group, metric
            order by source_row
        ) as nth_copy
    from {{ source('acute_long_stay', 'daily_discharge_sitrep') }}
)

select
    period_month,
    source_file,
    source_row,
    period,
    lower(trim(level)) as level,
    trim(region) as region,
    trim(icb) as icb,
    trim(org_code) as org_code,
    trim(org_name) as org_name,
    metric,
    metric_key,
    metric_type,
    metric_group,
    value_published,
    value,
    coalesce(row_flags, '') not like '%row_in_file_month%' as is_in_month,
    row_flags
from cells
where nth_copy = 1
