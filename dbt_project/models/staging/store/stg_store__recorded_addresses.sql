-- Every linked record that recorded an address in the city, with the date it was seen on and the
-- areas of that address as derived in the identifiable zone: the evidence that places people
-- (int_person_areas). The tables and their dates are the address_evidence var.
{% for evidence in ldm_address_evidence() %}
    select
        person_id,
        '{{ evidence.feed }}' as feed,
        {{ evidence.seen_on }} as seen_on,
        batch_id,
        row_number as source_row_number,
        lsoa21_code,
        lsoa11_code,
        msoa11_code,
        ward_code,
        imd_decile,
        imd_quintile
    from {{ source('store', evidence.table) }}
    where person_id is not null and lsoa21_code is not null and {{ evidence.seen_on }} is not null
    {% if not loop.last %}union all{% endif %}
{% endfor %}
