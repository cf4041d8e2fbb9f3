{#-
    An open trust in an ICB that has closed means organisations.csv was not updated after the ICB merged (the ODS
    reconciliation says to which ICB). A warning, not an error: the trust's own figures are right, only its ICB
    grouping is out of date, and the run should still publish.
-#}
{{ config(severity='warn') }}

select
    organisations.org_code,
    organisations.icb_code,
    icbs.close_date as icb_close_date,
    icbs.current_icb_code
from {{ ref('stg_reference__organisations') }} as organisations
inner join {{ ref('stg_reference__icbs') }} as icbs
    on organisations.icb_code = icbs.icb_code
where organisations.close_date is null
    and icbs.close_date is not null
