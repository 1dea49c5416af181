/**
 * The BigQuery adapter against the emulator started by the test run: publishing by copy job and by
 * clone, what a published table keeps, backups and their restore, and a job whose submission was
 * lost on the way. Every check reads the emulator with a plain client, not the adapter.
 */
import { randomBytes } from 'node:crypto';
import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { BigQueryAdapter } from '../../activities/warehouses/bigquery/adapter.js';
import type { BigQueryConnection } from '../../activities/warehouses/bigquery/connection.js';

const endpoint = inject('bigqueryEndpoint');
const project = `adapter-${randomBytes(4).toString('hex')}`;
const connection: BigQueryConnection = {
  engine: 'bigquery',
  project,
  executionProject: project,
  schema: 'analytics',
  location: 'US',
  apiEndpoint: endpoint,
  credentials: { method: 'oauth-secrets', token: 'unused-by-an-emulator' },
};
const client = new BigQuery({
  projectId: project,
  apiEndpoint: endpoint,
  authClient: new PassThroughClient(),
});
const rel = (schema: string, identifier: string) => ({ database: project, schema, identifier });

async function read(sql: string): Promise<Record<string, unknown>[]> {
  const [job] = await client.createQueryJob({ query: sql, location: 'US' });
  return (await job.getQueryResults())[0] as Record<string, unknown>[];
}

async function content(table: string): Promise<string> {
  const [row] = await read(
    `SELECT TO_HEX(MD5(COALESCE(STRING_AGG(TO_JSON_STRING(r), '|' ORDER BY TO_JSON_STRING(r)), ''))) AS md5 FROM \`${project}.${table}\` AS r`,
  );
  return String(row?.['md5']);
}

/** What a publish or restore keeps of a table, as tables.get returns it. */
async function properties(table: string): Promise<Record<string, unknown>> {
  const [dataset, name] = table.split('.') as [string, string];
  const [m] = await client.dataset(dataset).table(name).getMetadata();
  return {
    timePartitioning: m.timePartitioning,
    clustering: m.clustering,
    description: m.description,
    labels: m.labels,
    schema: m.schema,
  };
}

