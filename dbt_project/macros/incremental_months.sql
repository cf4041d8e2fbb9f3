{#-
    Month-partitioned incremental models (SPEC §2 "cost grows with new data", §12).

    A month-partitioned model keeps, on every row, the `source_version` of its month: a hash of what the month's
    figures were built from (the current raw file load, the successions mapping, the model's own SQL and the
    project's macros). A monthly run rebuilds only the months whose version changed (a new month, a revised
    file, an edited successions seed, a changed model or macro) and replaces them whole (macros/engine:
    month_partitioned_config, delete+insert on period_month in DuckDB, insert_overwrite of the month's partition in
    Spark); every other month is left as it is. `dbt build --full-refresh` rebuilds everything, and gives
    the same tables.
-#}

{#-
    `expression` (text) combined with this model's SQL checksum and the fingerprint of the project's macros
    (passed by the orchestration as var macros_fingerprint): the version a row of this model carries. dbt's
    checksum of a model does not cover the macros it calls, so without the fingerprint an edited macro would
    leave every month built the old way.
-#}
{% macro month_source_version(expression) -%}
    md5(concat_ws('/', {{ expression }}, '{{ model.checksum.checksum if model.checksum is defined else "" }}',
        '{{ var("macros_fingerprint", "") }}'))
{%- endmacro %}

{#-
    The months this model must (re)build, as ISO dates: every month of `upstream_versions` (a query yielding
    period_month and upstream_version) whose version, passed through month_source_version, is not the one the
    model holds. Empty on a first build or a full refresh, where the caller builds every month anyway.
-#}
{% macro months_to_rebuild(upstream_versions) -%}
    {%- if not execute or not is_incremental() -%}
        {{- return([]) -}}
    {%- endif -%}
    {#- a table built before the model was incremental holds no versions: every month is rebuilt once -#}
    {%- set versioned = 'source_version' in (adapter.get_columns_in_relation(this) | map(attribute='name') | list) -%}
    {%- set query -%}
        with wanted as (
            select distinct period_month, {{ month_source_version('upstream_version') }} as source_version
            from ({{ upstream_versions }}) as upstream
        ),

        held as (
            {%- if versioned %}
            select distinct period_month, source_version from {{ this }}
            {%- else %}
            select cast(null as date) as period_month, cast(null as string) as source_version
            {%- endif %}
        )

        select cast(wanted.period_month as string) as period_month
        from wanted
        left join held
            on wanted.period_month = held.period_month
            and wanted.source_version = held.source_version
        where held.period_month is null
        order by 1
    {%- endset -%}
    {{- return(run_query(query).columns[0].values() | list) -}}
{%- endmacro %}

{#- A filter on period_month to the months given, as date literals (so DuckDB prunes row groups by month). -#}
{% macro period_month_in(months, column='period_month') -%}
    {{ column }} in (
        {%- for month in months %}date '{{ month }}'{% if not loop.last %}, {% endif %}{% else %}null{% endfor -%}
    )
{%- endmacro %}

{#- The version of each RTT month's raw figures: its current file load and the successions mapping. -#}
{% macro rtt_raw_month_versions() -%}
    select
        file_loads.period_month,
        concat_ws('/', cast(file_loads.load_id as string), file_loads.sha256, mapping.fingerprint) as upstream_version
    from {{ ref('stg_rtt__file_loads') }} as file_loads
    cross join (
        select md5(coalesce({{ ordered_string_agg("org_code || '>' || current_org_code", "','", 'org_code') }}, ''))
            as fingerprint
        from {{ ref('int_organisations__current_code') }}
    ) as mapping
    where file_loads.is_current
{%- endmacro %}
