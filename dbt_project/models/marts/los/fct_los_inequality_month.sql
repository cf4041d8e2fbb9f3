{#-
    Lengths of stay per trust, setting, month of discharge and deprivation quintile (IMD quintile 1 = most
    deprived; 'unknown' where the decile is missing): every quintile of every trust-month, zeros included, with
    the disclosure control of the trust totals (macros/disclosure.sql) and complementary suppression, because
    the trust's total discharges are served too (fct_los_provider_month): the total minus the quintiles shown
    never isolates a suppressed quintile.
-#}
with spells as (
    select * from {{ ref('int_los__discharged_spells') }}
),

quintiles as (
    select imd_quintile
    -- both engines need the alias of a derived table, though nothing refers to it
    from (values ('1'), ('2'), ('3'), ('4'), ('5'), ('unknown')) as quintile_values (imd_quintile)  -- noqa: AL05
),

totals as (
    select
        discharge_month as period_month,
        org_code,
        setting,
        count(*) as total_n
    from spells
    group by discharge_month, org_code, setting
),

measured as (
    select
        discharge_month as period_month,
        org_code,
        setting,
        coalesce(cast(imd_quintile as string), 'unknown') as imd_quintile,
        {{ los_measures() }}
    from spells
    group by discharge_month, org_code, setting, coalesce(cast(imd_quintile as string), 'unknown')
),

cells as (
    select
        totals.period_month,
        totals.org_code,
        totals.setting,
        quintiles.imd_quintile,
        totals.total_n,
        coalesce(measured.discharges, 0) as n,
        coalesce(measured.bed_days, 0) as bed_days,
        measured.mean_los_days,
        measured.median_los_days
    from totals
    cross join quintiles
    left join measured
        on totals.period_month = measured.period_month
        and totals.org_code = measured.org_code
        and totals.setting = measured.setting
        and quintiles.imd_quintile = measured.imd_quintile
),

controlled as (
    {{ dc_complementary_suppression('cells', ['period_month', 'org_code', 'setting'], 'imd_quintile') }}
)

select
    cells.period_month,
    cells.org_code,
    cells.setting,
    cells.imd_quintile,
    controlled.is_suppressed,
    controlled.suppression_reason,
    case when not controlled.is_suppressed then {{ dc_count('cells.n', 'cells.setting') }} end as discharges,
    -- a mean is shown only where the cell's bed days would be (mean x discharges gives them back)
    case
        when not controlled.is_suppressed and cells.n > 0 and not {{ dc_is_hidden('cells.bed_days', 'cells.setting') }}
            then cells.mean_los_days
    end as mean_los_days,
    case when not controlled.is_suppressed and cells.n > 0 then cells.median_los_days end as median_los_days
from cells
inner join controlled
    on cells.period_month = controlled.period_month
    and cells.org_code = controlled.org_code
    and cells.setting = controlled.setting
    and cells.imd_quintile = controlled.imd_quintile
