/**
 * The DuckDB adapter's warehouse steps, timed as the deploy grows: first the rows per table (3 tables:
 * backup, the one-transaction publish, fingerprint for verify, restore for rollback), then the number
 * of tables in one cut-over (10 / 100 / 1,000 small tables: backup, publish, verify). dbt's own build
 * time is not measured here: it is the project's, not ours. Prints markdown tables; asserts nothing.
 *
 *   BENCH_ROWS=10000,100000,1000000 BENCH_TABLES=10,100,1000 npx tsx bench/duckdb.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { DuckDbAdapter } from '../activities/warehouses/duckdb/adapter.js';
import { duration, printTable, timeCopySteps } from './support/table.js';

const ROWS = (process.env['BENCH_ROWS'] ?? '10000,100000,1000000').split(',').map(Number);
const TABLE_COUNTS = (process.env['BENCH_TABLES'] ?? '10,100,1000').split(',').map(Number);
/** Rows of each table when the number of tables grows. */
const SMALL = 1000;
const COMMAND = `BENCH_ROWS=${ROWS.join(',')} BENCH_TABLES=${TABLE_COUNTS.join(',')} npx tsx bench/duckdb.ts`;

interface Timings {
  backupMs: number;
  publishMs: number;
  fingerprintMs: number;
  restoreMs: number;
  rssMiB: number;
}

async function prepare(path: string, tables: number, rows: number): Promise<void> {
  const instance = await DuckDBInstance.create(path);
  const connection = await instance.connect();
  await connection.run('CREATE SCHEMA prod; CREATE SCHEMA staging');
  await connection.run('BEGIN');
  for (let t = 0; t < tables; t += 1) {
    for (const schema of ['prod', 'staging']) {
      await connection.run(
        `CREATE TABLE ${schema}.t${t} AS SELECT range AS id, md5(range::VARCHAR || '${schema}') AS payload, ` +
          `range * 1.5 AS amount, TIMESTAMP '2025-01-01' + to_seconds(range) AS at FROM range(${rows})`,
      );
    }
  }
  await connection.run('COMMIT');
  connection.closeSync();
  instance.closeSync();
}

/** One deploy's warehouse steps over `tables` tables of `rows` rows. */
async function measure(tables: number, rows: number): Promise<Timings> {
  const dir = await mkdtemp(join(tmpdir(), 'dbt-deploy-bench-'));
  const path = join(dir, 'bench.duckdb');
  try {
    await prepare(path, tables, rows);
    const adapter = await DuckDbAdapter.open({ engine: 'duckdb', path, database: 'bench', schema: 'prod' });
    try {
      const steps = await timeCopySteps(adapter, 'bench', tables);
      return { ...steps, rssMiB: process.memoryUsage().rss / 2 ** 20 };
    } finally {
      await adapter.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const byRows: string[][] = [];
for (const rows of ROWS) {
  const r = await measure(3, rows);
  const rate = ((rows * 3) / (r.publishMs / 1000)).toFixed(0);
  byRows.push([
    String(rows),
    duration(r.backupMs),
    duration(r.publishMs),
    duration(r.fingerprintMs),
    duration(r.restoreMs),
    rate,
    r.rssMiB.toFixed(0),
  ]);
}
printTable(
  'DuckDB: 3 tables as their rows grow',
  COMMAND,
  ['rows/table', 'backup', 'publish', 'fingerprint (verify)', 'restore', 'rows/s (publish)', 'RSS MiB'],
  byRows,
);

const byTables: string[][] = [];
for (const tables of TABLE_COUNTS) {
  const r = await measure(tables, SMALL);
  byTables.push([
    String(tables),
    duration(r.backupMs),
    duration(r.publishMs),
    duration(r.fingerprintMs),
    duration(r.restoreMs),
  ]);
}
printTable(
  `DuckDB: cut-over as the tables grow (${SMALL} rows each, publish = every table copied in one transaction)`,
  COMMAND,
  ['tables', 'backup', 'publish (cut-over)', 'fingerprint (verify)', 'restore'],
  byTables,
);
