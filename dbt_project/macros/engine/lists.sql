{#- Lists (DuckDB LIST, Spark ARRAY). Positions are 1-based on both engines, as here. -#}

{#- A list of the given SQL expressions (a Jinja list of strings), in order. -#}
{% macro list_of(items) %}{{ return(adapter.dispatch('list_of', 'collab_benefits')(items)) }}{% endmacro %}
{% macro duckdb__list_of(items) -%}
    list_value({{ items | join(', ') }})
{%- endmacro %}
{% macro spark__list_of(items) -%}
    array({{ items | join(', ') }})
{%- endmacro %}
{% macro default__list_of(items) %}{{ engine_not_supported('list_of') }}{% endmacro %}

{#- An empty list of strings (to coalesce a missing list to). -#}
{% macro empty_string_list() %}{{ return(adapter.dispatch('empty_string_list', 'collab_benefits')()) }}{% endmacro %}
{% macro duckdb__empty_string_list() -%}
    []
{%- endmacro %}
{% macro spark__empty_string_list() -%}
    cast(array() as array<string>)
{%- endmacro %}
{% macro default__empty_string_list() %}{{ engine_not_supported('empty_string_list') }}{% endmacro %}

{#- Aggregate: the distinct non-NULL values of `expression` in the group, sorted. -#}
{% macro sorted_distinct_list(expression) %}{{ return(adapter.dispatch('sorted_distinct_list', 'collab_benefits')(expression)) }}{% endmacro %}
{% macro duckdb__sorted_distinct_list(expression) -%}
    list_sort(list_distinct(list({{ expression }})))
{%- endmacro %}
{% macro spark__sorted_distinct_list(expression) -%}
    array_sort(collect_set({{ expression }}))
{%- endmacro %}
{% macro default__sorted_distinct_list(expression) %}{{ engine_not_supported('sorted_distinct_list') }}{% endmacro %}

{#- Aggregate: the distinct non-NULL elements of the group's lists (`expression` is a list), sorted. -#}
{% macro sorted_distinct_list_union(expression) %}{{ return(adapter.dispatch('sorted_distinct_list_union', 'collab_benefits')(expression)) }}{% endmacro %}
{% macro duckdb__sorted_distinct_list_union(expression) -%}
    list_sort(list_distinct(flatten(list({{ expression }}))))
{%- endmacro %}
{% macro spark__sorted_distinct_list_union(expression) -%}
    array_sort(array_distinct(filter(flatten(collect_list({{ expression }})), element -> element is not null)))
{%- endmacro %}
{% macro default__sorted_distinct_list_union(expression) %}{{ engine_not_supported('sorted_distinct_list_union') }}{% endmacro %}

{#- Aggregate: every value of `expression` (NULLs included, duplicates kept) of the rows where `condition`
    holds, sorted (NULLs last); an empty list when there are none. -#}
{% macro sorted_list_where(expression, condition) %}{{ return(adapter.dispatch('sorted_list_where', 'collab_benefits')(expression, condition)) }}{% endmacro %}
{% macro duckdb__sorted_list_where(expression, condition) -%}
    coalesce(list_sort(list({{ expression }}) filter (where {{ condition }})), [])
{%- endmacro %}
{% macro spark__sorted_list_where(expression, condition) -%}
    transform(
        array_sort(collect_list(named_struct('is_null', {{ expression }} is null, 'v', {{ expression }}))
            filter (where {{ condition }})),
        element -> element.v
    )
{%- endmacro %}
{% macro default__sorted_list_where(expression, condition) %}{{ engine_not_supported('sorted_list_where') }}{% endmacro %}

{#- The last element of a list (NULL for an empty or NULL list). -#}
{% macro list_last(list) %}{{ return(adapter.dispatch('list_last', 'collab_benefits')(list)) }}{% endmacro %}
{% macro duckdb__list_last(list) -%}
    {{ list }}[-1]
{%- endmacro %}
{% macro spark__list_last(list) -%}
    element_at({{ list }}, -1)
{%- endmacro %}
{% macro default__list_last(list) %}{{ engine_not_supported('list_last') }}{% endmacro %}

{#- Element `position` (1-based) of a list; NULL when position is below 1 or past the end. -#}
{% macro list_element(list, position) %}{{ return(adapter.dispatch('list_element', 'collab_benefits')(list, position)) }}{% endmacro %}
{% macro duckdb__list_element(list, position) -%}
    {{ list }}[{{ position }}]
{%- endmacro %}
{% macro spark__list_element(list, position) -%}
    case when {{ position }} >= 1 then element_at({{ list }}, cast({{ position }} as int)) end
{%- endmacro %}
{% macro default__list_element(list, position) %}{{ engine_not_supported('list_element') }}{% endmacro %}

{% macro list_length(list) %}{{ return(adapter.dispatch('list_length', 'collab_benefits')(list)) }}{% endmacro %}
{% macro duckdb__list_length(list) -%}
    len({{ list }})
{%- endmacro %}
{% macro spark__list_length(list) -%}
    size({{ list }})
{%- endmacro %}
{% macro default__list_length(list) %}{{ engine_not_supported('list_length') }}{% endmacro %}

{#- True when the list holds the value (NULL when the list is NULL). -#}
{% macro list_has(list, value) %}{{ return(adapter.dispatch('list_has', 'collab_benefits')(list, value)) }}{% endmacro %}
{% macro duckdb__list_has(list, value) -%}
    list_contains({{ list }}, {{ value }})
{%- endmacro %}
{% macro spark__list_has(list, value) -%}
    array_contains({{ list }}, {{ value }})
{%- endmacro %}
{% macro default__list_has(list, value) %}{{ engine_not_supported('list_has') }}{% endmacro %}

{#- The list's elements joined into one string with `separator` (a SQL string literal). -#}
{% macro list_join(list, separator) %}{{ return(adapter.dispatch('list_join', 'collab_benefits')(list, separator)) }}{% endmacro %}
{% macro duckdb__list_join(list, separator) -%}
    array_to_string({{ list }}, {{ separator }})
{%- endmacro %}
{% macro spark__list_join(list, separator) -%}
    array_join({{ list }}, {{ separator }})
{%- endmacro %}
{% macro default__list_join(list, separator) %}{{ engine_not_supported('list_join') }}{% endmacro %}

{#- `expression` applied to every element of the list, the element named `element` in it. -#}
{% macro list_map(list, element, expression) %}{{ return(adapter.dispatch('list_map', 'collab_benefits')(list, element, expression)) }}{% endmacro %}
{% macro duckdb__list_map(list, element, expression) -%}
    list_transform({{ list }}, {{ element }} -> {{ expression }})
{%- endmacro %}
{% macro spark__list_map(list, element, expression) -%}
    transform({{ list }}, {{ element }} -> {{ expression }})
{%- endmacro %}
{% macro default__list_map(list, element, expression) %}{{ engine_not_supported('list_map') }}{% endmacro %}

{#- A string split on a literal one-character separator (given without quotes) into a list of strings. -#}
{% macro split_to_list(text, separator) %}{{ return(adapter.dispatch('split_to_list', 'collab_benefits')(text, separator)) }}{% endmacro %}
{% macro duckdb__split_to_list(text, separator) -%}
    string_split({{ text }}, '{{ separator }}')
{%- endmacro %}
{% macro spark__split_to_list(text, separator) -%}
    split({{ text }}, '\\Q{{ separator }}\\E')
{%- endmacro %}
{% macro default__split_to_list(text, separator) %}{{ engine_not_supported('split_to_list') }}{% endmacro %}

{#- Running totals of a list of counts: element k is the sum of elements 1 to k, NULLs skipped (NULL while
    every element so far is NULL, as DuckDB's list_sum gives). -#}
{% macro list_running_sum(list) %}{{ return(adapter.dispatch('list_running_sum', 'collab_benefits')(list)) }}{% endmacro %}
{% macro duckdb__list_running_sum(list) -%}
    list_transform({{ list }}, (count_in_band, band) -> list_sum({{ list }}[1:band]))
{%- endmacro %}
{% macro spark__list_running_sum(list) -%}
    {#- transform's index is 0-based: element i covers elements 1 to i + 1 -#}
    transform({{ list }}, (count_in_band, band) -> aggregate(
        slice({{ list }}, 1, band + 1),
        cast(null as bigint),
        (running, element) -> case when element is null then running else coalesce(running, 0) + element end
    ))
{%- endmacro %}
{% macro default__list_running_sum(list) %}{{ engine_not_supported('list_running_sum') }}{% endmacro %}

{#- The 1-based position of the first element for which `condition` (over `element`) is true; NULL if none. -#}
{% macro list_first_position_where(list, element, condition) %}{{ return(adapter.dispatch('list_first_position_where', 'collab_benefits')(list, element, condition)) }}{% endmacro %}
{% macro duckdb__list_first_position_where(list, element, condition) -%}
    list_position(list_transform({{ list }}, {{ element }} -> {{ condition }}), true)
{%- endmacro %}
{% macro spark__list_first_position_where(list, element, condition) -%}
    nullif(array_position(transform({{ list }}, {{ element }} -> {{ condition }}), true), 0)
{%- endmacro %}
{% macro default__list_first_position_where(list, element, condition) %}{{ engine_not_supported('list_first_position_where') }}{% endmacro %}

{#- In the select list: one output row per element of the list (the list's other columns repeated). -#}
{% macro unnest_list(list) %}{{ return(adapter.dispatch('unnest_list', 'collab_benefits')(list)) }}{% endmacro %}
{% macro duckdb__unnest_list(list) -%}
    unnest({{ list }})
{%- endmacro %}
{% macro spark__unnest_list(list) -%}
    explode({{ list }})
{%- endmacro %}
{% macro default__unnest_list(list) %}{{ engine_not_supported('unnest_list') }}{% endmacro %}
