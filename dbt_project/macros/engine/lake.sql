{#-
    The raw layer on an engine that cannot read the DuckDB build database (issue 15): the orchestration mirrors
    every source table into Parquet under COLLAB_SPARK_DIR/lake/<schema>/<table> (orchestration/lake.py), and this
    hook (on-run-start) registers each folder as a table of the source's schema and name before anything is built.
    A table is dropped and registered again on every run (dropping an external table leaves its files), so a new
    month's folder or a new column is seen at once. On DuckDB the sources are the build database's own tables.
-#}
{% macro register_lake_sources() -%}
    {{ return(adapter.dispatch('register_lake_sources', 'collab_benefits')()) }}
{%- endmacro %}

{% macro default__register_lake_sources() -%}
{%- endmacro %}

{% macro spark__register_lake_sources() -%}
    {%- if execute -%}
        {%- set lake = env_var('COLLAB_SPARK_DIR', '../warehouse/spark') ~ '/lake' -%}
        {%- set registered = [] -%}
        {#- the sources a model or test reads (the benefits marts are sources of the exposures only) -#}
        {%- set read = [] -%}
        {%- for node in graph.nodes.values() -%}
            {%- for dependency in node.depends_on.nodes if dependency.startswith('source.') -%}
                {%- do read.append(dependency) -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- for source in graph.sources.values() | sort(attribute='unique_id') -%}
            {%- set name = source.schema ~ '.' ~ source.identifier -%}
            {%- if source.unique_id in read and name not in registered -%}
                {%- do registered.append(name) -%}
                {%- do run_query('create database if not exists ' ~ source.schema) -%}
                {%- do run_query('drop table if exists ' ~ name) -%}
                {%- do run_query(
                    'create table ' ~ name ~ " using parquet location '" ~ lake ~ '/' ~ source.schema ~ '/'
                    ~ source.identifier ~ "'"
                ) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do log('Registered ' ~ registered | length ~ ' raw tables from ' ~ lake, info=true) -%}
    {%- endif -%}
{%- endmacro %}
