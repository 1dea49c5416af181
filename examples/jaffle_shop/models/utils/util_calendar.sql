-- Date spine: one row per day from 2024-01-01 to 2026-12-31.
-- generate_series over timestamps with a column alias is accepted by both
-- DuckDB and PostgreSQL; BigQuery has its own date functions, hence the branch.

{% if target.type == 'bigquery' %}

select
    date_day,
    extract(year from date_day)                         as year_number,
    extract(quarter from date_day)                      as quarter_number,
    extract(month from date_day)                        as month_number,
    extract(day from date_day)                          as day_of_month,
    mod(extract(dayofweek from date_day) + 5, 7) + 1    as iso_day_of_week,
    extract(dayofweek from date_day) in (1, 7)          as is_weekend,
    -- the Monday of the week (the emulator has no ISOWEEK part)
    date_sub(date_day, interval mod(extract(dayofweek from date_day) + 5, 7) day) as week_start,
    date_trunc(date_day, month)                         as month_start
from unnest(generate_date_array(date '2024-01-01', date '2026-12-31')) as date_day

{% else %}

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

{% endif %}
