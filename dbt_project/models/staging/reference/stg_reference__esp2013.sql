select
    ageband as age_band,
    cast(age_lower as integer) as age_lower,
    cast(age_upper as integer) as age_upper,
    cast(esp2013 as integer) as standard_population
from {{ ref('esp2013_19bands') }}
