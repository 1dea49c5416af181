{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='order_id'
    )
}}

-- One row per order with its payments summed up.
--
-- Incremental: on re-runs only orders placed since (newest ordered_at already
-- in the table - `orders_lookback_days`) are recomputed and merged on
-- order_id, so new orders are inserted and recent orders whose status or
-- payments changed are updated. Use --full-refresh to rebuild everything.

with orders as (

    select * from {{ ref('stg_orders') }}

    {% if is_incremental() %}
    where ordered_at >= (
        select
            {{ dbt.dateadd(
                'day',
                -1 * var('orders_lookback_days', 3),
                "coalesce(max(ordered_at), cast('1900-01-01' as " ~ dbt.type_timestamp() ~ "))"
            ) }}
        from {{ this }}
    )
    {% endif %}

),

payments as (

    select * from {{ ref('stg_payments') }}

),

order_payments as (

    select
        order_id,
        sum(amount) as amount,
        count(*)    as payment_count
    from payments
    group by order_id

)

select
    orders.order_id,
    orders.customer_id,
    orders.ordered_at,
    orders.order_date,
    orders.status,
    cast(coalesce(order_payments.amount, 0) as numeric(18, 2))  as amount,
    cast(coalesce(order_payments.payment_count, 0) as integer)  as payment_count
from orders
left join order_payments
    on orders.order_id = order_payments.order_id
