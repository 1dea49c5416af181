-- The raw layer: a 1:1 copy of the source table. With a `mirror` key in deploy.yml it is
-- rebuilt only by `dbt-deploy mirror refresh`, and every deploy builds from it instead of
-- reading the live source; without one it is just the first layer of every build.
select * from {{ source('shop', 'payments') }}
