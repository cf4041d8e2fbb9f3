{#- acute_long_stay's file-load register (macros/feeds.sql: stg_file_loads). -#}
{{ stg_file_loads('acute_long_stay') }}
