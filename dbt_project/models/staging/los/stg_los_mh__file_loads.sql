{#- los_mh's file-load register (macros/feeds.sql: stg_file_loads). -#}
{{ stg_file_loads('los_mh') }}
