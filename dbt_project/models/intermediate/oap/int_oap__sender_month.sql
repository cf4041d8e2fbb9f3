{#-
    Every sender of every month as published: the month rows of the Sending Provider breakdown (the rolling-quarter
    and rolling-12-month rows in the same file would double count), one row per published sender code with its
    measures pivoted. A sender is attributed when its code is an organisation of seeds/reference (mapped to the
    code that carries its history today); UNKNOWN (placements with no referring organisation), codes outside the
    reference and malformed codes are unattributed: they count in England's figures and never in a trust's.
    A row repeated in the file is counted once.
-#}
with published_rows as (
    select
        *,
        row_number() over (
            partition by period_month, primary_level, secondary_level, measure_id order by source_row
        ) as nth_copy
    from {{ ref('stg_oap__monthly_statistics') }}
    where period_type = 'month'
        and breakdown = 'Sending Provider'
),

statistics as (
    select * from published_rows
    where nth_copy = 1
),

current_codes as (
    select * from {{ ref('int_organisations__current_code') }}
),

senders as (
    select
        statistics.*,
        current_codes.current_org_code as org_code
    from statistics
    left join current_codes
        on statistics.primary_level = current_codes.org_code
)

select
    period_month,
    primary_level as sender_code,
    {{ any_non_null('primary_level_description') }} as sender_name,
    {{ any_non_null('org_code') }} as org_code,
    {{ any_non_null('org_code') }} is not null as is_attributed,
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
    bool_or(row_flags is not null) as is_flagged
from senders
group by period_month, primary_level
