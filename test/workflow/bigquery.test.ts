/**
 * BigQuery end to end on the emulator (bqemulator 1.4.0): wac, wap, clone-back and mirror deploy the
 * example with real dbt-bigquery and a real worker, and every check reads the emulator with a plain
 * client. The deploy chain runs in one workspace (one emulator project) in sequence, so the file
 * starts dbt as few times as it can: the T/T+1/T+2 case runs on the prod the earlier deploys left.
 * The mirror case needs nothing of that prod, so it runs in a workspace and worker of its own, started
 * beside the chain and checked at the end. What the emulator fakes or drops (zero-copy clones,
 * snapshot expiry, time travel, partitioning, clustering and labels set by dbt's DDL, policy tags) is
 * not claimed here: test/unit/bigquery-plans.test.ts checks those plans against Google's
 * documentation, and test/unit/bigquery-adapter.test.ts what the emulator keeps of tables made by API.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import { backupLocationName } from '../../activities/warehouses/shared/backup-manifest.js';
import { appendRawOrders, type BigQueryRawTarget } from '../../examples/jaffle_shop/raw-data.js';
import type { DeployResult } from '../../workflows/types.js';
import {
  type ExampleProject,
  exampleProject,
  look,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
  withInjectedFault,
} from '../support/harness.js';
import {
  AUDIT,
  backupSchemas,
  orderCoverage,
  pick,
  PROD,
  SEED,
  seedInProd,
  SNAPSHOT,
  STAGING,
  TAGGED,
  WITH_EVERY_DEPLOY,
} from './scenarios.js';

const RAW = ['raw_customers', 'raw_orders', 'raw_payments'];
const TABLES = ['dim_customers', 'fct_orders', 'util_calendar', SEED, SNAPSHOT, ...RAW];
/** Each deploy on the emulator takes one to three minutes on a 2-core machine; some tests run two. */
const SLOW = 480_000;
const EVERY_MODEL = [...WITH_EVERY_DEPLOY, ...RAW, 'stg_customers', 'stg_orders', 'stg_payments'].sort();

/** A plain client on the workspace's emulator project (not the adapter under test). */
function clientOf(project: ExampleProject): BigQuery {
  const target = (project.raw as { bigquery: BigQueryRawTarget }).bigquery;
  return new BigQuery({
    projectId: target.projectId,
    apiEndpoint: target.apiEndpoint ?? '',
    authClient: new PassThroughClient(),
  });
}

/** The jobs a deploy ran, found by the ids the adapter derives from the deploy. */
async function jobsOf(
  project: ExampleProject,
  deployId: string,
): Promise<Array<{ id: string; copy: boolean; labels?: Record<string, string> }>> {
  const [jobs] = await clientOf(project).getJobs({ allUsers: true, maxResults: 1000 });
  const prefix = `dbt_deploy_${deployId.replace(/[^A-Za-z0-9_-]/g, '_')}_`;
  return jobs
    .filter((j) => String(j.id).startsWith(prefix))
    .map((j) => ({
      id: String(j.id),
      copy: j.metadata?.configuration?.copy !== undefined,
      labels: j.metadata?.configuration?.labels,
    }));
}

/** The marts dbt documents on the tables (persist_docs) and labels; the emulator keeps no DDL labels. */
const DOCUMENTED = ['dim_customers', 'fct_orders'];

async function documentMarts(project: ExampleProject): Promise<void> {
  const file = join(project.dir, 'dbt_project.yml');
  const config = parse(await readFile(file, 'utf8')) as { models: { jaffle_shop: { marts: object } } };
  config.models.jaffle_shop.marts = {
    ...config.models.jaffle_shop.marts,
    '+persist_docs': { relation: true, columns: true },
    '+labels': { layer: 'mart' },
  };
  await writeFile(file, stringify(config));
}

/** What a publish keeps of a table that the emulator stores: its description, labels and column descriptions. */
async function tableProperties(
  project: ExampleProject,
  dataset: string,
  tables = DOCUMENTED,
): Promise<Record<string, unknown>> {
  const found: Record<string, unknown> = {};
  for (const table of tables) {
    const [metadata] = await clientOf(project).dataset(dataset).table(table).getMetadata();
    found[table] = {
      description: metadata.description,
      labels: metadata.labels ?? {},
      columns: (metadata.schema?.fields ?? []).map((f: { name?: string; description?: string }) => [
        f.name,
        f.description,
      ]),
    };
  }
  return found;
}

async function setProperties(
  project: ExampleProject,
  table: string,
  properties: { description: string; labels: Record<string, string> },
): Promise<void> {
  await clientOf(project).dataset(PROD).table(table).setMetadata(properties);
}

