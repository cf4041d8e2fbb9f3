{#- Dates: what dbt's cross-database macros (dbt.datediff, dbt.dateadd, dbt.date_trunc) do not cover. -#}

{#- A query of one row per month from first_month to last_month (dates on the 1st, both included), in a
    column period_month, from `relation` (a CTE with one row holding the two bounds). -#}
{% macro month_spine(relation, first_month, last_month) %}{{ return(adapter.dispatch('month_spine', 'collab_benefits')(relation, first_month, last_month)) }}{% endmacro %}
{% macro duckdb__month_spine(relation, first_month, last_month) -%}
select cast(months.month_start as date) as period_month
from {{ relation }},
    range({{ relation }}.{{ first_month }}, {{ relation }}.{{ last_month }} + interval 1 month, interval 1 month)
        as months (month_start)
{%- endmacro %}
{% macro spark__month_spine(relation, first_month, last_month) -%}
select cast(months.month_start as date) as period_month
from {{ relation }}
lateral view explode(sequence({{ relation }}.{{ first_month }}, {{ relation }}.{{ last_month }}, interval 1 month))
    months as month_start
{%- endmacro %}
{% macro default__month_spine(relation, first_month, last_month) %}{{ engine_not_supported('month_spine') }}{% endmacro %}
