-- One row per customer with their order history summarised.
-- Returned orders count as orders but not towards lifetime value.
-- profile_changes counts how often the customer's name or email changed, from the
-- snapshot's history (its closed versions).

with customers as (

    select * from {{ ref('stg_customers') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

),

payments as (

    select * from {{ ref('stg_payments') }}

),

order_payments as (

    select
        order_id,
        sum(amount) as amount
    from payments
    group by order_id

),

profile_history as (

    select
        id                              as customer_id,
        count(dbt_valid_to)             as profile_changes
    from {{ ref('customers_snapshot') }}
    group by id

),

customer_orders as (

    select
        orders.customer_id,
        min(orders.ordered_at)          as first_order_at,
        max(orders.ordered_at)          as last_order_at,
        count(*)                        as number_of_orders,
        sum(
            case
                when orders.status = 'returned' then 0
                else coalesce(order_payments.amount, 0)
            end
        )                               as lifetime_value
    from orders
    left join order_payments
        on orders.order_id = order_payments.order_id
    group by orders.customer_id

)

select
    customers.customer_id,
    customers.first_name,
    customers.last_name,
    customers.full_name,
    customers.email,
    customers.customer_created_at,
    customer_orders.first_order_at,
    customer_orders.last_order_at,
    cast(coalesce(customer_orders.number_of_orders, 0) as integer)      as number_of_orders,
    cast(coalesce(customer_orders.lifetime_value, 0) as numeric(18, 2)) as lifetime_value,
    cast(coalesce(profile_history.profile_changes, 0) as integer)       as profile_changes
from customers
left join customer_orders
    on customers.customer_id = customer_orders.customer_id
left join profile_history
    on customers.customer_id = profile_history.customer_id
