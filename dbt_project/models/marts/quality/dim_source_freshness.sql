{#-
    One row per feed: the latest month it holds, when it was last loaded, how many months were replaced by a
    revision, and the share of its published values that are suppressed.
-#}
{%- set feeds = feed_file_loads() %}
with loads as (
    {%- for name, relation in feeds %}
        select
            '{{ name }}' as source,
            period_month,
            action,
            is_current,
            loaded_at
        from {{ relation }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

oap_suppression as (
    select
        'oap' as source,
        avg(case when is_suppressed then cast(1 as double) else cast(0 as double) end) as suppressed_share
    from {{ ref('stg_oap__monthly_statistics') }}
),

mhsds_los_suppression as (
    select
        'mhsds_los' as source,
        avg(case when is_suppressed then cast(1 as double) else cast(0 as double) end) as suppressed_share
    from {{ ref('stg_mhsds_los__monthly_statistics') }}
),

los_suppression as (
    select
        case setting when 'acute' then 'los_acute' else 'los_mh' end as source,
        avg(case when is_suppressed then cast(1 as double) else cast(0 as double) end) as suppressed_share
    from {{ ref('fct_los_provider_month') }}
    group by setting
),

suppression as (
    select * from oap_suppression
    union all
    select * from mhsds_los_suppression
    union all
    select * from los_suppression
),

freshness as (
    select
        source,
        max(period_month) filter (where is_current) as latest_period,
        max(loaded_at) as loaded_at,
        count(*) filter (where action = 'replaced') as revisions,
        count(distinct period_month) filter (where is_current) as months_held
    from loads
    group by source
)

select
    freshness.source,
    freshness.latest_period,
    freshness.loaded_at,
    freshness.revisions,
    coalesce(suppression.suppressed_share, 0) as suppressed_share,
    freshness.months_held
from freshness
left join suppression
    on freshness.source = suppression.source
