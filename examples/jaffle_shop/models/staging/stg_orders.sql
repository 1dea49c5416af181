with source as (

    select * from {{ ref('raw_orders') }}

),

renamed as (

    select
        id                              as order_id,
        customer_id,
        ordered_at,
        cast(ordered_at as date)        as order_date,
        {% if var('break_audit', false) %}
        -- break_audit=true: deliberately emit a status outside the accepted
        -- set so the accepted_values tests fail (demo of a failing audit).
        -- The newest order is broken too, so the bad value also reaches
        -- fct_orders on incremental runs (which only re-read recent orders).
        case
            when lower(trim(status)) = 'returned' then 'lost_in_transit'
            when ordered_at = (select max(ordered_at) from source) then 'lost_in_transit'
            else lower(trim(status))
        end                             as status
        {% else %}
        lower(trim(status))             as status
        {% endif %}
    from source

)

select * from renamed
