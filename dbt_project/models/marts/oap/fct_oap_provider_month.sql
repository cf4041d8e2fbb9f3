{#-
    Inappropriate out-of-area placements per sending trust and month, as NHS England published them (counts
    rounded to the nearest 5). A value the publisher suppressed (`*`, fewer than 5) is NULL with its flag set:
    it is never shown as zero.
-#}
with provider_month as (
    select * from {{ ref('int_oap__provider_month') }}
)

select
    period_month,
    org_code,
    {%- for name in ['inappropriate_oaps_started', 'inappropriate_oap_bed_days', 'inappropriate_oaps_active_end',
                     'inappropriate_oaps_ended', 'adult_acute_inappropriate_oap_bed_days'] %}
        case when {{ name }}_suppressed then null else cast({{ name }} as bigint) end as {{ name }},
    {%- endfor %}
    inappropriate_oaps_started_suppressed
    or inappropriate_oap_bed_days_suppressed
    or inappropriate_oaps_active_end_suppressed
    or inappropriate_oaps_ended_suppressed as is_suppressed,
    {%- for name in ['inappropriate_oaps_started', 'inappropriate_oap_bed_days', 'inappropriate_oaps_active_end',
                     'inappropriate_oaps_ended', 'adult_acute_inappropriate_oap_bed_days'] %}
        {{ name }}_suppressed,
    {%- endfor %}
    reported_org_codes
from provider_month
