{#- Two-sided standard normal critical value for a confidence level (e.g. 1.959964 at 0.95), as
    ldm.stats._z computes it. SQL has no inverse normal, so the usual levels are tabulated; any
    other level stops the build rather than guess. -#}
{% macro normal_quantile(confidence) -%}
    {%- set table = {
        '0.8': '1.2815515655446004',
        '0.9': '1.6448536269514722',
        '0.95': '1.959963984540054',
        '0.98': '2.3263478740408408',
        '0.99': '2.5758293035489004',
        '0.998': '3.090232306167813',
        '0.999': '3.2905267314919255',
    } -%}
    {%- set key = confidence | string -%}
    {%- if key not in table -%}
        {%- do exceptions.raise_compiler_error('normal_quantile: no critical value tabulated for confidence ' ~ key) -%}
    {%- endif -%}
    {{ table[key] }}
{%- endmacro %}
