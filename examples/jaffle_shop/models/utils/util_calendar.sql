-- Date spine: one row per day from 2024-01-01 to 2026-12-31.
-- generate_series over timestamps with a column alias is accepted by both
-- DuckDB and PostgreSQL, so no adapter-specific branch is needed.

with days as (

    select cast(day_ts as date) as date_day
    from generate_series(
        cast('2024-01-01' as timestamp),
        cast('2026-12-31' as timestamp),
        interval '1 day'
    ) as spine(day_ts)

)

select
    date_day,
    cast(extract(year from date_day) as integer)     as year_number,
    cast(extract(quarter from date_day) as integer)  as quarter_number,
    cast(extract(month from date_day) as integer)    as month_number,
    cast(extract(day from date_day) as integer)      as day_of_month,
    cast(extract(isodow from date_day) as integer)   as iso_day_of_week,
    extract(isodow from date_day) in (6, 7)          as is_weekend,
    cast(date_trunc('week', date_day) as date)       as week_start,
    cast(date_trunc('month', date_day) as date)      as month_start
from days
