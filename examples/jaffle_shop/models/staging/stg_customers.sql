with source as (

    select * from {{ ref('raw_customers') }}

),

renamed as (

    select
        id                              as customer_id,
        trim(first_name)                as first_name,
        trim(last_name)                 as last_name,
        trim(first_name) || ' ' || trim(last_name) as full_name,
        lower(trim(email))              as email,
        created_at                      as customer_created_at
    from source

)

select * from renamed
