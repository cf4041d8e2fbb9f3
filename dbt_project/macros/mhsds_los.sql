{#- The published MHSDS length-of-stay measures the metrics use (MEASURE_ID, column name), each of its own period:
    MHS156/a/b and MHS140a rolling quarters, MHS24 the month (orchestration/sources/mhsds_los_layout.py). -#}
{% macro mhsds_los_metric_measures() -%}
    {{- return([
        ('MHS156', 'discharges_18plus'),
        ('MHS156a', 'bed_days_18plus'),
        ('MHS156b', 'mean_days_18plus'),
        ('MHS140a', 'mean_days_adult_acute_18_64'),
        ('MHS24', 'bed_days_month'),
    ]) -}}
{%- endmacro %}

{#- One struct per published metric of a row with the columns above (suppressed: value NULL, never zero). The
    18+ mean carries its bed days and discharges as numerator and denominator so a collaborative can pool it. -#}
{% macro mhsds_los_metric_structs() -%}
    {{ metric_structs([
        ('mhsds_los_mean_days_18plus', 'bed_days_18plus', 'discharges_18plus', 'mean_days_18plus'),
        ('mhsds_los_discharges_18plus', 'discharges_18plus', 'null', 'discharges_18plus'),
        ('mhsds_los_bed_days_18plus', 'bed_days_18plus', 'null', 'bed_days_18plus'),
        ('mhsds_los_mean_days_adult_acute_18_64', 'null', 'null', 'mean_days_adult_acute_18_64'),
        ('mhsds_bed_days_month', 'bed_days_month', 'null', 'bed_days_month'),
    ], suppressed=true) }}
{%- endmacro %}
