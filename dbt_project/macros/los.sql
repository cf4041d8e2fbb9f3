{#-
    Which mental health spells are "adult acute" (the beds the LoS benefit is about): an adult mental health
    ward (MHS502 WardType) with an adult acute admitted patient class. The codes live here, once.
-#}
{% macro los_mh_adult_acute_condition(ward_type='ward_type', patient_class='admitted_patient_class') -%}
    ({{ ward_type }} = '03' and {{ patient_class }} = '10')
{%- endmacro %}

{#- Length-of-stay measures over a set of discharged spells (los_days), before disclosure control. -#}
{% macro los_measures(los_days='los_days') -%}
    count(*) as discharges,
    cast(sum({{ los_days }}) as bigint) as bed_days,
    avg({{ los_days }}) as mean_los_days,
    quantile_cont({{ los_days }}, 0.5) as median_los_days,
    count(*) filter (where {{ los_days }} >= 21) as long_stay_discharges_21plus
{%- endmacro %}

{#- The same measures with disclosure control applied: fewer than 5 discharges suppresses the whole row. -#}
{% macro los_disclosure_controlled() -%}
    discharges < 5 as is_suppressed,
    case when discharges >= 5 then discharges end as discharges,
    case when discharges >= 5 then {{ suppress_small_count('bed_days') }} end as bed_days,
    case when discharges >= 5 then mean_los_days end as mean_los_days,
    case when discharges >= 5 then median_los_days end as median_los_days,
    case when discharges >= 5 then {{ suppress_small_count('long_stay_discharges_21plus') }} end
        as long_stay_discharges_21plus
{%- endmacro %}

{#- The los_* metrics of the catalogue as a list of structs, from disclosure-controlled measures. -#}
{% macro los_metric_structs() -%}
    [
        {
            metric_code: 'los_mean_days',
            numerator: cast(bed_days as double),
            denominator: cast(discharges as double),
            value: cast(mean_los_days as double)
        },
        {
            metric_code: 'los_median_days',
            numerator: cast(null as double),
            denominator: cast(discharges as double),
            value: cast(median_los_days as double)
        },
        {
            metric_code: 'los_long_stay_pct_21plus',
            numerator: cast(long_stay_discharges_21plus as double),
            denominator: cast(discharges as double),
            value: 100.0 * long_stay_discharges_21plus / nullif(discharges, 0)
        },
        {
            metric_code: 'los_bed_days',
            numerator: cast(bed_days as double),
            denominator: cast(null as double),
            value: cast(bed_days as double)
        }
    ]
{%- endmacro %}
