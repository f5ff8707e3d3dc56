{#- Geography levels of the marts: (level, code column, name expression) over
    int_registered_population. Every level partitions the registered population; a person whose
    area is not known falls in area 'unknown', so each level's denominators add up to the city's. -#}
{% macro geography_levels() -%}
    {{ return([
        {'level': 'city', 'code': "'" ~ var('city_code') ~ "'", 'name': "'" ~ var('city_name') ~ "'"},
        {'level': 'pcn', 'code': 'pcn_code', 'name': 'pcn_name'},
        {'level': 'practice', 'code': 'practice_code', 'name': 'practice_name'},
        {'level': 'ward', 'code': 'ward_code', 'name': 'ward_name'},
        {'level': 'msoa11', 'code': 'msoa11_code', 'name': 'msoa11_name'},
        {'level': 'lsoa21', 'code': 'lsoa21_code', 'name': 'lsoa21_name'},
        {'level': 'imd_quintile', 'code': 'cast(imd_quintile as ' ~ dbt.type_string() ~ ')',
         'name': "case imd_quintile when 1 then '1 (most deprived)' when 5 then '5 (least deprived)' else cast(imd_quintile as " ~ dbt.type_string() ~ ") end"},
        {'level': 'imd_decile', 'code': 'cast(imd_decile as ' ~ dbt.type_string() ~ ')',
         'name': "case imd_decile when 1 then '1 (most deprived)' when 10 then '10 (least deprived)' else cast(imd_decile as " ~ dbt.type_string() ~ ") end"},
        {'level': 'age_band', 'code': 'age_band', 'name': 'age_band'},
        {'level': 'sex', 'code': 'sex', 'name': "case sex when 'F' then 'Female' when 'M' then 'Male' end"},
        {'level': 'ethnic_group', 'code': 'ethnic_group', 'name': 'ethnic_group_name'},
    ]) }}
{%- endmacro %}
