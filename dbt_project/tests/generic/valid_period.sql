{#- Rows whose period ends on or before it starts: a membership from 2023-04-01 to 2023-04-01 is an error. -#}
{% test valid_period(model, from_column, to_column) %}
select *
from {{ model }}
where {{ to_column }} is not null
    and {{ to_column }} <= {{ from_column }}
{% endtest %}
