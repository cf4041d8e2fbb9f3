{#- Every feed's file-load register, as (feed, relation) pairs: one place for the models that read them all. -#}
{% macro feed_file_loads() -%}
    {{- return([
        ('rtt', source('rtt', 'file_loads')),
        ('oap', source('oap', 'file_loads')),
        ('los_mh', source('los_mh', 'file_loads')),
        ('los_acute', source('los_acute', 'file_loads')),
    ]) -}}
{%- endmacro %}
