{#-
    The flagged rows (warning-severity file rules) of every month's current load, per feed: a month replaced by a
    revision keeps only its revision's flags. RTT rows also carry the trust they belong to (the provider mapped
    through successions), so the figures they touch can carry the flag.
-#}
{%- set feeds = feed_file_loads() %}
with row_flags as (
    select * from {{ ref('stg_audit__row_flags') }}
),

current_loads as (
    {%- for name, relation in feeds %}
        select
            '{{ name }}' as source,
            period_month,
            sha256
        from {{ relation }}
        where is_current
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

current_codes as (
    select * from {{ ref('int_organisations__current_code') }}
),

current_flags as (
    select distinct
        row_flags.source,
        row_flags.period_month,
        row_flags.source_file,
        row_flags.source_row,
        row_flags.rule,
        row_flags.row_count
    from row_flags
    inner join current_loads
        on row_flags.source = current_loads.source
        and row_flags.period_month = current_loads.period_month
        and row_flags.sha256 = current_loads.sha256
),

-- the flagged RTT rows' providers, reading only the months that have flags (not the whole raw layer)
rtt_rows as (
    select
        source_file,
        source_row,
        provider_org_code
    from {{ ref('stg_rtt__full_extract') }}
    where
        period_month in (
            select current_flags.period_month from current_flags
            where current_flags.source = 'rtt'
        )
)

select
    current_flags.source,
    current_flags.period_month,
    current_flags.source_file,
    current_flags.source_row,
    current_flags.rule,
    current_flags.row_count,
    coalesce(current_codes.current_org_code, rtt_rows.provider_org_code) as org_code
from current_flags
left join rtt_rows
    on current_flags.source = 'rtt'
    and current_flags.source_file = rtt_rows.source_file
    and current_flags.source_row = rtt_rows.source_row
left join current_codes
    on rtt_rows.provider_org_code = current_codes.org_code
