{#
    Completed pathways: Part_1A (admitted) plus Part_1B (non-admitted). A trust that completed no pathway of one
    kind publishes no rows of that part (a mental health trust with no admitted RTT activity publishes Part_1B
    only): its missing part counts as none, so its clock stops are the other part's. Null only when neither part
    was published.
#}
{% macro rtt_clock_stops(admitted, non_admitted) -%}
    case
        when {{ admitted }} is not null or {{ non_admitted }} is not null
            then coalesce({{ admitted }}, 0) + coalesce({{ non_admitted }}, 0)
    end
{%- endmacro %}
