/**
 * The strategy scenarios, written once and run against each engine by duckdb.test.ts and
 * postgres.test.ts. Every check reads the warehouse with a plain client: which relations exist, their
 * rows and an md5 over their sorted rows.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendRawOrders } from '../../examples/jaffle_shop/raw-data.js';
import type { DeployActivities } from '../../activities/steps.js';
import type { DeployResult } from '../../workflows/types.js';
import {
  type Engine,
  type ExampleProject,
  exampleProject,
  keepHistory,
  listSchemas,
  look,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
  withInjectedFault,
} from '../support/harness.js';
import type { TestNamespace } from '../support/namespaces.js';

const PROD = 'analytics';
const STAGING = 'analytics_staging';
const AUDIT = 'analytics_audit';
const TAGGED = ['customer_revenue', 'dim_customers', 'fct_orders', 'util_calendar'];
const EVERY_MODEL = [
  ...TAGGED,
  'raw_customers',
  'raw_orders',
  'raw_payments',
  'stg_customers',
  'stg_orders',
  'stg_payments',
].sort();

type Strategy = 'blue-green' | 'clone-back' | 'wap' | 'wac';

/** Which relations each strategy puts in prod on a first deploy of the example. */
const PUBLISHED: Record<Strategy, string[]> = {
  'blue-green': EVERY_MODEL,
  'clone-back': EVERY_MODEL,
  wap: TAGGED,
  wac: TAGGED,
};

/** The step after publish where a fault is injected, per strategy: [activity, step id]. */
const AFTER_PUBLISH: Record<Strategy, [keyof DeployActivities, string]> = {
  'blue-green': ['verifyProd', 'verify'],
  'clone-back': ['verifyProd', 'verify'],
  wap: ['audit', 'verify'],
  wac: ['verifyProd', 'verify'],
};

async function backupSchemas(project: ExampleProject): Promise<string[]> {
  return (await listSchemas(project)).filter((s) => s.startsWith('dbt_deploy_backup__'));
}

/** Every source order is in prod's fct_orders exactly once: nothing lost, nothing duplicated. */
async function orderCoverage(
  project: ExampleProject,
): Promise<{ rows: number; distinct: number; missing: number }> {
  const [row] = await look(project, (read) =>
    read(
      `SELECT (SELECT count(*) FROM ${PROD}.fct_orders) AS n, (SELECT count(DISTINCT order_id) FROM ${PROD}.fct_orders) AS d, ` +
        `(SELECT count(*) FROM raw.orders o WHERE NOT EXISTS (SELECT 1 FROM ${PROD}.fct_orders f WHERE f.order_id = o.id)) AS missing`,
    ),
  );
  return { rows: Number(row?.['n']), distinct: Number(row?.['d']), missing: Number(row?.['missing']) };
}

function pick<T>(record: Record<string, T>, names: string[]): Record<string, T> {
  return Object.fromEntries(names.map((n) => [n, record[n] as T]));
}

