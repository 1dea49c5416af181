/**
 * BigQuery for real: set GOOGLE_APPLICATION_CREDENTIALS (a service account key) and
 * DBT_DEPLOY_BQ_PROJECT, then `npm run test:bigquery-live`. Every dataset it makes carries a random
 * suffix and is deleted afterwards. Without those variables every test is reported as skipped. It
 * checks what the emulator cannot show: partitioning, clustering and labels set by dbt kept by a publish, snapshots that
 * expire, and the whole saga against BigQuery's own copy jobs and clones.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BigQuery } from '@google-cloud/bigquery';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupLocationName } from '../../activities/warehouses/adapter.js';
import { appendRawOrders } from '../../examples/jaffle_shop/raw-data.js';
import { createExampleWorkspace, type ExampleWorkspace } from '../../examples/jaffle_shop/workspace.js';
import type { DeployResult } from '../../workflows/types.js';
import { snapshotSchema, startTestWorker, type TestWorker, withInjectedFault } from '../support/harness.js';

const projectId = process.env['DBT_DEPLOY_BQ_PROJECT'] ?? '';
const location = process.env['DBT_DEPLOY_BQ_LOCATION'] ?? 'US';
const live = Boolean(process.env['GOOGLE_APPLICATION_CREDENTIALS'] && projectId);
const suffix = `_${randomBytes(4).toString('hex')}`;
const PROD = `analytics${suffix}`;

describe.skipIf(!live)(`BigQuery live in project ${projectId || '(unset)'}`, () => {
  const client = new BigQuery({ projectId, location });
  const deployIds: string[] = [];
  let project: ExampleWorkspace;
  let worker: TestWorker;
  const deploy = async (options: { vars?: string } = {}, on = worker) => {
    const result = await on.deploy({ projectDir: project.dir, strategy: 'wac', ...options });
    deployIds.push(result.deployId);
    return result;
  };
  const coverage = async () => {
    const [job] = await client.createQueryJob({
      query:
        `SELECT (SELECT COUNT(*) FROM \`${projectId}.${PROD}.fct_orders\`) AS n, ` +
        `(SELECT COUNT(*) FROM \`${projectId}.raw${suffix}.orders\`) AS source`,
      location,
    });
    const [[row]] = await job.getQueryResults();
    return { rows: Number(row?.n), source: Number(row?.source) };
  };

  beforeAll(async () => {
    // The sources' dataset is the test's own too (models/staging/_sources.yml reads this variable).
    process.env['JAFFLE_RAW_SCHEMA'] = `raw${suffix}`;
    const dir = join(await mkdtemp(join(tmpdir(), 'dbt-deploy-live-')), 'jaffle_shop');
    project = await createExampleWorkspace(dir, { bigquery: { projectId, location, datasetSuffix: suffix } });
    // Partitioned and clustered, so the test sees whether a publish keeps both.
    const file = join(dir, 'dbt_project.yml');
    const config = parse(await readFile(file, 'utf8')) as { models: { jaffle_shop: { marts: object } } };
    config.models.jaffle_shop.marts = {
      ...config.models.jaffle_shop.marts,
      '+persist_docs': { relation: true, columns: true },
      '+labels': { layer: 'mart' },
      fct_orders: {
        '+partition_by': { field: 'ordered_at', data_type: 'timestamp', granularity: 'day' },
        '+cluster_by': ['customer_id'],
      },
    };
    await writeFile(file, stringify(config));
    worker = await startTestWorker('test-bigquery');
  });

  afterAll(async () => {
    await worker?.stop();
    const datasets = ['analytics', 'analytics_staging', 'analytics_audit', 'raw']
      .map((name) => `${name}${suffix}`)
      .concat(deployIds.map((id) => backupLocationName(id)));
    for (const dataset of datasets)
      await client
        .dataset(dataset)
        .delete({ force: true })
        .catch(() => undefined);
  });

  it('wac publishes by copy job, keeping partitioning, clustering, descriptions and labels', async () => {
    const result = await deploy();
    expect(result.status, result.reason).toBe('published');
    expect(await coverage()).toEqual({ rows: 600, source: 600 });
    const [metadata] = await client.dataset(PROD).table('fct_orders').getMetadata();
    expect(metadata.timePartitioning?.field).toBe('ordered_at');
    expect(metadata.clustering?.fields).toEqual(['customer_id']);
    // dbt set these on the staging table (persist_docs, labels); the publish keeps them.
    expect(metadata.description).toContain('One row per order');
    expect(metadata.labels).toEqual({ layer: 'mart' });
    expect(metadata.schema?.fields?.find((f: { name?: string }) => f.name === 'order_id')?.description).toBe(
      'Primary key.',
    );
    const [snapshot] = await client.dataset(backupLocationName(result.deployId)).getTables();
    expect(snapshot.every((t) => t.metadata?.type !== 'VIEW')).toBe(true);
  });

  it('a failing audit leaves prod unchanged', async () => {
    const before = await snapshotSchema(project, PROD);
    const result = await deploy({ vars: '{break_audit: true}' });
    expect(result.status).toBe('failed');
    expect(await snapshotSchema(project, PROD)).toEqual(before);
  });

  it('a fault after publish restores prod from its snapshots, and rollback restores the deploy before', async () => {
    const before = await snapshotSchema(project, PROD);
    await appendRawOrders(project.raw, { orders: 30 });
    const faulty = await startTestWorker('test-bigquery', withInjectedFault('verifyProd', 'verify'));
    let result: DeployResult;
    try {
      result = await deploy({}, faulty);
    } finally {
      await faulty.stop();
    }
    expect(result.status).toBe('rolled_back');
    expect(await snapshotSchema(project, PROD)).toEqual(before);

    const published = await deploy();
    expect(published.status, published.reason).toBe('published');
    expect(await coverage()).toEqual({ rows: 630, source: 630 });
    const rollback = await worker.rollback({ projectDir: project.dir });
    deployIds.push(rollback.deployId);
    expect(rollback.status, rollback.reason).toBe('published');
    expect(await snapshotSchema(project, PROD)).toEqual(before);
  });
});
