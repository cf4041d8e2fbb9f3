{#-
    The ICB seed typed and trimmed, plus current_icb_code: the ICB that carries a closed ICB's area today, followed
    through icb_successions.csv when each step has a single successor (for up to max_steps steps). It is derived
    here rather than in an intermediate model so that every reader of ICBs (dim_organisation, the RTT geography
    marts) gets it from the one ICB model; it reads nothing but the two ICB seeds.
-#}
{%- set max_steps = 20 %}
with icbs as (
    select * from {{ ref('icbs') }}
),

icb_successions as (
    select
        upper(trim(predecessor_icb_code)) as predecessor_icb_code,
        upper(trim(successor_icb_code)) as successor_icb_code
    from {{ ref('icb_successions') }}
),

successors_per_icb as (
    select
        predecessor_icb_code,
        min(successor_icb_code) as successor_icb_code,
        count(distinct successor_icb_code) as successor_count
    from icb_successions
    group by predecessor_icb_code
),

-- a split has no single successor to follow
single_successors as (
    select * from successors_per_icb
    where successor_count = 1
),

-- the chain unrolled as max_steps joins (neither engine's recursion is needed): a loop in the seed ends there
succession_chain as (
    select
        upper(trim(icbs.icb_code)) as icb_code,
        coalesce(
            {%- for step in range(max_steps, 0, -1) %}
                step_{{ step }}.successor_icb_code,
            {%- endfor %}
            upper(trim(icbs.icb_code))
        ) as last_icb_code
    from icbs
    {%- for step in range(1, max_steps + 1) %}
        left join single_successors as step_{{ step }}
            on {% if loop.first %}upper(trim(icbs.icb_code)){% else %}step_{{ step - 1 }}.successor_icb_code{% endif %}
            = step_{{ step }}.predecessor_icb_code
    {%- endfor %}
),

chain_ends as (
    select distinct
        icb_code,
        last_icb_code
    from succession_chain
),

current_codes as (
    select
        chain_ends.icb_code,
        -- the chain stopped at an ICB that was split: no single ICB carries it today
        case when successors_per_icb.predecessor_icb_code is null then chain_ends.last_icb_code end
            as current_icb_code
    from chain_ends
    left join successors_per_icb
        on chain_ends.last_icb_code = successors_per_icb.predecessor_icb_code
)

select
    upper(trim(icbs.icb_code)) as icb_code,
    trim(icbs.icb_name) as icb_name,
    upper(trim(icbs.region_code)) as region_code,
    trim(icbs.region_name) as region_name,
    cast(icbs.open_date as date) as open_date,
    cast(icbs.close_date as date) as close_date,
    current_codes.current_icb_code
from icbs
left join current_codes
    on upper(trim(icbs.icb_code)) = current_codes.icb_code
