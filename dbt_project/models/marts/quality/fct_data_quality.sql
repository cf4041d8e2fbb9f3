{#-
    How far the data can be trusted, check by check (SPEC §8): every file-contract validation of a loaded
    partition, every rule a quarantined file broke, the rows of patient-level feeds that were loaded but
    left out of the measures, the rows that warning-severity rules flagged in files loaded all the same, and each mart's GX suite before publishing. One row per run, source, month and
    check. For the marts, the latest result of each (with the run that first found it): the mart checks run
    after this model is built, so orchestration/quality.py writes a changed result into the built table too.
-#}
{%- set feeds = feed_file_loads() %}
with contract_checks as (
    select * from {{ ref('stg_audit__contract_checks') }}
),

-- which file each validated SHA-256 was (a month can have two files in one run: OAP's Provisional and Performance)
file_names as (
    {%- for name, relation in feeds %}
        select distinct
            '{{ name }}' as source,
            sha256,
            source_file
        from {{ relation }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

rejections as (
    select * from {{ ref('stg_audit__file_rejections') }}
),

mart_checks as (
    select * from {{ ref('stg_audit__mart_checks') }}
),

mart_checks_with_latest_run as (
    select
        *,
        first_value(run_id) over (partition by mart order by checked_at desc) as latest_run_id
    from mart_checks
),

latest_mart_checks as (
    select * from mart_checks_with_latest_run
    where run_id = latest_run_id
),

row_problems as (
    select
        'los_acute' as source,
        period_month,
        row_problem,
        source_file
    from {{ ref('stg_los_acute__apc_episodes') }}
    where row_problem is not null
    union all
    select
        'los_mh' as source,
        period_month,
        row_problem,
        source_file
    from {{ ref('stg_los_mh__hospital_spells') }}
    where row_problem is not null
    union all
    select
        'los_mh' as source,
        period_month,
        row_problem,
        source_file
    from {{ ref('stg_los_mh__ward_stays') }}
    where row_problem is not null
),

contract_rows as (
    select
        contract_checks.run_id,
        contract_checks.checked_at as run_at,
        contract_checks.source,
        contract_checks.period_month,
        'file_contract' as check_name,
        (
            select min(file_names.source_file) from file_names
            where file_names.source = contract_checks.source and file_names.sha256 = contract_checks.sha256
        ) as source_file,
        contract_checks.passed as success,
        cast(contract_checks.violations as double) as observed_value,
        'partition validated against expectations/ suite (file SHA-256 ' || left(contract_checks.sha256, 12) || '…)'
            as details
    from contract_checks
),

rejection_rows as (
    select
        run_id,
        min(rejected_at) as run_at,
        source,
        period_month,
        'rejected_file:' || rule as check_name,
        source_file,
        false as success,
        cast(count(*) as double) as observed_value,
        -- a patient-level file's message can quote a spell's dates or identifiers: served here are only the
        -- file, row, column and rule (the quarantine's reason file, beside the build database, has the rest)
        source_file || ': ' || min(
            coalesce('row ' || source_row || ', ', '') || coalesce('column ' || source_column || ': ', '')
            || case
                when source in {{ patient_level_sources() }}
                    then 'broke rule ' || rule || ' (values withheld: patient-level data)'
                else message
            end
        ) || ' (quarantined to ' || min(quarantined_to) || ')' as details
    from rejections
    group by run_id, source, source_file, period_month, rule
),

row_problem_rows as (
    select
        cast(null as string) as run_id,
        cast(null as timestamp) as run_at,
        source,
        period_month,
        'row_left_out:' || row_problem as check_name,
        min(source_file) as source_file,
        false as success,
        cast(count(*) as double) as observed_value,
        'rows loaded, flagged and left out of the measures in ' || min(source_file) as details
    from row_problems
    group by source, period_month, row_problem
),

row_flag_rows as (
    select
        cast(null as string) as run_id,
        cast(null as timestamp) as run_at,
        source,
        period_month,
        'row_flagged:' || rule as check_name,
        min(source_file) as source_file,
        false as success,
        cast(count(distinct source_row) + coalesce(sum(case when source_row is null then row_count end), 0) as double)
            as observed_value,
        'rows loaded and flagged (a warning: the publication is genuine, these rows disagree with its own rules) in '
        || min(source_file)
        || coalesce('; trusts touched: ' || {{ ordered_string_agg('org_code', "', '", distinct=true) }}, '') as details
    from {{ ref('int_quality__current_row_flags') }}
    group by source, period_month, rule
),

mart_check_rows as (
    select
        run_id,
        checked_at as run_at,
        mart as source,
        cast(null as date) as period_month,
        check_name,
        cast(null as string) as source_file,
        success,
        observed_value,
        details
    from latest_mart_checks
)

select * from contract_rows
union all
select * from rejection_rows
union all
select * from row_problem_rows
union all
select * from row_flag_rows
union all
select * from mart_check_rows
