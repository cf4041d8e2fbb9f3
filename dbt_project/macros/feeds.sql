{#- Every feed's file-load register, as (feed, relation) pairs: one place for the models that read them all. -#}
{% macro feed_file_loads() -%}
    {{- return([
        ('rtt', ref('stg_rtt__file_loads')),
        ('oap', ref('stg_oap__file_loads')),
        ('los_mh', ref('stg_los_mh__file_loads')),
        ('los_acute', ref('stg_los_acute__file_loads')),
    ]) -}}
{%- endmacro %}
