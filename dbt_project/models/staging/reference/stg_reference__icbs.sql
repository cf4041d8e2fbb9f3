{#-
    The ICB seed typed and trimmed, plus current_icb_code: the ICB that carries a closed ICB's area today, followed
    through icb_successions.csv when each step has a single successor. It is derived here rather than in an
    intermediate model so that every reader of ICBs (dim_organisation, the RTT geography marts) gets it from the
    one ICB model; it reads nothing but the two ICB seeds.
-#}
with recursive icbs as (
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

succession_chain (icb_code, current_icb_code, steps) as (
    select
        upper(trim(icb_code)),
        upper(trim(icb_code)),
        0
    from icbs

    union all

    select
        succession_chain.icb_code,
        successors_per_icb.successor_icb_code,
        succession_chain.steps + 1
    from succession_chain
    inner join successors_per_icb
        on succession_chain.current_icb_code = successors_per_icb.predecessor_icb_code
    -- a split has no single successor to follow; a loop in the seed must not hang the build
    where successors_per_icb.successor_count = 1
        and succession_chain.steps < 20
),

chain_ends as (
    select
        icb_code,
        arg_max(current_icb_code, steps) as last_icb_code
    from succession_chain
    group by icb_code
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
