{#-
    Catalogue metrics (SPEC §6) as one list of structs per row, to be unnested into one row per metric: every
    feed's metric layer goes through here, so every metric row has the same fields and types on both engines.

    metrics: a Jinja list of (metric_code, numerator, denominator, value), each a SQL expression ('null' for none);
    numerator / denominator are what a total across organisations adds up, value is what a person reads. With
    suppressed, each struct also carries is_suppressed from the value column's <value>_suppressed flag.
-#}
{% macro metric_structs(metrics, suppressed=false) -%}
    {%- set structs = [] -%}
    {%- for metric_code, numerator, denominator, value in metrics -%}
        {%- set fields = [
            ('metric_code', "'" ~ metric_code ~ "'"),
            ('numerator', 'cast(' ~ numerator ~ ' as double)'),
            ('denominator', 'cast(' ~ denominator ~ ' as double)'),
            ('value', 'cast(' ~ value ~ ' as double)'),
        ] -%}
        {%- if suppressed %}{% do fields.append(('is_suppressed', value ~ '_suppressed')) %}{% endif -%}
        {%- do structs.append(struct_of(fields)) -%}
    {%- endfor -%}
    {{ list_of(structs) }}
{%- endmacro %}

{#- The oap_* metrics of an organisation's or a collaborative's month of out-of-area placements (counts only). -#}
{% macro oap_metric_structs(suppressed=false) -%}
    {%- set metrics = [] -%}
    {%- for metric_code, column in [
        ('oap_inappropriate_bed_days', 'inappropriate_oap_bed_days'),
        ('oap_inappropriate_active_end', 'inappropriate_oaps_active_end'),
        ('oap_inappropriate_started', 'inappropriate_oaps_started'),
    ] -%}
        {%- do metrics.append((metric_code, column, 'null', column)) -%}
    {%- endfor -%}
    {{ metric_structs(metrics, suppressed) }}
{%- endmacro %}
