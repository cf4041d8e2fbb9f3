{#-
    The RTT week-band distribution (SPEC §3.1, §6, §12).

    The raw layer keeps the published bands as columns: 104 closed one-week bands (gt_00_to_01_weeks …
    gt_103_to_104_weeks) and two open bands, gt_52_weeks (files before April 2021, 53 bands) and gt_104_weeks
    (files from April 2021, 105 bands). Bands are summed over commissioners while still columns, then the
    distribution is kept compact as one list per row (SPEC §12): never one row per band.
-#}

{% macro rtt_closed_band_columns(first_week=0, last_week=104) -%}
    {%- set columns = [] -%}
    {%- for week in range(first_week, last_week) -%}
        {%- do columns.append('gt_%02d_to_%02d_weeks' % (week, week + 1)) -%}
    {%- endfor -%}
    {{- return(columns) -}}
{%- endmacro %}

{% macro rtt_band_columns() -%}
    {{- return(rtt_closed_band_columns() + ['gt_52_weeks', 'gt_104_weeks']) -}}
{%- endmacro %}

{#- Sum of the bands above `weeks` weeks; null when the layout does not publish them (before April 2021). -#}
{% macro rtt_waiting_over(weeks, band_layout='band_layout') -%}
    {%- if weeks == 52 -%}
    ({% for column in rtt_closed_band_columns(52, 104) %}{{ column }} + {% endfor %}gt_104_weeks + gt_52_weeks)
    {%- else -%}
    case when {{ band_layout }} = 105 then
        ({% for column in rtt_closed_band_columns(weeks, 104) %}{{ column }} + {% endfor %}gt_104_weeks)
    end
    {%- endif -%}
{%- endmacro %}

{% macro rtt_waiting_within(weeks) -%}
    ({% for column in rtt_closed_band_columns(0, weeks) %}{{ column }}{% if not loop.last %} + {% endif %}{% endfor %})
{%- endmacro %}

{#- The distribution as one list, in the order it was published: the last element is the open band. -#}
{% macro rtt_wait_band_list(band_layout='band_layout') -%}
    case
        when {{ band_layout }} = 53 then {{ list_of(rtt_closed_band_columns(0, 52) + ['gt_52_weeks']) }}
        else {{ list_of(rtt_closed_band_columns(0, 104) + ['gt_104_weeks']) }}
    end
{%- endmacro %}

{#- Running totals of a band list: element k is the number waiting up to the end of band k. -#}
{% macro rtt_cumulative(bands) -%}
    {{ list_running_sum(bands) }}
{%- endmacro %}

{#-
    Percentile p (0 < p < 1) of a wait distribution held as a list of weekly band counts (and its running
    totals), with linear interpolation within the band: the rank r = p × total falls in the first band k whose
    running total reaches r, and the wait is (k − 1) + (r − running total before k) ÷ count in k weeks. When r
    falls in the open last band (above 52 or 104 weeks) its lower bound is returned: the wait is at least that.
-#}
{% macro rtt_wait_percentile(bands, cumulative, p) -%}
    {%- set rank_wanted = '(' ~ p ~ ' * ' ~ list_last(cumulative) ~ ')' -%}
    {%- set band = list_first_position_where(cumulative, 'running', 'running >= ' ~ rank_wanted) -%}
    case
        when coalesce({{ list_last(cumulative) }}, 0) = 0 then null
        when {{ band }} = {{ list_length(bands) }} then cast({{ list_length(bands) }} - 1 as double)
        else {{ band }} - 1
            + ({{ rank_wanted }} - coalesce({{ list_element(cumulative, band ~ ' - 1') }}, 0))
            / {{ list_element(bands, band) }}
    end
{%- endmacro %}

{#-
    Aggregates that turn rows of int_rtt__provider_month_bands (one per RTT part) into one row of measures'
    inputs: the Part_2 waiting-list bands, Part_2A, Part_3 clock starts and Part_1A + Part_1B clock stops.
    Used with whatever grouping the caller needs (a trust, or a collaborative's members).
-#}
{% macro rtt_pivot_parts(relation_alias) -%}
    max({{ relation_alias }}.band_layout) as band_layout,
    {%- for column in rtt_band_columns() %}
    cast(sum(case when {{ relation_alias }}.rtt_part_type = 'Part_2' then {{ relation_alias }}.{{ column }} end) as bigint)
        as {{ column }},
    {%- endfor %}
    cast(sum(case when {{ relation_alias }}.rtt_part_type = 'Part_2A' then {{ relation_alias }}.total_all end) as bigint)
        as incomplete_pathways_with_dta,
    cast(sum(case when {{ relation_alias }}.rtt_part_type = 'Part_3' then {{ relation_alias }}.total_all end) as bigint)
        as clock_starts,
    cast(sum(case when {{ relation_alias }}.rtt_part_type = 'Part_1A' then {{ relation_alias }}.total_all end) as bigint)
        as admitted_clock_stops,
    cast(sum(case when {{ relation_alias }}.rtt_part_type = 'Part_1B' then {{ relation_alias }}.total_all end) as bigint)
        as non_admitted_clock_stops
{%- endmacro %}

{#- Waiting-list measures from the pivoted Part_2 bands (a row where no Part_2 was published gives nulls). -#}
{% macro rtt_waiting_measures() -%}
    {{ rtt_waiting_within(18) }} as within_18_weeks,
    {{ rtt_waiting_over(52) }} as over_52_weeks,
    {{ rtt_waiting_over(65) }} as over_65_weeks,
    {{ rtt_waiting_over(78) }} as over_78_weeks,
    {{ rtt_waiting_over(104) }} as over_104_weeks,
    {{ rtt_wait_percentile('wait_bands', 'wait_bands_cumulative', 0.5) }} as median_wait_weeks,
    {{ rtt_wait_percentile('wait_bands', 'wait_bands_cumulative', 0.92) }} as p92_wait_weeks
{%- endmacro %}

{#-
    The rtt_* metrics of the catalogue (SPEC §6) as a list of structs, to be unnested into one row per metric.
    numerator / denominator are what a total across organisations adds up; value is what a person reads.
-#}
{% macro rtt_metric_structs() -%}
    {%- set metrics = [] -%}
    {%- for metric_code, numerator, denominator in [
        ('rtt_incomplete_pathways', 'incomplete_pathways', 'null'),
        ('rtt_over_52_weeks', 'over_52_weeks', 'incomplete_pathways'),
        ('rtt_over_65_weeks', 'over_65_weeks', 'incomplete_pathways'),
        ('rtt_over_78_weeks', 'over_78_weeks', 'incomplete_pathways'),
        ('rtt_over_104_weeks', 'over_104_weeks', 'incomplete_pathways'),
        ('rtt_clock_starts', 'clock_starts', 'null'),
        ('rtt_clock_stops', 'clock_stops', 'null'),
    ] -%}
        {%- do metrics.append((metric_code, numerator, denominator, numerator)) -%}
    {%- endfor -%}
    {%- do metrics.append((
        'rtt_pct_within_18_weeks', 'within_18_weeks', 'incomplete_pathways',
        '100.0 * cast(within_18_weeks as double) / nullif(incomplete_pathways, 0)'
    )) -%}
    {%- do metrics.append(('rtt_median_wait_weeks', 'null', 'incomplete_pathways', 'median_wait_weeks')) -%}
    {%- do metrics.append(('rtt_p92_wait_weeks', 'null', 'incomplete_pathways', 'p92_wait_weeks')) -%}
    {{ metric_structs(metrics) }}
{%- endmacro %}