/** strategy x engine: publish, a failing audit, and a fault after publish, each checked in the warehouse. */
export function strategyMatrix(
  engine: Engine,
  namespace: TestNamespace,
  strategies: readonly Strategy[],
  /** A failing audit stops every strategy before prod in the same code path; one engine checks them all. */
  failingAuditFor: readonly Strategy[] = strategies,
): void {
  describe.each(strategies)(`%s on ${engine}`, (strategy) => {
    let project: ExampleProject;
    let worker: TestWorker;
    const deploy = (extra: { vars?: string } = {}) =>
      worker.deploy({ projectDir: project.dir, strategy, ...extra });

    beforeAll(async () => {
      [project, worker] = await Promise.all([exampleProject(engine), startTestWorker(namespace)]);
    });
    afterAll(async () => worker?.stop());

    it('publishes: prod holds exactly the expected relations and rows, staging/audit/backup as the policy says', async () => {
      const result = await deploy();

      expect(result.status, result.reason).toBe('published');
      const prod = await snapshotSchema(project, PROD);
      expect(Object.keys(prod).sort()).toEqual(PUBLISHED[strategy]);
      expect(prod['customer_revenue']?.kind).toBe('view');
      expect(await orderCoverage(project)).toEqual({ rows: 600, distinct: 600, missing: 0 });
      const schemas = await listSchemas(project);
      const built = strategy === 'wap' ? AUDIT : STAGING;
      expect(schemas.includes(strategy === 'wap' ? STAGING : AUDIT), 'untouched location').toBe(false);
      if (strategy === 'blue-green' && engine === 'postgres') {
        // The swap renamed staging to prod: there is no staging left, and no copy was made.
        expect(schemas).not.toContain(STAGING);
      } else {
        const candidate = await snapshotSchema(project, built);
        expect(Object.keys(candidate).sort()).toEqual(EVERY_MODEL);
        expect(pick(prod, TAGGED)).toEqual(pick(candidate, TAGGED));
        if (strategy !== 'wap') expect(prod).toEqual(pick(candidate, Object.keys(prod)));
      }
      expect(await backupSchemas(project)).toHaveLength(1);
      expect(result.backup?.deployId).toBe(result.deployId);
      expect(result.published).toHaveLength(PUBLISHED[strategy].length);
    });

    // Registered only where it is checked, so the summary reports no skipped tests.
    if (failingAuditFor.includes(strategy)) {
      it('stops at a failing audit with prod unchanged', async () => {
        const before = await snapshotSchema(project, PROD);
        const backupsBefore = await backupSchemas(project);

        const result = await deploy({ vars: '{break_audit: true}' });

        expect(result.status).toBe('failed');
        expect(result.reason).toContain('accepted_values_stg_orders_status');
        expect(result.steps.filter((s) => s.status === 'completed').map((s) => s.id)).not.toContain('backup');
        expect(await snapshotSchema(project, PROD)).toEqual(before);
        expect(await backupSchemas(project)).toEqual(backupsBefore);
      });
    }

    it('restores prod exactly when a step after publish fails', async () => {
      const before = await snapshotSchema(project, PROD);
      const backupsBefore = await backupSchemas(project);
      await appendRawOrders(project.raw, { orders: 40 });
      const [activity, stepId] = AFTER_PUBLISH[strategy];
      const faulty = await startTestWorker(namespace, withInjectedFault(activity, stepId));
      let result: DeployResult;
      try {
        result = await faulty.deploy({ projectDir: project.dir, strategy });
      } finally {
        await faulty.stop();
      }

      expect(result.status).toBe('rolled_back');
      expect(result.reason).toContain(`injected fault in ${activity}`);
      const changedProd = result.steps.filter((s) => s.status === 'compensated').map((s) => s.id);
      expect(changedProd.length).toBeGreaterThan(0);
      expect(await snapshotSchema(project, PROD)).toEqual(before);
      expect(await backupSchemas(project)).toEqual(backupsBefore);
    });
  });
}

/**
 * The article's blue/green data-loss case: incremental models deployed at T, T+1 and T+2 with new
 * source rows in between must hold every source row exactly once. Then rollback, twice.
 */