describe('the BigQuery adapter on the emulator', () => {
  const log: string[] = [];
  let adapter: BigQueryAdapter;

  beforeAll(async () => {
    if (!endpoint) throw new Error('the BigQuery emulator is not installed: run `scripts/setup --bigquery`');
    adapter = await BigQueryAdapter.open(connection, (s) => log.push(s), {
      deployId: 'prod-1',
      step: 'adapterTest',
      attempt: '1',
    });
    await read(`CREATE SCHEMA \`${project}\`.staging`);
    await read(
      `CREATE TABLE \`${project}\`.staging.orders AS SELECT 1 AS id, 'a' AS status UNION ALL SELECT 2, 'b'`,
    );
    await client
      .dataset('staging')
      .table('orders')
      .setMetadata({ description: 'one row per order', labels: { team: 'shop' } });
  });
  afterAll(() => adapter?.close());

  it('publishes by copy job into a dataset it creates, keeping the description and labels', async () => {
    await adapter.replaceRelations({
      tables: [{ from: rel('staging', 'orders'), to: rel('analytics', 'orders') }],
      views: [
        {
          to: rel('analytics', 'big_orders'),
          sql: `SELECT * FROM \`${project}.analytics.orders\` WHERE id > 1`,
        },
      ],
      drop: [],
    });

    expect(await content('analytics.orders')).toBe(await content('staging.orders'));
    const [metadata] = await client.dataset('analytics').table('orders').getMetadata();
    expect(metadata.description).toBe('one row per order');
    expect(metadata.labels).toEqual({ team: 'shop' });
    expect(await read(`SELECT id FROM \`${project}.analytics.big_orders\``)).toEqual([{ id: 2 }]);
    expect(
      log.some((l) => l.includes('copy job COPY') && l.includes('dbt_deploy_prod-1_adapterTest_1_')),
    ).toBe(true);
  });

  it('backs up, then restores prod exactly: a changed table, a dropped view, a new table', async () => {
    const before = await content('analytics.orders');
    const backup = await adapter.backup(
      'prod-2',
      [rel('analytics', 'orders'), rel('analytics', 'big_orders'), rel('analytics', 'not_yet')],
      { env: 'prod', createdAt: '2026-11-30T10:00:00.000Z' },
    );
    expect(backup.entries.map((e) => e.kind)).toEqual(['table', 'view', 'absent']);
    const [snapshot] = await client.dataset(backup.location.schema).table('t0__orders').getMetadata();
    expect(snapshot.type).toBe('SNAPSHOT');

    // A new schema too: the emulator's restore must drop the changed table first (see plans.ts).
    await read(
      `CREATE OR REPLACE TABLE \`${project}.analytics.orders\` AS SELECT 9 AS id, 'z' AS status, 1 AS extra`,
    );
    await read(`DROP VIEW \`${project}.analytics.big_orders\``);
    await read(`CREATE TABLE \`${project}.analytics.not_yet\` AS SELECT 1 AS x`);
    await adapter.restore((await adapter.listBackups()).find((b) => b.deployId === 'prod-2')!);

    expect(await content('analytics.orders')).toBe(before);
    expect(await read(`SELECT id FROM \`${project}.analytics.big_orders\``)).toEqual([{ id: 2 }]);
    expect(await adapter.relationKind(rel('analytics', 'not_yet'))).toBe('absent');
    await adapter.dropBackup(backup);
    expect((await adapter.listBackups()).map((b) => b.deployId)).not.toContain('prod-2');
  });

  it('publishes by clone above the size threshold: the same rows, after a drop', async () => {
    const clones = await BigQueryAdapter.open(connection, (s) => log.push(s), undefined, {
      cloneAboveBytes: 0,
    });
    await read(`INSERT INTO \`${project}.staging.orders\` VALUES (3, 'c')`);
    await clones.replaceRelations({
      tables: [{ from: rel('staging', 'orders'), to: rel('analytics', 'orders') }],
      views: [],
      drop: [],
    });
    expect(await content('analytics.orders')).toBe(await content('staging.orders'));
    expect(log.some((l) => /CREATE TABLE `[^`]+`\.`analytics`\.`orders` CLONE/.test(l))).toBe(true);
  });

  it('publishes onto a table laid out otherwise: the source partitioning, clustering, descriptions and labels', async () => {
    // Made by the API: the emulator keeps partitioning, clustering and labels only from tables.insert.
    const schema = (note: string) => ({
      fields: [
        { name: 'ordered_at', type: 'TIMESTAMP' },
        { name: 'customer_id', type: 'INTEGER', description: `the customer (${note})` },
      ],
    });
    await client.dataset('staging').createTable('events_by_day', {
      schema: schema('staging'),
      timePartitioning: { type: 'DAY', field: 'ordered_at' },
      clustering: { fields: ['customer_id'] },
      description: 'events, one partition a day',
      labels: { team: 'shop', tier: 'gold' },
    });
    await read(`INSERT INTO \`${project}.staging.events_by_day\` VALUES (TIMESTAMP '2026-11-30', 7)`);
    // Prod's table: unpartitioned, its own description and a label the source does not have.
    await client.dataset('analytics').createTable('events_by_day', {
      schema: schema('prod'),
      description: 'old',
      labels: { team: 'sales', hand_made: 'yes' },
    });
    const expected = await properties('staging.events_by_day');
    expect(expected).toMatchObject({
      timePartitioning: { type: 'DAY', field: 'ordered_at' },
      clustering: { fields: ['customer_id'] },
      labels: { team: 'shop', tier: 'gold' },
    });

    for (const options of [{}, { cloneAboveBytes: 0 }]) {
      const publisher = await BigQueryAdapter.open(connection, () => {}, undefined, options);
      await publisher.replaceRelations({
        tables: [{ from: rel('staging', 'events_by_day'), to: rel('analytics', 'events_by_day') }],
        views: [],
        drop: [],
      });
      expect(await properties('analytics.events_by_day')).toEqual(expected);
      expect(await content('analytics.events_by_day')).toBe(await content('staging.events_by_day'));
    }
  });

  it('restores a table with the partitioning, clustering, description and labels it was backed up with', async () => {
    const before = await properties('analytics.events_by_day');
    const backup = await adapter.backup('prod-3', [rel('analytics', 'events_by_day')], {
      env: 'prod',
      createdAt: '2026-11-30T11:00:00.000Z',
    });
    // A deploy after it changed all of them.
    await client.dataset('analytics').table('events_by_day').delete();
    await client.dataset('analytics').createTable('events_by_day', {
      schema: {
        fields: [
          { name: 'ordered_at', type: 'TIMESTAMP' },
          { name: 'customer_id', type: 'INTEGER' },
        ],
      },
      clustering: { fields: ['ordered_at'] },
      description: 'changed',
      labels: { team: 'other', extra: 'x' },
    });
    await adapter.restore(backup);

    expect(await properties('analytics.events_by_day')).toEqual(before);
    await adapter.dropBackup(backup);
  });

  it('looks a job up instead of running it twice when its submission is lost on the way', async () => {
    await read(`CREATE TABLE \`${project}.staging.events\` (id INT64)`);
    // An injected fault (a response lost in transit cannot be produced on demand): the job is
    // submitted for real, then the call fails as a dropped connection would.
    const lossy = new BigQuery({
      projectId: project,
      apiEndpoint: endpoint,
      authClient: new PassThroughClient(),
    });
    const submit = lossy.createQueryJob.bind(lossy);
    let lost = 0;
    const sent: Array<{ jobId?: string; labels?: Record<string, string> }> = [];
    lossy.createQueryJob = (async (options: never) => {
      sent.push(options);
      const result = await submit(options);
      if (lost++ === 0) {
        await result[0].getQueryResults();
        throw Object.assign(new Error('injected fault: socket hang up'), { code: 'ECONNRESET' });
      }
      return result;
    }) as never;
    const retrying = await BigQueryAdapter.open(
      connection,
      () => {},
      {
        deployId: 'prod-4',
        step: 'publishTables',
        attempt: 'run1_7_1',
      },
      { client: lossy },
    );
    await retrying.run({ kind: 'query', sql: `INSERT INTO \`${project}.staging.events\` VALUES (1)` });
    expect(await read(`SELECT COUNT(*) AS n FROM \`${project}.staging.events\``)).toEqual([{ n: 1 }]);
    expect(lost).toBe(1);
    // Sent once, under the id the lookup found it by, labelled with the deploy and step (the emulator
    // drops query job labels, so they are read from the request).
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      jobId: 'dbt_deploy_prod-4_publishTables_run1_7_1_1',
      labels: { dbt_deploy: 'prod-4', dbt_deploy_step: 'publish_tables' },
    });
  });
});
