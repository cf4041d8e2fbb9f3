{#-
    Inappropriate out-of-area placements per sending trust and month: month rows of the Sending Provider
    breakdown only (the rolling-quarter and rolling-12-month rows in the same file would double count), pivoted
    to one row per trust, mapped through successions. A measure is suppressed when any contributing cell was.
-#}
with statistics as (
    select * from {{ ref('stg_oap__monthly_statistics') }}
    where period_type = 'month'
        and breakdown = 'Sending Provider'
),

current_codes as (
    select * from {{ ref('int_organisations__current_code') }}
),

mapped as (
    select
        statistics.*,
        coalesce(current_codes.current_org_code, statistics.primary_level) as org_code
    from statistics
    left join current_codes
        on statistics.primary_level = current_codes.org_code
)

select
    period_month,
    org_code,
    {%- for measure, name in [
        ('OAP01', 'inappropriate_oaps_started'),
        ('OAP02', 'inappropriate_oap_bed_days'),
        ('OAP03', 'inappropriate_oaps_active_end'),
        ('OAP04', 'inappropriate_oaps_ended'),
        ('OAP02a', 'adult_acute_inappropriate_oap_bed_days'),
    ] %}
    sum(measure_value) filter (where measure_id = '{{ measure }}') as {{ name }},
    coalesce(bool_or(is_suppressed) filter (where measure_id = '{{ measure }}'), false) as {{ name }}_suppressed,
    {%- endfor %}
    list_sort(list_distinct(list(primary_level))) as reported_org_codes
from mapped
group by period_month, org_code
