/**
 * `npm run bench` (second table): the PostgreSQL adapter's warehouse steps as tables grow, on a
 * throwaway local cluster. The point to see: a blue/green swap (schema renames) costs the same at
 * any size, while copy-based publish, backup and restore grow with the rows. Prints; asserts nothing.
 */
import pg from 'pg';
import { PostgresAdapter } from '../activities/warehouses/postgres/adapter.js';
import { startPostgres } from '../test/support/postgres.js';
import type { Relation } from '../workflows/types.js';

const SIZES = (process.env['BENCH_ROWS'] ?? '10000,100000,1000000').split(',').map(Number);
const TABLES = 3;
const LABEL = { env: 'bench', createdAt: '2026-01-01T00:00:00.000Z' };

interface Row {
  rows: number;
  backupMs: number;
  publishMs: number;
  swapMs: number;
  unswapMs: number;
  fingerprintMs: number;
  restoreMs: number;
}

async function timed<T>(work: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const value = await work();
  return [performance.now() - start, value];
}

const server = await startPostgres();
try {
  const results: Row[] = [];
  for (const rows of SIZES) {
    const database = `bench_${rows}`;
    const admin = new pg.Client({ ...server });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const setup = new pg.Client({ ...server, database });
    await setup.connect();
    for (const schema of ['prod', 'staging']) {
      await setup.query(`CREATE SCHEMA ${schema}`);
      for (let t = 0; t < TABLES; t += 1) {
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
    await setup.end();
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
      const relation = (schema: string, t: number): Relation => ({ database, schema, identifier: `t${t}` });
      const tables = Array.from({ length: TABLES }, (_, t) => t);
      const prod = tables.map((t) => relation('prod', t));
      const [backupMs, backup] = await timed(() => adapter.backup('bench', prod, LABEL));
      const [publishMs] = await timed(() =>
        adapter.replaceRelations({
          tables: tables.map((t) => ({ from: relation('staging', t), to: relation('prod', t) })),
          views: [],
          drop: [],
        }),
      );
      const [fingerprintMs] = await timed(async () => {
        for (const table of prod) await adapter.fingerprint(table);
      });
      const [restoreMs] = await timed(() => adapter.restore(backup));
      const [swapMs, swapped] = await timed(() =>
        adapter.swapLocations(
          'bench-swap',
          [{ prod: { database, schema: 'prod' }, staging: { database, schema: 'staging' } }],
          LABEL,
        ),
      );
      const [unswapMs] = await timed(() => adapter.unswapLocations(swapped));
      results.push({ rows, backupMs, publishMs, swapMs, unswapMs, fingerprintMs, restoreMs });
    } finally {
      await adapter.close();
    }
  }
  const fmt = (ms: number) => ms.toFixed(0).padStart(9);
  console.log(`PostgreSQL adapter, ${TABLES} tables per deploy (4 columns), times in ms`);
  console.log('rows/table   backup  publish     swap   unswap  fingerprint  restore');
  for (const r of results) {
    console.log(
      `${String(r.rows).padStart(10)}${fmt(r.backupMs)}${fmt(r.publishMs)}${fmt(r.swapMs)}${fmt(r.unswapMs)}` +
        `${fmt(r.fingerprintMs).padStart(13)}${fmt(r.restoreMs)}`,
    );
  }
} finally {
  await server.stop();
}
