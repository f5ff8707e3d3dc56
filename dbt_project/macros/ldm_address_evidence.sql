{#- The store tables whose records carry an address, and each record's date (the address_evidence
    var; governance/residence.md). A macro, so that sqlfluff can stand in for the var. -#}
{% macro ldm_address_evidence() -%}
    {{ return(var('address_evidence')) }}
{%- endmacro %}
