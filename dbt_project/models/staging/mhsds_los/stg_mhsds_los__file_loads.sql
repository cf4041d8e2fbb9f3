{#- mhsds_los's file-load register (macros/feeds.sql: stg_file_loads). -#}
{{ stg_file_loads('mhsds_los') }}
