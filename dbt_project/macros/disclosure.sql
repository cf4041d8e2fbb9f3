{#-
    Disclosure control for every count derived from patient-level data (SPEC §9, README "Disclosure control"),
    by the publishers' own rules for sub-national figures, one rule per setting (var disclosure_rules in
    dbt_project.yml):
    - acute (HES / SUS+ admitted patient care), NHS England's HES and ECDS method since September 2018:
      0 is shown; 1 to 7 suppressed; anything else rounded to the nearest 5. Means and medians are shown only
      where the count of spells behind them is.
    - mental_health (MHSDS), NHS England's MHSDS monthly publication: under 5 (0 included) suppressed;
      anything else rounded to the nearest 5; a percentage is suppressed when its numerator is, otherwise
      rounded to a whole number.
    Primary suppression alone can be undone by subtraction when a total and its parts are both served, so the
    parts of a served total also get complementary suppression (dc_complementary_suppression below).
-#}

{#- The feeds that hold patient-level rows: none of their values may reach a served table. -#}
{% macro patient_level_sources() -%}
    ('los_acute', 'los_mh')
{%- endmacro %}

{%- macro _dc_rule_case(setting, key) -%}
    {%- set rules = var('disclosure_rules') -%}
    case {{ setting }}
    {%- for name, rule in rules.items() %}
        when '{{ name }}' then {{ rule[key] }}
    {%- endfor %}
        else {{ raise_sql_error("'no disclosure rule for setting ' || coalesce(cast(" ~ setting ~ " as string), 'NULL')") }}
    end
{%- endmacro %}

{#- The largest count that is suppressed in this setting (7 for HES, 4 for MHSDS). -#}
{% macro dc_max_suppressed(setting='setting') -%}
    {{ _dc_rule_case(setting, 'max_suppressed') }}
{%- endmacro %}

{% macro dc_zero_suppressed(setting='setting') -%}
    {{ _dc_rule_case(setting, 'zero_suppressed') }}
{%- endmacro %}

{% macro dc_percent_decimals(setting='setting') -%}
    {{ _dc_rule_case(setting, 'percent_decimals') }}
{%- endmacro %}

{#- `value` rounded to `decimals` places, where decimals is a column holding one of the rules' percent_decimals:
    a case over those values, since Spark's round takes only a constant number of places. -#}
{% macro dc_round_to_decimals(value, decimals) -%}
    {%- set places = var('disclosure_rules').values() | map(attribute='percent_decimals') | unique | sort -%}
    case {{ decimals }}
    {%- for place in places %}
        when {{ place }} then round({{ value }}, {{ place }})
    {%- endfor %}
    end
{%- endmacro %}

{#- True when the rule suppresses this count on its own (primary suppression). NULL counts are not hidden. -#}
{% macro dc_is_hidden(count, setting='setting') -%}
    coalesce(
        ({{ count }} between 1 and {{ dc_max_suppressed(setting) }})
        or ({{ count }} = 0 and {{ dc_zero_suppressed(setting) }}),
        false
    )
{%- endmacro %}

{#- A count rounded to the nearest 5 (counts are whole numbers, so there is never a tie). -#}
{% macro dc_round(count) -%}
    cast(5 * round({{ count }} / 5.0) as bigint)
{%- endmacro %}

{#- The count as served: NULL when suppressed, otherwise rounded to the nearest 5 (0 stays 0 where shown). -#}
{% macro dc_count(count, setting='setting') -%}
    case
        when {{ count }} is null or {{ dc_is_hidden(count, setting) }} then null
        else {{ dc_round(count) }}
    end
{%- endmacro %}

{#- A percentage from unrounded counts, suppressed with its numerator or denominator, rounded as the rule says. -#}
{% macro dc_percent(numerator, denominator, setting='setting') -%}
    case
        when {{ numerator }} is null or {{ denominator }} is null or {{ denominator }} = 0
            or {{ dc_is_hidden(numerator, setting) }} or {{ dc_is_hidden(denominator, setting) }} then null
        else {{ dc_round_to_decimals('100.0 * cast(' ~ numerator ~ ' as double) / ' ~ denominator,
                                     dc_percent_decimals(setting)) }}
    end
{%- endmacro %}

{#-
    Complementary suppression of the parts of a served total (a trust's discharges and its cells by
    deprivation quintile, say). `cells` is a relation or CTE with one row per group and part: the group
    columns, the part column, the part's unrounded count (`n`), the group's unrounded total (`total_n`) and the
    setting. Every part of the group must be present, zeros included, and the parts must add up to the total.

    Returns one row per cell: the group columns, the part, is_suppressed and suppression_reason:
    - total_suppressed: the total itself is suppressed, so every part is;
    - small_count / zero: the rule suppresses the part on its own;
    - complementary: suppressed so that subtraction cannot isolate a suppressed part.
    Complementary cells are added smallest first until (a) at least two parts are hidden, (b) the hidden
    parts' unrounded sum exceeds the largest suppressed count, and (c) the served total minus the served
    visible parts is not itself in the suppressed range (it is at most 0, or above it). Hiding every part
    always satisfies all three for a total that is shown, so the search always ends.
-#}
{% macro dc_complementary_suppression(cells, group_by, part, n='n', total_n='total_n', setting='setting') -%}
    {%- set keys = group_by | join(', ') -%}
    {%- set join_keys -%}
        {%- for key in group_by %}{% if not loop.first %} and {% endif %}dc_a.{{ key }} = dc_b.{{ key }}{% endfor -%}
    {%- endset %}
    with dc_cells as (
        select
            {{ keys }},
            {{ part }} as dc_part,
            {{ n }} as dc_n,
            {{ dc_max_suppressed(setting) }} as dc_t,
            {{ dc_is_hidden(n, setting) }} as dc_is_primary,
            {{ dc_round(n) }} as dc_w,
            {{ dc_is_hidden(total_n, setting) }} as dc_total_hidden,
            {{ dc_round(total_n) }} as dc_total_served
        from {{ cells }}
    ),

    dc_groups as (
        select
            {{ keys }},
            max(dc_t) as dc_t,
            bool_or(dc_total_hidden) as dc_total_hidden,
            max(dc_total_served) as dc_total_served,
            count(*) filter (where dc_is_primary) as dc_primary_cells,
            coalesce(sum(dc_n) filter (where dc_is_primary), 0) as dc_primary_n,
            coalesce(sum(dc_w) filter (where dc_is_primary), 0) as dc_primary_w,
            sum(dc_w) as dc_all_w
        from dc_cells
        group by {{ keys }}
    ),

    dc_candidates as (
        select
            {{ keys }},
            dc_part,
            row_number() over dc_order as dc_rank,
            sum(dc_n) over dc_order as dc_cum_n,
            sum(dc_w) over dc_order as dc_cum_w
        from dc_cells
        where not dc_is_primary and dc_n > 0
        window dc_order as (
            partition by {{ keys }} order by dc_n, dc_part rows between unbounded preceding and current row
        )
    ),

    dc_options as (
        select {{ keys }}, 0 as dc_rank, 0 as dc_cum_n, 0 as dc_cum_w from dc_groups
        union all
        select {{ keys }}, dc_rank, dc_cum_n, dc_cum_w from dc_candidates
    ),

    dc_depth as (
        select
            {% for key in group_by %}dc_a.{{ key }}, {% endfor %}
            min(dc_a.dc_rank) as dc_depth
        from dc_options as dc_a
        inner join dc_groups as dc_b
            on {{ join_keys }}
        where dc_b.dc_primary_cells = 0
            or dc_b.dc_total_hidden
            or (
                dc_b.dc_primary_cells + dc_a.dc_rank >= 2
                and dc_b.dc_primary_n + dc_a.dc_cum_n > dc_b.dc_t
                and (
                    dc_b.dc_total_served - dc_b.dc_all_w + dc_b.dc_primary_w + dc_a.dc_cum_w <= 0
                    or dc_b.dc_total_served - dc_b.dc_all_w + dc_b.dc_primary_w + dc_a.dc_cum_w > dc_b.dc_t
                )
            )
        group by {% for key in group_by %}{% if not loop.first %}, {% endif %}dc_a.{{ key }}{% endfor %}
    )

    select
        {% for key in group_by %}dc_a.{{ key }}, {% endfor %}
        dc_a.dc_part as {{ part }},
        dc_a.dc_total_hidden
            or dc_a.dc_is_primary
            -- no depth found cannot happen for a shown total (see above); hide everything rather than trust it
            or coalesce(dc_c.dc_rank <= coalesce(dc_b.dc_depth, 1000000), false) as is_suppressed,
        case
            when dc_a.dc_total_hidden then 'total_suppressed'
            when dc_a.dc_is_primary and dc_a.dc_n = 0 then 'zero'
            when dc_a.dc_is_primary then 'small_count'
            when dc_c.dc_rank <= coalesce(dc_b.dc_depth, 1000000) then 'complementary'
        end as suppression_reason
    from dc_cells as dc_a
    left join dc_depth as dc_b
        on {{ join_keys }}
    left join dc_candidates as dc_c
        on {% for key in group_by %}dc_a.{{ key }} = dc_c.{{ key }} and {% endfor %}dc_a.dc_part = dc_c.dc_part
{%- endmacro %}
