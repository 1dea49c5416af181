/**
 * Write-Audit-Clone on DuckDB through the real Temporal dev server, real dbt and a real DuckDB file.
 * The deploys of one project run in order: each test starts from the prod the previous one left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/steps.js';
import { appendRawOrders } from '../../examples/jaffle_shop/raw-data.js';
import {
  type ExampleProject,
  exampleProject,
  keepHistory,
  listSchemas,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
  withInjectedFault,
} from '../support/harness.js';

/** The tagged models, and with them the seed and the snapshot (every deploy publishes those). */
const PUBLISHED = [
  'customer_revenue',
  'customer_segments',
  'customers_snapshot',
  'dim_customers',
  'fct_orders',
  'util_calendar',
];

describe.sequential('wac deploy on DuckDB', () => {
  let project: ExampleProject;
  let worker: TestWorker;

  beforeAll(async () => {
    project = await exampleProject();
    worker = await startTestWorker('test-workflow');
  });
  afterAll(async () => worker?.stop());

  it('publishes the tagged tables and views so prod holds the same rows as staging', async () => {
    const result = await worker.deploy({ projectDir: project.dir });

    expect(result.status).toBe('published');
    expect(result.audit?.passed).toBe(true);
    const prod = await snapshotSchema(project.database, 'analytics');
    const staging = await snapshotSchema(project.database, 'analytics_staging');
    expect(Object.keys(prod).sort()).toEqual(PUBLISHED);
    for (const [name, relation] of Object.entries(prod)) {
      expect(relation, name).toEqual(staging[name]);
    }
    expect(prod['customer_revenue']?.kind).toBe('view');
    expect(prod['fct_orders']?.rows).toBe(600);
    // Staging views (stg_*) are not published.
    expect(Object.keys(staging)).toContain('stg_orders');
    expect(result.published).toHaveLength(6);
    expect(result.backup?.location.schema).toMatch(/^dbt_deploy_backup__prod_/);

    await keepHistory(worker, result.workflowId, 'wac-published');
  });

  it('stops before prod when the audit fails, leaves prod byte-for-byte unchanged and names the failing test', async () => {
    const before = await snapshotSchema(project.database, 'analytics');
    const schemasBefore = await listSchemas(project.database);

    const result = await worker.deploy({ projectDir: project.dir, vars: '{break_audit: true}' });

    await keepHistory(worker, result.workflowId, 'wac-audit-failed');
    expect(result.status).toBe('failed');
    expect(result.reason).toContain('accepted_values_stg_orders_status');
    expect(result.audit?.passed).toBe(false);
    expect(result.audit?.blocking.map((n) => n.status)).toContain('fail');
    // Tests downstream of the failure are skipped by dbt, and skipped blocks as well.
    expect(result.audit?.tests['skipped'] ?? 0).toBeGreaterThan(0);
    expect(result.steps.find((s) => s.id === 'publish-tables')?.status).toBe('skipped');
    expect(await snapshotSchema(project.database, 'analytics')).toEqual(before);
    expect(await listSchemas(project.database)).toEqual(schemasBefore);
  });

  it('restores prod to its previous contents when a step after the backup fails', async () => {
    const before = await snapshotSchema(project.database, 'analytics');
    await appendRawOrders(project.database, { orders: 40 });
    const faulty = await startTestWorker('test-workflow', withInjectedFault('verifyProd'));
    try {
      const result = await faulty.deploy({ projectDir: project.dir });

      await keepHistory(faulty, result.workflowId, 'wac-rolled-back');
      expect(result.status).toBe('rolled_back');
      expect(result.reason).toContain('injected fault in verifyProd');
      expect(result.steps.find((s) => s.id === 'publish-tables')?.status).toBe('compensated');
      // The new orders reached staging, and the failed deploy's copy of them is gone from prod.
      const staging = await snapshotSchema(project.database, 'analytics_staging');
      expect(staging['fct_orders']?.rows).toBe(640);
      expect(await snapshotSchema(project.database, 'analytics')).toEqual(before);
      // The backup served its purpose and was dropped after the restore.
      expect(
        (await listSchemas(project.database)).filter((s) => s.includes(result.deployId.replace(/-/g, '_'))),
      ).toEqual([]);
    } finally {
      await faulty.stop();
    }
  });

  it('publishes the new rows on the next healthy deploy', async () => {
    const result = await worker.deploy({ projectDir: project.dir });

    expect(result.status).toBe('published');
    const prod = await snapshotSchema(project.database, 'analytics');
    expect(prod['fct_orders']?.rows).toBe(640);
    expect(prod).toEqual(
      Object.fromEntries(
        Object.entries(await snapshotSchema(project.database, 'analytics_staging')).filter(
          ([name]) => name in prod,
        ),
      ),
    );
  });

  it('publishes the same relations when its check step ran on code from before the check compiled for prod', async () => {
    await appendRawOrders(project.database, { orders: 10 });
    // A deploy in flight across an upgrade: its check listed the selection only, so its build lists
    // the snapshots and its selection compiles for prod themselves, as they did then.
    const real = createActivities();
    const older = await startTestWorker('test-workflow', {
      ...real,
      checkPublishSelection: ({ args, ...request }) =>
        real.checkPublishSelection({ ...request, args: { prodTarget: args.prodTarget } }),
    });
    try {
      const result = await older.deploy({ projectDir: project.dir });

      expect(result.status, result.reason).toBe('published');
      expect(result.steps.find((s) => s.id === 'build')?.summary).toContain(
        '1 snapshots copied from prod first',
      );
      const prod = await snapshotSchema(project.database, 'analytics');
      expect(Object.keys(prod).sort()).toEqual(PUBLISHED);
      expect(prod['customer_revenue']?.kind).toBe('view');
      expect(prod['fct_orders']?.rows).toBe(650);
      const staging = await snapshotSchema(project.database, 'analytics_staging');
      for (const [name, relation] of Object.entries(prod)) expect(relation, name).toEqual(staging[name]);
    } finally {
      await older.stop();
    }
  });

  it('lets a clone-back deploy follow it: what prod lacks (the raw layer) is built and published too', async () => {
    await appendRawOrders(project.database, { orders: 5 });
    // wac published only the tagged models, so prod has no raw tables for clone-back's sync to copy;
    // clone-back rebuilds only what changed, and must build what the sync could not bring.
    expect(Object.keys(await snapshotSchema(project.database, 'analytics'))).not.toContain('raw_orders');

    const result = await worker.deploy({ projectDir: project.dir, strategy: 'clone-back' });

    expect(result.status, result.reason).toBe('published');
    expect(result.steps.find((s) => s.id === 'build')?.summary).toContain('that prod lacks');
    const prod = await snapshotSchema(project.database, 'analytics');
    expect(prod['raw_orders']?.rows).toBe(655);
    expect(prod['fct_orders']?.rows).toBe(655);
    const staging = await snapshotSchema(project.database, 'analytics_staging');
    for (const [name, relation] of Object.entries(prod)) expect(relation, name).toEqual(staging[name]);
  });
});
