{#-
    RTT waiting-list totals as NHS England publishes them: England, NHS England region and ICB, per month, on the
    two bases an ICB analyst uses:
      - attribution_basis 'provider': the pathways of the trusts in the ICB (Provider Parent Org Code), whoever
        commissions them, so non-English commissioners' (NONC) pathways at those trusts are included;
      - attribution_basis 'commissioner': the ICB's own population (Commissioner Parent Org Code), wherever it is
        treated. NONC and NHS England's commissioning hubs (specialised and national commissioning: no parent
        ICB in the file) are their own 'unassigned' rows.
    England leaves out NONC on both bases (NHS England's RTT guidance: national figures count the pathways of
    English commissioners), so England = the ICBs by commissioner + NHS England's hubs, and = the ICBs by
    provider − their NONC pathways.
    icb_basis 'as_was' takes the ICB each file gives for its month; 'as_is' maps all history to today's ICBs
    (a trust's and a commissioner's ICB in the latest month that names one), so trends are comparable across
    the April 2026 ICB mergers as trusts' are across theirs. Regions come from the ICB reference (seeds).
-#}
with waiting as (
    select * from {{ ref('int_rtt__waiting_list_by_provider_commissioner') }}
),

icbs as (
    select * from {{ ref('stg_reference__icbs') }}
),

provider_icb_today as (
    select
        org_code,
        {{ value_at_max('provider_parent_org_code', 'period_month') }} as icb_code
    from waiting
    where provider_parent_org_code is not null
    group by org_code
),

commissioner_icb_today as (
    select
        commissioner_org_code,
        {{ value_at_max('commissioner_parent_org_code', 'period_month') }} as icb_code
    from waiting
    where commissioner_parent_org_code is not null
    group by commissioner_org_code
),

icb_names_published as (
    select
        icb_code,
        {{ value_at_max('icb_name', 'period_month') }} as icb_name
    from (
        select
            period_month,
            provider_parent_org_code as icb_code,
            provider_parent_name as icb_name
        from waiting
        union all
        select
            period_month,
            commissioner_parent_org_code,
            commissioner_parent_name
        from waiting
    ) as named
    where icb_code is not null and icb_name is not null and icb_name <> ''
    group by icb_code
),

-- each provider-commissioner pair once per basis, with the ICB it counts in
attributed as (
    {%- for basis, column in [
        ('provider', 'provider_parent_org_code'), ('commissioner', 'commissioner_parent_org_code'),
    ] %}
        {%- for icb_basis in ['as_was', 'as_is'] %}
            select
                waiting.*,
                '{{ basis }}' as attribution_basis,
                '{{ icb_basis }}' as icb_basis,
                {%- if icb_basis == 'as_was' %}
                    waiting.{{ column }} as icb_code
                {%- elif basis == 'provider' %}
                    coalesce(provider_icb_today.icb_code, waiting.{{ column }}) as icb_code
                {%- else %}
                    coalesce(commissioner_icb_today.icb_code, waiting.{{ column }}) as icb_code
                {%- endif %}
            from waiting
            {%- if icb_basis == 'as_is' and basis == 'provider' %}
            left join provider_icb_today
                on waiting.org_code = provider_icb_today.org_code
            {%- elif icb_basis == 'as_is' %}
            left join commissioner_icb_today
                on waiting.commissioner_org_code = commissioner_icb_today.commissioner_org_code
            {%- endif %}
    {%- if not loop.last %}
                union all
            {%- endif %}
        {%- endfor %}
    {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

placed as (
    select
        attributed.*,
        icbs.region_code,
        icbs.region_name,
        coalesce(icbs.icb_name, icb_names_published.icb_name) as icb_name
    from attributed
    left join icbs
        on attributed.icb_code = icbs.icb_code
    left join icb_names_published
        on attributed.icb_code = icb_names_published.icb_code
),

levels as (
    select
        *,
        'icb' as geography_level,
        icb_code as geography_code,
        icb_name as geography_name,
        true as includes_non_english_commissioners
    from placed
    where icb_code is not null

    union all

    select
        *,
        'unassigned' as geography_level,
        case when is_non_english_commissioner then 'NONC' else 'NHSE_HUBS' end as geography_code,
        case
            when is_non_english_commissioner then 'Non-English commissioners (NONC)'
            else 'NHS England commissioning hubs (no parent ICB)'
        end as geography_name,
        is_non_english_commissioner as includes_non_english_commissioners
    from placed
    where icb_code is null

    union all

    select
        *,
        'region' as geography_level,
        coalesce(region_code, 'UNKNOWN') as geography_code,
        coalesce(region_name, 'Region not in the ICB reference data') as geography_name,
        true as includes_non_english_commissioners
    from placed
    where icb_code is not null

    union all

    select
        *,
        'england' as geography_level,
        'E92000001' as geography_code,
        'England' as geography_name,
        false as includes_non_english_commissioners
    from placed
    where not is_non_english_commissioner
)

select
    period_month,
    geography_level,
    geography_code,
    {{ any_non_null('geography_name') }} as geography_name,
    attribution_basis,
    icb_basis,
    {{ any_non_null("case when geography_level = 'icb' then region_code end") }} as region_code,
    bool_or(includes_non_english_commissioners) and bool_or(is_non_english_commissioner)
        as includes_non_english_commissioners,
    max(band_layout) as band_layout,
    cast(sum(incomplete_pathways) as bigint) as incomplete_pathways,
    cast(sum(within_18_weeks) as bigint) as within_18_weeks,
    round(100.0 * cast(sum(within_18_weeks) as double) / nullif(sum(incomplete_pathways), 0), 4) as pct_within_18_weeks,
    cast(sum(over_52_weeks) as bigint) as over_52_weeks,
    cast(sum(over_65_weeks) as bigint) as over_65_weeks,
    cast(sum(over_78_weeks) as bigint) as over_78_weeks,
    cast(sum(over_104_weeks) as bigint) as over_104_weeks,
    cast(coalesce(sum(case when is_non_english_commissioner then incomplete_pathways end), 0) as bigint)
        as non_english_commissioner_pathways,
    count(distinct org_code) as provider_count,
    count(distinct commissioner_org_code) as commissioner_count
from levels
group by period_month, geography_level, geography_code, attribution_basis, icb_basis
