{#-
    The acute rows of fct_los_published_month (unioned there with the mental health rows): NHS England's
    published acute long-stay / discharge-delay figures per trust and month, in the mart's columns. setting is
    'acute'; measure is the catalogue metric code; published_value is the figure as the publication gives it for
    the month (the average of its daily counts, the month's sum of daily discharges, or the mean of its weekly
    snapshots, as period_type says; the publisher's own monthly daily average where it publishes one);
    source_measure_id is the publication's Metric text; is_suppressed is false: the sitrep is management
    information published without suppression, and a value it does not give is NULL, never zero.
-#}
with provider_month as (
    select * from {{ ref('int_acute_long_stay__provider_month') }}
)

select
    'acute' as setting,
    org_code,
    period_month,
    period_type,
    metric_code as measure,
    value as published_value,
    false as is_suppressed,
    source_measure_id,
    source_file
from provider_month
