{#-
    Every organisation code mapped to the code that carries its history today (SPEC §5 rule 1). Successions are
    followed through chains (A merged into B, B later into C: A → C).
-#}
with recursive organisations as (
    select * from {{ ref('stg_reference__organisations') }}
),

successions as (
    select * from {{ ref('stg_reference__successions') }}
),

succession_chain (org_code, current_org_code, steps) as (
    select
        org_code,
        org_code as current_org_code,
        0 as steps
    from organisations

    union all

    select
        succession_chain.org_code,
        successions.successor_org_code,
        succession_chain.steps + 1
    from succession_chain
    inner join successions
        on succession_chain.current_org_code = successions.predecessor_org_code
    -- a loop in the successions file must not hang the build; the dbt test on this model reports it
    where succession_chain.steps < 20
)

select
    org_code,
    arg_max(current_org_code, steps) as current_org_code,
    max(steps) as succession_steps
from succession_chain
group by org_code
