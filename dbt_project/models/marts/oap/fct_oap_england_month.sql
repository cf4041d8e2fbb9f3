{#-
    England's inappropriate out-of-area placements per month, as NHS England published them: the England row of
    the month (exact and unrounded, every sender counted, the UNKNOWN ones included), beside what the Sending
    Provider rows attribute to trusts of seeds/reference and what they leave unattributed (UNKNOWN, codes outside
    the reference). The sender figures are rounded to 5 and suppressed below 5, cell by cell, so attributed plus
    unattributed is close to, not equal to, England.
-#}
with published_rows as (
    select
        *,
        row_number() over (partition by period_month, measure_id order by source_row) as nth_copy
    from {{ ref('stg_oap__monthly_statistics') }}
    where period_type = 'month'
        and breakdown = 'England'
),

statistics as (
    select * from published_rows
    where nth_copy = 1
),

senders as (
    select * from {{ ref('int_oap__sender_month') }}
),

england as (
    select
        period_month,
        {{ any_non_null('status') }} as status,
        {{ any_non_null('source_file') }} as source_file,
        {%- for measure, name in [
            ('OAP01', 'inappropriate_oaps_started'),
            ('OAP02', 'inappropriate_oap_bed_days'),
            ('OAP03', 'inappropriate_oaps_active_end'),
            ('OAP04', 'inappropriate_oaps_ended'),
            ('OAP02a', 'adult_acute_inappropriate_oap_bed_days'),
        ] %}
            sum(measure_value) filter (where measure_id = '{{ measure }}') as {{ name }},
            coalesce(bool_or(is_suppressed) filter (where measure_id = '{{ measure }}'), false)
                as {{ name }}_suppressed{% if not loop.last %},{% endif %}
        {%- endfor %}
    from statistics
    group by period_month
),

by_attribution as (
    select
        period_month,
        coalesce(sum(inappropriate_oap_bed_days) filter (where is_attributed), 0) as attributed_oap_bed_days,
        coalesce(sum(inappropriate_oap_bed_days) filter (where not is_attributed), 0) as unattributed_oap_bed_days,
        coalesce(sum(inappropriate_oaps_started) filter (where not is_attributed), 0) as unattributed_oaps_started,
        coalesce(sum(inappropriate_oaps_active_end) filter (where not is_attributed), 0)
            as unattributed_oaps_active_end,
        count(*) filter (where inappropriate_oap_bed_days_suppressed) as suppressed_sender_bed_day_cells,
        {{ sorted_list_where('sender_code', 'not is_attributed') }} as unattributed_sender_codes
    from senders
    group by period_month
)

select
    england.period_month,
    england.status,
    england.source_file,
    {%- for name in ['inappropriate_oaps_started', 'inappropriate_oap_bed_days', 'inappropriate_oaps_active_end',
                     'inappropriate_oaps_ended', 'adult_acute_inappropriate_oap_bed_days'] %}
        case when england.{{ name }}_suppressed then null else cast(england.{{ name }} as bigint) end as {{ name }},
        england.{{ name }}_suppressed,
    {%- endfor %}
    cast(coalesce(by_attribution.attributed_oap_bed_days, 0) as bigint) as attributed_oap_bed_days,
    cast(coalesce(by_attribution.unattributed_oap_bed_days, 0) as bigint) as unattributed_oap_bed_days,
    cast(coalesce(by_attribution.unattributed_oaps_started, 0) as bigint) as unattributed_oaps_started,
    cast(coalesce(by_attribution.unattributed_oaps_active_end, 0) as bigint) as unattributed_oaps_active_end,
    coalesce(by_attribution.suppressed_sender_bed_day_cells, 0) as suppressed_sender_bed_day_cells,
    coalesce(by_attribution.unattributed_sender_codes, {{ empty_string_list() }}) as unattributed_sender_codes
from england
left join by_attribution
    on england.period_month = by_attribution.period_month