export function incrementalAndRollback(engine: Engine, namespace: TestNamespace): void {
  describe.sequential(`blue-green at T, T+1, T+2 and rollback on ${engine}`, () => {
    let project: ExampleProject;
    let worker: TestWorker;
    const deploys: DeployResult[] = [];
    const prodAfter: Array<Awaited<ReturnType<typeof snapshotSchema>>> = [];

    beforeAll(async () => {
      [project, worker] = await Promise.all([exampleProject(engine), startTestWorker(namespace)]);
    });
    afterAll(async () => worker?.stop());

    it('keeps every source row, none lost and none duplicated, across three deploys', async () => {
      for (const [at, expected] of [
        ['T', 600],
        ['T+1', 650],
        ['T+2', 700],
      ] as const) {
        if (at !== 'T') await appendRawOrders(project.raw, { orders: 50 });
        const result = await worker.deploy({ projectDir: project.dir, strategy: 'blue-green' });
        expect(result.status, `${at}: ${result.reason}`).toBe('published');
        expect(await orderCoverage(project), at).toEqual({ rows: expected, distinct: expected, missing: 0 });
        deploys.push(result);
        prodAfter.push(await snapshotSchema(project, PROD));
      }
      if (engine === 'duckdb') await keepHistory(worker, deploys[2]!.workflowId, 'blue-green-published');
    });

    it('rolls back to the state before the latest deploy, and rolling back twice gives the same prod', async () => {
      const latest = deploys[2]!.deployId;
      const first = await worker.rollback({ projectDir: project.dir });
      expect(first.status, first.reason).toBe('published');
      expect(first.strategy).toBe('rollback');
      expect(first.steps[0]?.summary).toContain(latest);
      expect(await snapshotSchema(project, PROD)).toEqual(prodAfter[1]);
      expect((await orderCoverage(project)).rows).toBe(650);

      const again = await worker.rollback({ projectDir: project.dir, to: latest });
      expect(again.status, again.reason).toBe('published');
      expect(await snapshotSchema(project, PROD)).toEqual(prodAfter[1]);
      // backups.keep (3) bounds what stays per operation: the 3 deploy backups and the 2 rollbacks' own.
      expect((await backupSchemas(project)).length).toBe(5);
      if (engine === 'duckdb') await keepHistory(worker, again.workflowId, 'rollback-published');
    });

    it('refuses to roll back to a deploy whose backup is not kept, touching nothing', async () => {
      const before = await snapshotSchema(project, PROD);
      const result = await worker.rollback({ projectDir: project.dir, to: 'prod-19990101t000000-0000' });
      expect(result.status).toBe('failed');
      expect(result.reason).toMatch(/no backup of deploy prod-19990101t000000-0000 is kept \(kept: /);
      expect(await snapshotSchema(project, PROD)).toEqual(before);
    });
  });
}

/** The raw layer: deploys build from it, a refresh with a source down keeps the last good copy. */
export function mirrorLayer(engine: Engine, namespace: TestNamespace): void {
  describe.sequential(`mirror on ${engine}`, () => {
    let project: ExampleProject;
    let worker: TestWorker;
    const rawLayer = async () =>
      pick(await snapshotSchema(project, PROD), ['raw_customers', 'raw_orders', 'raw_payments']);

    beforeAll(async () => {
      [project, worker] = await Promise.all([exampleProject(engine), startTestWorker(namespace)]);
      const config = join(project.dir, 'deploy.yml');
      await writeFile(config, `${await readFile(config, 'utf8')}mirror:\n  select: ['tag:raw']\n`);
    });
    afterAll(async () => worker?.stop());

    it('refuses a deploy before the first refresh, touching nothing', async () => {
      const result = await worker.deploy({ projectDir: project.dir });
      expect(result.status).toBe('failed');
      expect(result.reason).toContain(
        'prod has no raw layer yet: run `dbt-deploy mirror refresh --env prod` first',
      );
      expect(await snapshotSchema(project, PROD)).toEqual({});
    });

    it('refreshes the raw layer, and deploys then build from it instead of the live sources', async () => {
      const refresh = await worker.refreshMirror({ projectDir: project.dir });
      expect(refresh.status, refresh.reason).toBe('published');
      expect(refresh.strategy).toBe('mirror');
      expect((await rawLayer())['raw_orders']?.rows).toBe(600);

      await appendRawOrders(project.raw, { orders: 50 });
      const deploy = await worker.deploy({ projectDir: project.dir });
      expect(deploy.status, deploy.reason).toBe('published');
      // The 50 new source orders are not in prod: the deploy read the raw layer, not the source.
      expect((await orderCoverage(project)).rows).toBe(600);
    });

    it('keeps the last good raw copy when a source is down, and the next deploy still publishes', async () => {
      const before = await rawLayer();
      await look(project.raw, (read) => read('DROP TABLE raw.payments'));

      const refresh = await worker.refreshMirror({ projectDir: project.dir });
      expect(refresh.status).toBe('failed');
      expect(refresh.reason).toContain('raw_payments');
      expect(await rawLayer()).toEqual(before);
      if (engine === 'duckdb') await keepHistory(worker, refresh.workflowId, 'mirror-source-down');

      const deploy = await worker.deploy({ projectDir: project.dir });
      expect(deploy.status, deploy.reason).toBe('published');
      expect((await orderCoverage(project)).rows).toBe(600);
    });
  });
}
