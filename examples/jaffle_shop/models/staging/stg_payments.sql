with source as (

    select * from {{ ref('raw_payments') }}

),

renamed as (

    select
        id                              as payment_id,
        order_id,
        lower(trim(method))             as payment_method,
        amount_cents,
        -- cents -> dollars
        cast(amount_cents / 100.0 as numeric(18, 2)) as amount,
        created_at                      as paid_at
    from source

)

select * from renamed
