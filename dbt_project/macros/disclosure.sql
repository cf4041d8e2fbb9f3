{#-
    Disclosure control (SPEC §9): a count derived from patient-level data that lies between 1 and 4 is
    suppressed (NULL) in anything that can reach the serving database. Zero is not disclosive and is kept.
-#}
{% macro suppress_small_count(expression) -%}
    case when {{ expression }} between 1 and 4 then null else {{ expression }} end
{%- endmacro %}

{% macro is_small_count(expression) -%}
    coalesce({{ expression }} between 1 and 4, false)
{%- endmacro %}
