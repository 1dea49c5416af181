/**
 * The PostgreSQL adapter's warehouse steps on a throwaway local cluster, timed as the deploy grows:
 * first the rows per table (3 tables), then the number of tables in one cut-over (10 / 100 / 1,000
 * small tables). The point to see: a blue/green swap (schema renames) costs the same at any size,
 * while copy-based publish, backup and restore grow with the rows and the tables. Prints markdown
 * tables; asserts nothing.
 *
 *   BENCH_ROWS=10000,100000,1000000 BENCH_TABLES=10,100,1000 npx tsx bench/postgres.ts
 */
import pg from 'pg';
import { PostgresAdapter } from '../activities/warehouses/postgres/adapter.js';
import { type RunningPostgres, startPostgres } from '../test/support/postgres.js';
import { duration, printTable, timeCopySteps, timed } from './support/table.js';

const ROWS = (process.env['BENCH_ROWS'] ?? '10000,100000,1000000').split(',').map(Number);
const TABLE_COUNTS = (process.env['BENCH_TABLES'] ?? '10,100,1000').split(',').map(Number);
/** Rows of each table when the number of tables grows. */
const SMALL = 1000;
const LABEL = { env: 'bench', createdAt: '2026-01-01T00:00:00.000Z' };
const COMMAND = `BENCH_ROWS=${ROWS.join(',')} BENCH_TABLES=${TABLE_COUNTS.join(',')} npx tsx bench/postgres.ts`;

interface Timings {
  backupMs: number;
  publishMs: number;
  swapMs: number;
  unswapMs: number;
  fingerprintMs: number;
  restoreMs: number;
}

/** A database with `tables` tables of `rows` rows in prod and staging, and a reader outside prod. */
async function prepare(
  server: RunningPostgres,
  database: string,
  tables: number,
  rows: number,
): Promise<void> {
  const admin = new pg.Client({ ...server });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const setup = new pg.Client({ ...server, database });
  await setup.connect();
  await setup.query('BEGIN');
  for (const schema of ['prod', 'staging']) {
    await setup.query(`CREATE SCHEMA ${schema}`);
    for (let t = 0; t < tables; t += 1) {
      await setup.query(
        `CREATE TABLE ${schema}.t${t} AS SELECT g AS id, md5(g::text || '${schema}') AS payload, g * 1.5 AS amount, ` +
          `TIMESTAMP '2025-01-01' + g * INTERVAL '1 second' AS at FROM generate_series(1, ${rows}) AS g`,
      );
    }
  }
  // A reader outside the swapped schema: the swap must re-point it in the same transaction.
  await setup.query(
    'CREATE SCHEMA reporting; CREATE VIEW reporting.t0_count AS SELECT count(*) AS n FROM prod.t0',
  );
  await setup.query('COMMIT');
  await setup.end();
}

async function measure(server: RunningPostgres, tables: number, rows: number): Promise<Timings> {
  const database = `bench_${tables}_${rows}`;
  await prepare(server, database, tables, rows);
  const adapter = await PostgresAdapter.open({
    engine: 'postgres',
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    dbname: database,
    schema: 'prod',
  });
  try {
    const steps = await timeCopySteps(adapter, database, tables);
    const [swapMs, swapped] = await timed(() =>
      adapter.swapLocations(
        'bench-swap',
        [{ prod: { database, schema: 'prod' }, staging: { database, schema: 'staging' } }],
        LABEL,
      ),
    );
    const [unswapMs] = await timed(() => adapter.unswapLocations(swapped));
    return { ...steps, swapMs, unswapMs };
  } finally {
    await adapter.close();
  }
}

const columns = (r: Timings) =>
  [r.backupMs, r.publishMs, r.swapMs, r.unswapMs, r.fingerprintMs, r.restoreMs].map(duration);
const header = ['backup', 'publish (copy)', 'swap', 'unswap', 'fingerprint (verify)', 'restore'];

const server = await startPostgres();
try {
  const byRows: string[][] = [];
  for (const rows of ROWS) byRows.push([String(rows), ...columns(await measure(server, 3, rows))]);
  printTable('PostgreSQL: 3 tables as their rows grow', COMMAND, ['rows/table', ...header], byRows);
  const byTables: string[][] = [];
  for (const tables of TABLE_COUNTS)
    byTables.push([String(tables), ...columns(await measure(server, tables, SMALL))]);
  printTable(
    `PostgreSQL: cut-over as the tables grow (${SMALL} rows each; blue-green swaps, the others copy in one transaction)`,
    COMMAND,
    ['tables', ...header],
    byTables,
  );
} finally {
  await server.stop();
}
