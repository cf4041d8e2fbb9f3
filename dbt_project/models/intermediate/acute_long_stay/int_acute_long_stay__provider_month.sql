{#-
    The acute discharge sitrep's measures per trust and month, in one long shape (one row per trust, month and
    catalogue metric), from the Provider rows of each month's current file:
    - a trust is attributed under the code that carries its history today (a merged trust's old and new codes
      are added up day by day); provider codes outside seeds/reference, rows at other levels, rows flagged
      provider_code_format or dated outside the file's month (row_in_file_month) are never counted;
    - daily stocks (patients no longer meeting the criteria to reside, remaining in hospital) are the average of
      the daily counts over the days the trust returned (period_type month_daily_average); from August 2025 the
      publisher's own monthly "Daily Average" row of patients remaining is used where published;
    - daily discharges are the month's sum (month_total);
    - additional bed days (stays of 7, 14, 21 days or over) are weekly snapshots: their mean over the snapshots
      dated in the month (weekly_snapshot_mean), never a monthly count;
    - a day or snapshot the trust did not return (not-available marker, blank) is left out, never read as zero;
      a measure with no value at all in the month is NULL.
-#}
with cells as (
    select * from {{ ref('stg_acute_long_stay__daily_discharge_sitrep') }}
    where level = 'provider'
        and is_in_month
        and metric_key is not null
        and coalesce(row_flags, '') not like '%provider_code_format%'
),

current_codes as (
    select * from {{ ref('int_organisations__current_code') }}
),

attributed as (
    select
        cells.*,
        current_codes.current_org_code
    from cells
    inner join current_codes
        on cells.org_code = current_codes.org_code
),

-- one value per trust (as it is today), day and measure
by_period as (
    select
        current_org_code as org_code,
        period_month,
        period,
        metric_key,
        sum(value) as value,
        {{ first_non_null_by('metric', 'source_row') }} as metric,
        {{ any_non_null('source_file') }} as source_file,
        {{ sorted_distinct_list('org_code') }} as reported_org_codes
    from attributed
    group by current_org_code, period_month, period, metric_key
),

by_month as (
    select
        org_code,
        period_month,
        metric_key,
        avg(value) as mean_value,
        sum(value) as total_value,
        count(value) as periods_reported,
        count(*) as periods_published,
        {{ any_non_null('metric') }} as source_measure_id,
        {{ any_non_null('source_file') }} as source_file,
        {{ sorted_distinct_list_union('reported_org_codes') }} as reported_org_codes
    from by_period
    group by org_code, period_month, metric_key
),

published_average as (
    select * from by_month
    where metric_key = 'nctr_remaining_daily_average' and mean_value is not null
),

measures as (
    select
        org_code,
        period_month,
        case metric_key
            when 'nctr' then 'acute_los_nctr_daily_avg'
            when 'nctr_remaining' then 'acute_los_nctr_remaining_daily_avg'
            when 'nctr_discharged' then 'acute_los_nctr_discharged'
            when 'additional_bed_days_7plus' then 'acute_los_additional_bed_days_7plus'
            when 'additional_bed_days_14plus' then 'acute_los_additional_bed_days_14plus'
            when 'additional_bed_days_21plus' then 'acute_los_additional_bed_days_21plus'
        end as metric_code,
        case
            when metric_key = 'nctr_discharged' then 'month_total'
            when metric_key like 'additional_bed_days_%' then 'weekly_snapshot_mean'
            else 'month_daily_average'
        end as period_type,
        case when metric_key = 'nctr_discharged' then total_value else mean_value end as value,
        periods_reported,
        periods_published,
        source_measure_id,
        source_file,
        reported_org_codes
    from by_month
    where metric_key <> 'nctr_remaining_daily_average'
)

select
    measures.org_code,
    measures.period_month,
    measures.metric_code,
    measures.period_type,
    case
        when measures.metric_code = 'acute_los_nctr_remaining_daily_avg'
            then coalesce(published_average.mean_value, measures.value)
        else measures.value
    end as value,
    measures.periods_reported,
    measures.periods_published,
    case
        when measures.metric_code = 'acute_los_nctr_remaining_daily_avg' and published_average.org_code is not null
            then published_average.source_measure_id
        else measures.source_measure_id
    end as source_measure_id,
    measures.source_file,
    measures.reported_org_codes
from measures
left join published_average
    on measures.metric_code = 'acute_los_nctr_remaining_daily_avg'
    and measures.org_code = published_average.org_code
    and measures.period_month = published_average.period_month
