-- Fails (returns rows) if any order or customer ends up with a negative amount.

select
    'fct_orders' as model_name,
    order_id     as id,
    amount
from {{ ref('fct_orders') }}
where amount < 0

union all

select
    'dim_customers' as model_name,
    customer_id     as id,
    lifetime_value  as amount
from {{ ref('dim_customers') }}
where lifetime_value < 0
