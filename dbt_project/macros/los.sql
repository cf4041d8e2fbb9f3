{#-
    MHSDS bed types (MHS502 MHAdmittedPatientClass of the ward stay that ends at discharge) of NHS England's
    length-of-stay measures, as the monthly publication codes them (NHSDigital/mental-health-monthly-statistics,
    menh_bbrb 01_los/los_prep.py, Acute_Bed): MHSDS v5 up to UniqMonthID 1488 (March 2024) 10 adult acute,
    11 older adult acute, 12 PICU; MHSDS v6 from UniqMonthID 1489 (April 2024) 200, 201, 202. The codes live here,
    once. NULL for every other bed (and for a code of the other version: flagged bed_type_not_in_version).
-#}
{% macro los_mh_bed_type(uniq_month_id='uniq_month_id', patient_class='admitted_patient_class') -%}
    case
        when {{ uniq_month_id }} >= 1489 then
            case {{ patient_class }}
                when '200' then 'adult_acute' when '201' then 'older_adult_acute' when '202' then 'picu'
            end
        else
            case {{ patient_class }}
                when '10' then 'adult_acute' when '11' then 'older_adult_acute' when '12' then 'picu'
            end
    end
{%- endmacro %}

{#- An adult acute bed (MHS140's beds: the LoS benefit is about them), v5 or v6 codes. -#}
{% macro los_mh_adult_acute_condition(uniq_month_id='uniq_month_id', patient_class='admitted_patient_class') -%}
    (coalesce({{ los_mh_bed_type(uniq_month_id, patient_class) }} = 'adult_acute', false))
{%- endmacro %}

{#- Length-of-stay measures over a set of discharged spells (los_days), before disclosure control. -#}
{% macro los_measures(los_days='los_days') -%}
    count(*) as discharges,
    cast(sum({{ los_days }}) as bigint) as bed_days,
    avg({{ los_days }}) as mean_los_days,
    {{ percentile_cont(los_days, 0.5) }} as median_los_days,
    count(*) filter (where {{ los_days }} >= 21) as long_stay_discharges_21plus
{%- endmacro %}

{#-
    The same measures with disclosure control applied (macros/disclosure.sql: the HES rule in the acute setting,
    the MHSDS rule in mental health): a suppressed number of discharges suppresses the whole row; the other
    counts are rounded or suppressed on their own; a mean is shown only where its discharges and bed days are
    (otherwise mean x discharges would give the bed days back), a median where its discharges are, the
    percentage of long stays where its numerator is. Means, medians and percentages come from unrounded figures.
-#}
{% macro los_disclosure_controlled(setting='setting') -%}
    {{ dc_is_hidden('discharges', setting) }} as is_suppressed,
    {{ dc_count('discharges', setting) }} as discharges,
    case when not {{ dc_is_hidden('discharges', setting) }} then {{ dc_count('bed_days', setting) }} end as bed_days,
    case
        when not {{ dc_is_hidden('discharges', setting) }} and not {{ dc_is_hidden('bed_days', setting) }}
            then mean_los_days
    end as mean_los_days,
    case when not {{ dc_is_hidden('discharges', setting) }} then median_los_days end as median_los_days,
    case when not {{ dc_is_hidden('discharges', setting) }} then {{ dc_count('long_stay_discharges_21plus', setting) }} end
        as long_stay_discharges_21plus,
    case
        when not {{ dc_is_hidden('discharges', setting) }}
            then {{ dc_percent('long_stay_discharges_21plus', 'discharges', setting) }}
    end as long_stay_pct_21plus
{%- endmacro %}

{#- The los_* metrics of the catalogue as a list of structs, from disclosure-controlled measures. -#}
{% macro los_metric_structs() -%}
    {{ metric_structs([
        ('los_mean_days', 'bed_days', 'discharges', 'mean_los_days'),
        ('los_median_days', 'null', 'discharges', 'median_los_days'),
        ('los_long_stay_pct_21plus', 'long_stay_discharges_21plus', 'discharges', 'long_stay_pct_21plus'),
        ('los_bed_days', 'bed_days', 'null', 'bed_days'),
    ]) }}
{%- endmacro %}
