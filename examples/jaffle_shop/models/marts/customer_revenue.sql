{{ config(materialized='view') }}

-- Revenue per customer segment. Reads only from the marts (dim_customers and
-- fct_orders) and the seed customer_segments, never from staging, so it can be
-- published alongside them (every strategy publishes the project's seeds).
--
-- Segments by number of orders, as the seed defines them: prospect (0), new (1),
-- returning (2-4), loyal (5+). Revenue excludes returned orders.

with customers as (

    select
        dim_customers.customer_id,
        segments.customer_segment
    from {{ ref('dim_customers') }} as dim_customers
    inner join {{ ref('customer_segments') }} as segments
        on dim_customers.number_of_orders >= segments.min_orders
        and (segments.max_orders is null or dim_customers.number_of_orders <= segments.max_orders)

),

orders as (

    select
        customer_id,
        order_id,
        case when status = 'returned' then 0 else amount end as revenue
    from {{ ref('fct_orders') }}

)

select
    customers.customer_segment,
    count(distinct customers.customer_id)                       as customers,
    count(orders.order_id)                                      as orders,
    cast(coalesce(sum(orders.revenue), 0) as numeric(18, 2))    as revenue,
    cast(
        case
            when count(orders.order_id) = 0 then 0
            else coalesce(sum(orders.revenue), 0) / count(orders.order_id)
        end
        as numeric(18, 2)
    )                                                           as avg_order_value
from customers
left join orders
    on customers.customer_id = orders.customer_id
group by customers.customer_segment
