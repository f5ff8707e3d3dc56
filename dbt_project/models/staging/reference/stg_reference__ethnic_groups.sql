select
    ethnic_category,
    ethnic_category_name,
    ethnic_group,
    ethnic_group_name
from {{ ref('nhs_ethnic_category_groups') }}
