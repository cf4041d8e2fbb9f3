{#- Failing a query with a message (an invalid configuration met while computing). -#}
{% macro raise_sql_error(message) %}{{ return(adapter.dispatch('raise_sql_error', 'collab_benefits')(message)) }}{% endmacro %}
{% macro duckdb__raise_sql_error(message) -%}
    error({{ message }})
{%- endmacro %}
{% macro spark__raise_sql_error(message) -%}
    raise_error({{ message }})
{%- endmacro %}
{% macro default__raise_sql_error(message) %}{{ engine_not_supported('raise_sql_error') }}{% endmacro %}
