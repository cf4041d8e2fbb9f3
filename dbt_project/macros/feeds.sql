{#- Every feed's file-load register, as (feed, relation) pairs: one place for the models that read them all. -#}
{% macro feed_file_loads() -%}
    {{- return([
        ('rtt', ref('stg_rtt__file_loads')),
        ('oap', ref('stg_oap__file_loads')),
        ('mhsds_los', ref('stg_mhsds_los__file_loads')),
        ('los_mh', ref('stg_los_mh__file_loads')),
        ('los_acute', ref('stg_los_acute__file_loads')),
        ('acute_long_stay', ref('stg_acute_long_stay__file_loads')),
    ]) -}}
{%- endmacro %}

{#- The staging model of a feed's file-load register (one per feed, as dbt's staging layer wants, written once). -#}
{% macro stg_file_loads(feed) -%}
with file_loads as (
    select * from {{ source(feed, 'file_loads') }}
)

select
    load_id,
    source_file,
    period_month,
    sha256,
    file_bytes,
    row_count,
    is_revision,
    action,
    is_current,
    loaded_at
from file_loads
{%- endmacro %}
