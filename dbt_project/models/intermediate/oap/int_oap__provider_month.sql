{#-
    Inappropriate out-of-area placements per sending trust and month: the attributed senders only (a trust of
    seeds/reference, under the code that carries its history today), summed when a merged trust's old and new
    codes both sent. A measure is suppressed when any contributing cell was.
-#}
with senders as (
    select * from {{ ref('int_oap__sender_month') }}
    where is_attributed
)

select
    period_month,
    org_code,
    {%- for name in ['inappropriate_oaps_started', 'inappropriate_oap_bed_days', 'inappropriate_oaps_active_end',
                     'inappropriate_oaps_ended', 'adult_acute_inappropriate_oap_bed_days'] %}
        sum({{ name }}) as {{ name }},
        bool_or({{ name }}_suppressed) as {{ name }}_suppressed,
    {%- endfor %}
    {{ sorted_distinct_list('sender_code') }} as reported_org_codes
from senders
group by period_month, org_code
