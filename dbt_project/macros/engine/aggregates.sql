{#- Aggregates whose name or NULL handling differs between the engines. -#}

{#- The value of `expression` on the row with the largest `ordering`, over the rows where both are non-NULL (as
    DuckDB's arg_max; Spark's max_by alone would return a NULL value). -#}
{% macro value_at_max(expression, ordering) %}{{ return(adapter.dispatch('value_at_max', 'collab_benefits')(expression, ordering)) }}{% endmacro %}
{% macro duckdb__value_at_max(expression, ordering) -%}
    arg_max({{ expression }}, {{ ordering }})
{%- endmacro %}
{% macro spark__value_at_max(expression, ordering) -%}
    max_by({{ expression }}, case when {{ expression }} is not null then {{ ordering }} end)
{%- endmacro %}
{% macro default__value_at_max(expression, ordering) %}{{ engine_not_supported('value_at_max') }}{% endmacro %}

{#- The same at the smallest `ordering` (DuckDB's arg_min). -#}
{% macro value_at_min(expression, ordering) %}{{ return(adapter.dispatch('value_at_min', 'collab_benefits')(expression, ordering)) }}{% endmacro %}
{% macro duckdb__value_at_min(expression, ordering) -%}
    arg_min({{ expression }}, {{ ordering }})
{%- endmacro %}
{% macro spark__value_at_min(expression, ordering) -%}
    min_by({{ expression }}, case when {{ expression }} is not null then {{ ordering }} end)
{%- endmacro %}
{% macro default__value_at_min(expression, ordering) %}{{ engine_not_supported('value_at_min') }}{% endmacro %}

{#- Any non-NULL value of the group (NULL only when every value is; DuckDB's any_value skips NULLs, Spark's
    does not unless asked). -#}
{% macro any_non_null(expression) %}{{ return(adapter.dispatch('any_non_null', 'collab_benefits')(expression)) }}{% endmacro %}
{% macro duckdb__any_non_null(expression) -%}
    any_value({{ expression }})
{%- endmacro %}
{% macro spark__any_non_null(expression) -%}
    any_value({{ expression }}, true)
{%- endmacro %}
{% macro default__any_non_null(expression) %}{{ engine_not_supported('any_non_null') }}{% endmacro %}

{#- The first non-NULL value of `expression` in `ordering`'s order. -#}
{% macro first_non_null_by(expression, ordering) %}{{ return(adapter.dispatch('first_non_null_by', 'collab_benefits')(expression, ordering)) }}{% endmacro %}
{% macro duckdb__first_non_null_by(expression, ordering) -%}
    any_value({{ expression }} order by {{ ordering }})
{%- endmacro %}
{% macro spark__first_non_null_by(expression, ordering) -%}
    min_by({{ expression }}, case when {{ expression }} is not null then {{ ordering }} end)
{%- endmacro %}
{% macro default__first_non_null_by(expression, ordering) %}{{ engine_not_supported('first_non_null_by') }}{% endmacro %}

{#- Continuous percentile (linear interpolation between the two nearest values, as R's type 7). Append
    `filter (where ...)` after it where needed. -#}
{% macro percentile_cont(expression, fraction) %}{{ return(adapter.dispatch('percentile_cont', 'collab_benefits')(expression, fraction)) }}{% endmacro %}
{% macro duckdb__percentile_cont(expression, fraction) -%}
    quantile_cont({{ expression }}, {{ fraction }})
{%- endmacro %}
{% macro spark__percentile_cont(expression, fraction) -%}
    percentile({{ expression }}, {{ fraction }})
{%- endmacro %}
{% macro default__percentile_cont(expression, fraction) %}{{ engine_not_supported('percentile_cont') }}{% endmacro %}

{#-
    The group's non-NULL values of `expression` joined by `separator` (a SQL string literal) in the order of
    `order_by` (an expression; ties broken by the value), NULL when there are none. dbt's listagg drops the
    order on Spark, and the months' version fingerprints (macros/incremental_months.sql) need the same string on
    both engines. With distinct=true each value once, sorted by itself (order_by is then ignored).
-#}
{% macro ordered_string_agg(expression, separator, order_by=none, distinct=false) %}{{ return(adapter.dispatch('ordered_string_agg', 'collab_benefits')(expression, separator, order_by, distinct)) }}{% endmacro %}
{% macro duckdb__ordered_string_agg(expression, separator, order_by=none, distinct=false) -%}
    {%- if distinct -%}
    string_agg(distinct {{ expression }}, {{ separator }} order by {{ expression }})
    {%- else -%}
    string_agg({{ expression }}, {{ separator }} order by {{ order_by if order_by is not none else expression }})
    {%- endif -%}
{%- endmacro %}
{% macro spark__ordered_string_agg(expression, separator, order_by=none, distinct=false) -%}
    case when count({{ expression }}) > 0 then
    {%- if distinct %}
        array_join(array_sort(collect_set({{ expression }})), {{ separator }})
    {%- else %}
        array_join(transform(array_sort(collect_list(case when {{ expression }} is not null then
            named_struct('k', {{ order_by if order_by is not none else expression }}, 'v', {{ expression }}) end)),
            element -> element.v), {{ separator }})
    {%- endif %}
    end
{%- endmacro %}
{% macro default__ordered_string_agg(expression, separator, order_by=none, distinct=false) %}{{ engine_not_supported('ordered_string_agg') }}{% endmacro %}
