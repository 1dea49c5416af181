/**
 * `npm run example:sources`: loads the example's raw sources (schema `raw`: customers, orders,
 * payments), as the shop's own loader would, so the example can be deployed where it lies:
 *
 *   npm run example:sources                      # into examples/jaffle_shop/jaffle_shop.duckdb
 *   npm run example:sources -- path/to/file.duckdb
 *   npm run example:sources -- --postgres        # the database PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE name
 *   npm run example:sources -- --append 50       # 50 more orders, as a new day of source data
 *
 * Loading replaces the three tables; the data is generated from a seed, so it is the same every time.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { appendRawOrders, loadRawData, type RawTarget } from './raw-data.js';
import { EXAMPLE_DIR } from './workspace.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { postgres: { type: 'boolean' }, append: { type: 'string' } },
});

const env = process.env;
const target: RawTarget = values.postgres
  ? {
      postgres: {
        host: env['PGHOST'] ?? 'localhost',
        port: Number(env['PGPORT'] ?? 5432),
        user: env['PGUSER'] ?? 'dbt',
        ...(env['PGPASSWORD'] ? { password: env['PGPASSWORD'] } : {}),
        database: env['PGDATABASE'] ?? 'jaffle_shop',
      },
    }
  : resolve(positionals[0] ?? join(EXAMPLE_DIR, 'jaffle_shop.duckdb'));
const where =
  typeof target === 'string' ? target : `PostgreSQL database ${env['PGDATABASE'] ?? 'jaffle_shop'}`;

if (values.append !== undefined) {
  const orders = Number.parseInt(values.append, 10);
  await appendRawOrders(target, { orders });
  console.log(`appended ${orders} orders (and their payments) to raw.orders in ${where}`);
} else {
  await loadRawData(target);
  console.log(`loaded raw.customers, raw.orders and raw.payments into ${where}`);
}
