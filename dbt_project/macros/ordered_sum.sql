{#- sum(value) adding the rows in the order of order_by, from 0, one after another: a floating-point
    sum depends on the order of its terms. DuckDB orders an aggregate's input itself (`order by`
    in the call) and adds in that order. Spark has no ordered aggregates: the non-null values are
    collected with their order keys, sorted, and added one after another from 0, which gives the
    same bits as DuckDB (NULL when no value is non-null, as sum gives). -#}
{% macro ordered_sum(value, order_by) -%}
    {{ return(adapter.dispatch('ordered_sum')(value, order_by)) }}
{%- endmacro %}

{% macro default__ordered_sum(value, order_by) -%}
    sum({{ value }} order by {{ order_by }})
{%- endmacro %}

{% macro spark__ordered_sum(value, order_by) -%}
    case when count({{ value }}) > 0 then aggregate(
        array_sort(collect_list(
            case when {{ value }} is not null then named_struct('k', {{ order_by }}, 'v', cast({{ value }} as double)) end
        )),
        cast(0 as double),
        (total, term) -> total + term.v
    ) end
{%- endmacro %}
