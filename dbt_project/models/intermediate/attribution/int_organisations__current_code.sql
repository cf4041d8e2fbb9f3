{#-
    Every organisation code mapped to the code that carries its history today (SPEC §5 rule 1). Successions are
    followed through chains (A merged into B, B later into C: A → C), for up to max_steps steps: the chain is
    unrolled as that many joins (neither engine's recursion is needed), so a loop in the successions file ends
    there instead of hanging the build; the dbt test on this model reports it.
-#}
{%- set max_steps = 20 %}
with organisations as (
    select * from {{ ref('stg_reference__organisations') }}
),

successions as (
    select * from {{ ref('stg_reference__successions') }}
),

-- one row per path through the successions (a code with two successors has two), step k's code in step_k
succession_paths as (
    select
        organisations.org_code,
        {%- for step in range(1, max_steps + 1) %}
            step_{{ step }}.successor_org_code as step_{{ step }}_code{% if not loop.last %},{% endif %}
        {%- endfor %}
    from organisations
    {%- for step in range(1, max_steps + 1) %}
        left join successions as step_{{ step }}
            on {% if loop.first %}organisations.org_code{% else %}step_{{ step - 1 }}.successor_org_code{% endif %}
            = step_{{ step }}.predecessor_org_code
    {%- endfor %}
),

path_ends as (
    select
        org_code,
        coalesce(
            {%- for step in range(max_steps, 0, -1) %}
                step_{{ step }}_code,
            {%- endfor %}
            org_code
        ) as current_org_code,
        case
            {%- for step in range(max_steps, 0, -1) %}
                when step_{{ step }}_code is not null then {{ step }}
            {%- endfor %}
            else 0
        end as steps
    from succession_paths
)

select
    org_code,
    {{ value_at_max('current_org_code', 'steps') }} as current_org_code,
    max(steps) as succession_steps
from path_ends
group by org_code
