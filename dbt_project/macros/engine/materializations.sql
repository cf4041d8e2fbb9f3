{#- How each engine builds what the models ask for. -#}

{#-
    The config of a month-partitioned incremental model (macros/incremental_months.sql): a run replaces the months
    it rebuilds whole. DuckDB deletes those months and inserts them (delete+insert on period_month); Spark
    overwrites their partitions (insert_overwrite, partitioned by period_month, Parquet). Use as
    config(materialized='incremental', **month_partitioned_config()).
-#}
{% macro month_partitioned_config() %}{{ return(adapter.dispatch('month_partitioned_config', 'collab_benefits')()) }}{% endmacro %}
{% macro duckdb__month_partitioned_config() -%}
    {{ return({'incremental_strategy': 'delete+insert', 'unique_key': 'period_month',
               'on_schema_change': 'sync_all_columns'}) }}
{%- endmacro %}
{% macro spark__month_partitioned_config() -%}
    {{ return({'incremental_strategy': 'insert_overwrite', 'partition_by': ['period_month'], 'file_format': 'parquet',
               'on_schema_change': 'sync_all_columns'}) }}
{%- endmacro %}
{% macro default__month_partitioned_config() %}{{ engine_not_supported('month_partitioned_config') }}{% endmacro %}

{#- A CTE hint: inline it where it is read (DuckDB would otherwise materialise a CTE read twice; Spark always
    inlines, and has no such keyword). Use as `with name as {{ not_materialized() }} (`. -#}
{% macro not_materialized() %}{{ return(adapter.dispatch('not_materialized', 'collab_benefits')()) }}{% endmacro %}
{% macro duckdb__not_materialized() -%}
    not materialized
{%- endmacro %}
{% macro spark__not_materialized() -%}
{%- endmacro %}
{% macro default__not_materialized() %}{{ engine_not_supported('not_materialized') }}{% endmacro %}
