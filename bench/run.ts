/**
 * `npm run bench`: how long the DuckDB adapter's warehouse steps take as tables grow: backup, publish
 * (the one-transaction copy), fingerprint (verify) and restore (rollback). Prints a table; asserts
 * nothing. dbt's own build time is not measured here: it is the project's, not ours.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { DuckDbAdapter } from '../activities/warehouses/duckdb/adapter.js';
import type { Relation } from '../workflows/types.js';

const SIZES = (process.env['BENCH_ROWS'] ?? '10000,100000,1000000').split(',').map(Number);
const TABLES = 3;

interface Row {
  rows: number;
  backupMs: number;
  publishMs: number;
  fingerprintMs: number;
  restoreMs: number;
  rssMiB: number;
}

async function prepare(path: string, rows: number): Promise<void> {
  const instance = await DuckDBInstance.create(path);
  const connection = await instance.connect();
  await connection.run('CREATE SCHEMA prod; CREATE SCHEMA staging');
  for (let t = 0; t < TABLES; t += 1) {
    for (const schema of ['prod', 'staging']) {
      await connection.run(
        `CREATE TABLE ${schema}.t${t} AS SELECT range AS id, md5(range::VARCHAR || '${schema}') AS payload, ` +
          `range * 1.5 AS amount, TIMESTAMP '2025-01-01' + to_seconds(range) AS at FROM range(${rows})`,
      );
    }
  }
  connection.closeSync();
  instance.closeSync();
}

async function timed<T>(work: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const value = await work();
  return [performance.now() - start, value];
}

async function measure(rows: number): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), 'dbt-deploy-bench-'));
  const path = join(dir, 'bench.duckdb');
  try {
    await prepare(path, rows);
    const relation = (schema: string, t: number): Relation => ({
      database: 'bench',
      schema,
      identifier: `t${t}`,
    });
    const tables = Array.from({ length: TABLES }, (_, t) => t);
    const adapter = await DuckDbAdapter.open({ engine: 'duckdb', path, database: 'bench', schema: 'prod' });
    try {
      const prod = tables.map((t) => relation('prod', t));
      const [backupMs, backup] = await timed(() =>
        adapter.backup('bench', prod, { env: 'bench', createdAt: new Date().toISOString() }),
      );
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
      return {
        rows,
        backupMs,
        publishMs,
        fingerprintMs,
        restoreMs,
        rssMiB: process.memoryUsage().rss / 2 ** 20,
      };
    } finally {
      await adapter.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const results: Row[] = [];
for (const rows of SIZES) results.push(await measure(rows));

const fmt = (ms: number) => ms.toFixed(0).padStart(9);
console.log(`DuckDB adapter, ${TABLES} tables per deploy (4 columns), times in ms`);
console.log('rows/table  backup  publish  fingerprint  restore  rows/s(publish)  rss MiB');
for (const r of results) {
  const rate = ((r.rows * TABLES) / (r.publishMs / 1000)).toFixed(0);
  console.log(
    `${String(r.rows).padStart(10)}${fmt(r.backupMs)}${fmt(r.publishMs)}${fmt(r.fingerprintMs)}${fmt(r.restoreMs)}` +
      `${rate.padStart(17)}${r.rssMiB.toFixed(0).padStart(9)}`,
  );
}
