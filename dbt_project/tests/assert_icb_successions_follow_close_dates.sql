{#-
    icbs.csv and icb_successions.csv tell one story: an ICB's successors take over the day after it closes, and a
    closed ICB has at least one successor. A PMO who records a merger in one file and not the other is told here.
-#}
with icbs as (
    select * from {{ ref('stg_reference__icbs') }}
),

successions as (
    select * from {{ ref('stg_reference__icb_successions') }}
),

succession_without_close as (
    select
        successions.predecessor_icb_code as icb_code,
        'succeeded on ' || cast(successions.effective_date as string) || ' but close_date is '
        || coalesce(cast(icbs.close_date as string), 'blank') as problem
    from successions
    inner join icbs
        on successions.predecessor_icb_code = icbs.icb_code
    where icbs.close_date is null
        or cast({{ dbt.dateadd('day', 1, 'icbs.close_date') }} as date) != successions.effective_date
),

closed_without_successor as (
    select
        icbs.icb_code,
        'closed on ' || cast(icbs.close_date as string) || ' with no row in icb_successions.csv' as problem
    from icbs
    where icbs.close_date is not null
        and icbs.icb_code not in (select predecessor_icb_code from successions)
)

select * from succession_without_close
union all
select * from closed_without_successor
