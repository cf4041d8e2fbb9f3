{#-
    The one folder of engine-specific SQL (issue 15): every expression that only one engine speaks is a macro
    here, dispatched on the adapter (duckdb__ today's DuckDB SQL, spark__ the Spark 3.5 SQL that gives the same
    values), so the models are written once. tests/test_engine_lint.py fails on DuckDB-only SQL anywhere else.
    A third engine gets a clear error naming the engine and the macro, never silently wrong SQL.
-#}
{% macro engine_not_supported(macro_name) -%}
    {{ exceptions.raise_compiler_error(
        "collab_benefits: macro " ~ macro_name ~ " has no implementation for the " ~ adapter.type()
        ~ " engine (dbt_project/macros/engine/; supported: duckdb, spark)"
    ) }}
{%- endmacro %}