/**
 * The mirror case on a workspace of its own: a refresh from the sources, then one with a source down
 * that keeps the last good raw layer. Returns what the checks need; they run in the test at the end.
 */
async function mirrorScenario() {
  // A namespace of its own: workflow ids name the project and env, which the chain's deploys share.
  const [project, worker] = await Promise.all([
    exampleProject('bigquery'),
    startTestWorker('test-bigquery-mirror'),
  ]);
  try {
    const config = join(project.dir, 'deploy.yml');
    await writeFile(config, `${await readFile(config, 'utf8')}mirror:\n  select: ['tag:raw']\n`);
    const refresh = await worker.refreshMirror({ projectDir: project.dir });
    const layer = pick(await snapshotSchema(project, PROD), RAW);
    await look(project.raw, (read) => read('DROP TABLE raw.payments'));
    const down = await worker.refreshMirror({ projectDir: project.dir });
    return { refresh, layer, down, after: pick(await snapshotSchema(project, PROD), RAW) };
  } finally {
    await worker.stop();
  }
}

describe.sequential('every BigQuery strategy on the emulator', () => {
  let project: ExampleProject;
  let worker: TestWorker;
  const prodAfter: Record<string, Awaited<ReturnType<typeof snapshotSchema>>> = {};
  const deploys: Record<string, DeployResult> = {};
  const propertiesBefore: Record<string, Record<string, unknown>> = {};
  const deploy = (strategy: string, vars?: string) =>
    worker.deploy({ projectDir: project.dir, strategy, ...(vars ? { vars } : {}) });

  let mirror: ReturnType<typeof mirrorScenario>;

  beforeAll(async () => {
    mirror = mirrorScenario();
    // Settled here too, so a failure before its test is reported there, not as an unhandled rejection.
    mirror.catch(() => undefined);
    [project, worker] = await Promise.all([exampleProject('bigquery'), startTestWorker('test-bigquery')]);
    await documentMarts(project);
  });
  afterAll(async () => {
    await worker?.stop();
    await mirror?.catch(() => undefined);
  });

  it(
    'clone-back publishes every model at T, each job labelled and named after the deploy and step',
    async () => {
      const result = await deploy('clone-back');

      expect(result.status, result.reason).toBe('published');
      const prod = await snapshotSchema(project, PROD);
      expect(Object.keys(prod).sort()).toEqual(EVERY_MODEL);
      expect(prod['customer_revenue']?.kind).toBe('view');
      expect(await seedInProd(project)).toEqual({
        segments: ['prospect:0-0', 'new:1-1', 'returning:2-4', 'loyal:5-'],
        customers: 200,
      });
      expect(prod[SNAPSHOT]).toMatchObject({ kind: 'table', rows: 200 });
      expect(await orderCoverage(project)).toEqual({ rows: 600, distinct: 600, missing: 0 });
      expect(prod).toEqual(pick(await snapshotSchema(project, STAGING), EVERY_MODEL));
      expect(await backupSchemas(project)).toHaveLength(1);
      // The emulator keeps job ids and the labels of copy jobs (not those of query jobs).
      const jobs = await jobsOf(project, result.deployId);
      const copies = jobs.filter((j) => j.copy);
      expect(copies.length).toBeGreaterThanOrEqual(TABLES.length);
      expect(copies.every((j) => j.labels?.['dbt_deploy_step'] === 'publish_relations')).toBe(true);
      // New in prod: the emulator's copy job carries no description, so this is the adapter's patch.
      const properties = await tableProperties(project, PROD);
      expect(properties).toEqual(await tableProperties(project, STAGING));
      expect(properties['fct_orders']).toMatchObject({
        description: 'One row per order with the summed payments (incremental, merged on order_id).',
        columns: expect.arrayContaining([['order_id', 'Primary key.']]),
      });
      prodAfter['T'] = prod;
    },
    SLOW,
  );

  it(
    'stops at a failing audit with prod checksums unchanged and no backup taken',
    async () => {
      const backups = await backupSchemas(project);
      // wac: every strategy stops at the audit on the same path, and wac starts dbt least before it.
      const result = await deploy('wac', '{break_audit: true}');

      expect(result.status).toBe('failed');
      expect(result.reason).toContain('accepted_values_stg_orders_status');
      expect(await snapshotSchema(project, PROD)).toEqual(prodAfter['T']);
      expect(await backupSchemas(project)).toEqual(backups);
    },
    SLOW,
  );

  it(
    'wac at T+1 and T+2: the incremental model holds every source row exactly once, prod matches staging',
    async () => {
      // Set on prod by hand: a copy job onto an existing table would keep them; the publish replaces them.
      await setProperties(project, 'fct_orders', { description: 'stale', labels: { hand_made: 'yes' } });
      for (const [at, expected] of [
        ['T+1', 650],
        ['T+2', 700],
      ] as const) {
        await appendRawOrders(project.raw, { orders: 50 });
        const result = await deploy('wac');
        expect(result.status, `${at}: ${result.reason}`).toBe('published');
        expect(await orderCoverage(project), at).toEqual({ rows: expected, distinct: expected, missing: 0 });
        const prod = await snapshotSchema(project, PROD);
        expect(pick(prod, WITH_EVERY_DEPLOY), at).toEqual(
          pick(await snapshotSchema(project, STAGING), WITH_EVERY_DEPLOY),
        );
        expect(await tableProperties(project, PROD), at).toEqual(await tableProperties(project, STAGING));
        prodAfter[at] = prod;
      }
    },
    SLOW,
  );

  it(
    'wac: a fault after publish restores prod exactly from its snapshots',
    async () => {
      const backups = await backupSchemas(project);
      await appendRawOrders(project.raw, { orders: 40 });
      // What the restore must put back beside the rows: the snapshot keeps them for it.
      await setProperties(project, 'fct_orders', { description: 'kept', labels: { owner: 'finance' } });
      const properties = await tableProperties(project, PROD);
      const faulty = await startTestWorker('test-bigquery', withInjectedFault('verifyProd', 'verify'));
      let result: DeployResult;
      try {
        result = await faulty.deploy({ projectDir: project.dir, strategy: 'wac' });
      } finally {
        await faulty.stop();
      }

      expect(result.status).toBe('rolled_back');
      const compensated = result.steps.filter((s) => s.status === 'compensated').map((s) => s.id);
      expect(compensated).toEqual(expect.arrayContaining(['publish-tables', 'publish-views']));
      expect(await snapshotSchema(project, PROD)).toEqual(prodAfter['T+2']);
      expect(await tableProperties(project, PROD)).toEqual(properties);
      expect(await backupSchemas(project)).toEqual(backups);
    },
    SLOW,
  );

  it(
    'wap rebuilds the tagged models in prod from the audited layers below them',
    async () => {
      propertiesBefore['wap'] = await tableProperties(project, PROD);
      const result = await deploy('wap');

      expect(result.status, result.reason).toBe('published');
      const prod = await snapshotSchema(project, PROD);
      expect(pick(prod, TAGGED)).toEqual(pick(await snapshotSchema(project, AUDIT), TAGGED));
      expect(await orderCoverage(project)).toEqual({ rows: 740, distinct: 740, missing: 0 });
      deploys['wap'] = result;
    },
    SLOW,
  );

  it(
    'rolls back to before the latest deploy by restore copy jobs, twice to the same prod',
    async () => {
      const latest = deploys['wap']!.deployId;
      const first = await worker.rollback({ projectDir: project.dir });
      expect(first.status, first.reason).toBe('published');
      expect(first.steps[0]?.summary).toContain(latest);
      expect(await snapshotSchema(project, PROD)).toEqual(prodAfter['T+2']);
      expect(await tableProperties(project, PROD)).toEqual(propertiesBefore['wap']);

      const again = await worker.rollback({ projectDir: project.dir, to: latest });
      expect(again.status, again.reason).toBe('published');
      expect(await snapshotSchema(project, PROD)).toEqual(prodAfter['T+2']);
      // backups.keep (3) bounds each operation's backups apart (docs/configuration.md): the rollbacks'
      // own stay beside the newest deploy backups.
      const backups = await backupSchemas(project);
      const ofRollbacks = [first.deployId, again.deployId].map((id) => backupLocationName(id));
      expect(backups).toEqual(expect.arrayContaining(ofRollbacks));
      expect(backups.filter((b) => !ofRollbacks.includes(b)).length).toBeLessThanOrEqual(3);
    },
    SLOW,
  );

  it(
    'mirror refreshes the raw layer from the sources, and keeps the last good copy when one is down',
    async () => {
      const { refresh, layer, down, after } = await mirror;
      expect(refresh.status, refresh.reason).toBe('published');
      expect(layer['raw_orders']?.rows).toBe(600);
      expect(layer['raw_customers']?.rows).toBe(200);
      expect(down.status).toBe('failed');
      expect(down.reason).toContain('raw_payments');
      expect(after).toEqual(layer);
    },
    SLOW,
  );
});
