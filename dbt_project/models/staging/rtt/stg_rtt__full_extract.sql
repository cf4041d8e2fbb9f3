{#- Typed and renamed RTT rows. Blank cells mean none (SPEC §3.1), so counts become 0 here. -#}
with full_extract as (
    select * from {{ source('rtt', 'full_extract') }}
)

select
    period_month,
    source_file,
    source_row,
    band_layout,
    upper(trim(provider_org_code)) as provider_org_code,
    trim(provider_org_name) as provider_org_name,
    upper(trim(provider_parent_org_code)) as provider_parent_org_code,
    trim(provider_parent_name) as provider_parent_name,
    upper(trim(commissioner_org_code)) as commissioner_org_code,
    trim(commissioner_org_name) as commissioner_org_name,
    upper(trim(commissioner_parent_org_code)) as commissioner_parent_org_code,
    trim(commissioner_parent_name) as commissioner_parent_name,
    upper(trim(commissioner_org_code)) = 'NONC' as is_non_english_commissioner,
    trim(rtt_part_type) as rtt_part_type,
    upper(trim(treatment_function_code)) as treatment_function_code,
    trim(treatment_function_name) as treatment_function_name,
    upper(trim(treatment_function_code)) = 'C_999' as is_total_row,
    {%- for column in rtt_band_columns() %}
        coalesce({{ column }}, 0) as {{ column }},
    {%- endfor %}
    coalesce(total, 0) as total,
    coalesce(patients_with_unknown_clock_start_date, 0) as patients_with_unknown_clock_start_date,
    coalesce(total_all, 0) as total_all
from full_extract
