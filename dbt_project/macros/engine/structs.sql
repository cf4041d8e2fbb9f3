{#- Structs (DuckDB STRUCT, Spark STRUCT). -#}

{#- A struct of the given fields, a Jinja list of (name, SQL expression) pairs, in order. -#}
{% macro struct_of(fields) %}{{ return(adapter.dispatch('struct_of', 'collab_benefits')(fields)) }}{% endmacro %}
{% macro duckdb__struct_of(fields) -%}
    { {%- for name, expression in fields %}{{ name }}: {{ expression }}{% if not loop.last %}, {% endif %}{% endfor -%} }
{%- endmacro %}
{% macro spark__struct_of(fields) -%}
    named_struct({%- for name, expression in fields %}'{{ name }}', {{ expression }}{% if not loop.last %}, {% endif %}{% endfor -%})
{%- endmacro %}
{% macro default__struct_of(fields) %}{{ engine_not_supported('struct_of') }}{% endmacro %}
