/**
 * `npm run bench:bigquery`: wac's two ways to publish a table on BigQuery, a copy job with
 * WRITE_TRUNCATE and DROP + CREATE TABLE … CLONE, timed on the emulator as the table grows, with a
 * snapshot backup and its restore. The emulator copies rows in both cases (it has no zero-copy
 * storage), so this shows the number of jobs and their time on it, not BigQuery's storage costs:
 * docs/bigquery.md says why 10 GiB is where publish switches to clones. Prints; asserts nothing.
 */
import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import { BigQueryAdapter } from '../activities/warehouses/bigquery/adapter.js';
import type { BigQueryConnection } from '../activities/warehouses/bigquery/connection.js';
import { startBigQueryEmulator } from '../test/support/bigquery.js';

const SIZES = (process.env['BENCH_ROWS'] ?? '1000,10000,100000').split(',').map(Number);
const ROUNDS = 3;
const PROJECT = 'bench';

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

const emulator = await startBigQueryEmulator();
try {
  const connection: BigQueryConnection = {
    engine: 'bigquery',
    project: PROJECT,
    executionProject: PROJECT,
    schema: 'analytics',
    location: 'US',
    apiEndpoint: emulator.endpoint,
    credentials: { method: 'oauth-secrets', token: 'unused-by-an-emulator' },
  };
  const client = new BigQuery({
    projectId: PROJECT,
    apiEndpoint: emulator.endpoint,
    authClient: new PassThroughClient(),
  });
  const query = async (sql: string) => {
    const [job] = await client.createQueryJob({ query: sql, location: 'US' });
    await job.getQueryResults();
  };
  const copies = await BigQueryAdapter.open(connection);
  const clones = await BigQueryAdapter.open(connection, () => {}, undefined, { cloneAboveBytes: 0 });
  await query(`CREATE SCHEMA \`${PROJECT}\`.staging`);
  await query(`CREATE SCHEMA \`${PROJECT}\`.analytics`);
  const rel = (schema: string, identifier: string) => ({ database: PROJECT, schema, identifier });
  const lines = [
    '| rows | copy job (ms) | drop + clone (ms) | snapshot backup (ms) | restore copy job (ms) |',
    '|---:|---:|---:|---:|---:|',
  ];
  for (const rows of SIZES) {
    const table = `t${rows}`;
    await query(
      `CREATE OR REPLACE TABLE \`${PROJECT}.staging.${table}\` AS SELECT x AS id, CONCAT('row ', CAST(x AS STRING)) AS label, RAND() AS value FROM UNNEST(GENERATE_ARRAY(1, ${rows})) AS x`,
    );
    const change = {
      tables: [{ from: rel('staging', table), to: rel('analytics', table) }],
      views: [],
      drop: [],
    };
    const copy: number[] = [];
    const clone: number[] = [];
    const backup: number[] = [];
    const restore: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      copy.push(await timed(() => copies.replaceRelations(change)));
      clone.push(await timed(() => clones.replaceRelations(change)));
      let ref;
      backup.push(
        await timed(async () => {
          ref = await copies.backup(`bench-${rows}-${round}`, [rel('analytics', table)], {
            env: 'bench',
            createdAt: new Date().toISOString(),
          });
        }),
      );
      restore.push(await timed(() => copies.restore(ref!)));
      await copies.dropBackup(ref!);
    }
    lines.push(
      `| ${rows} | ${median(copy).toFixed(0)} | ${median(clone).toFixed(0)} | ${median(backup).toFixed(0)} | ${median(restore).toFixed(0)} |`,
    );
  }
  console.log(
    `BigQuery publish on bqemulator 1.4.0, median of ${ROUNDS} rounds (each includes its metadata lookups)`,
  );
  console.log(lines.join('\n'));
} finally {
  await emulator.stop();
}
