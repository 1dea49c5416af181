/**
 * The strategy scenarios, written once and run against each engine by the duckdb-*.test.ts and
 * postgres-*.test.ts files (one file per scenario, so the run spreads them over its workers). Every check reads the warehouse with a plain client: which relations exist, their
 * rows and an md5 over their sorted rows.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendRawOrders, changeCustomerEmails } from '../../examples/jaffle_shop/raw-data.js';
import type { DeployActivities } from '../../activities/steps.js';
import { STATE_READS } from '../../workflows/state.js';
import type { DeployResult } from '../../workflows/types.js';
import {
  type Engine,
  type ExampleProject,
  exampleProject,
  keepHistory,
  listSchemas,
  look,
  scheduledActivities,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
  withInjectedFault,
} from '../support/harness.js';
import type { TestNamespace } from '../support/namespaces.js';

export const PROD = 'analytics';
export const STAGING = 'analytics_staging';
export const AUDIT = 'analytics_audit';
export const TAGGED = ['customer_revenue', 'dim_customers', 'fct_orders', 'util_calendar'];
/** The example's seed (read by the customer_revenue view) and snapshot (read by dim_customers). */
export const SEED = 'customer_segments';
export const SNAPSHOT = 'customers_snapshot';
/** What every deploy publishes, whatever the strategy: the tagged models, the seeds and the snapshots. */
export const WITH_EVERY_DEPLOY = [...TAGGED, SEED, SNAPSHOT].sort();
export const EVERY_MODEL = [
  ...WITH_EVERY_DEPLOY,
  'raw_customers',
  'raw_orders',
  'raw_payments',
  'stg_customers',
  'stg_orders',
  'stg_payments',
].sort();

type Strategy = 'blue-green' | 'clone-back' | 'wap' | 'wac';

/** A test's time limit grows with the operations it runs: vitest's testTimeout is one deploy's. */
const perDeploy = (operations: number): number => operations * 240_000;

/** Which relations each strategy puts in prod on a first deploy of the example. */
const PUBLISHED: Record<Strategy, string[]> = {
  'blue-green': EVERY_MODEL,
  'clone-back': EVERY_MODEL,
  wap: WITH_EVERY_DEPLOY,
  wac: WITH_EVERY_DEPLOY,
};

/** The step after publish where a fault is injected, per strategy: [activity, step id]. */
const AFTER_PUBLISH: Record<Strategy, [keyof DeployActivities, string]> = {
  'blue-green': ['verifyProd', 'verify'],
  'clone-back': ['verifyProd', 'verify'],
  wap: ['audit', 'verify'],
  wac: ['verifyProd', 'verify'],
};

export async function backupSchemas(project: ExampleProject): Promise<string[]> {
  return (await listSchemas(project)).filter((s) => s.startsWith('dbt_deploy_backup__'));
}

/** Every source order is in prod's fct_orders exactly once: nothing lost, nothing duplicated. */
export async function orderCoverage(
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

/** The seed's rows in prod, and what the view reading it makes of them (every customer in one segment). */
export async function seedInProd(
  project: ExampleProject,
): Promise<{ segments: string[]; customers: number }> {
  return look(project, async (read) => {
    const rows = await read(
      `SELECT customer_segment, min_orders, max_orders FROM ${PROD}.${SEED} ORDER BY min_orders`,
    );
    const [revenue] = await read(`SELECT sum(customers) AS n FROM ${PROD}.customer_revenue`);
    return {
      segments: rows.map(
        (r) => `${String(r['customer_segment'])}:${String(r['min_orders'])}-${String(r['max_orders'] ?? '')}`,
      ),
      customers: Number(revenue?.['n']),
    };
  });
}

interface SnapshotVersion {
  id: number;
  email: string;
  validFrom: string;
  validTo: string | null;
}

/** Every version prod's snapshot holds of the given customers, oldest first. */
async function snapshotVersions(project: ExampleProject, ids: readonly number[]): Promise<SnapshotVersion[]> {
  const rows = await look(project, (read) =>
    read(
      `SELECT id, email, cast(dbt_valid_from AS VARCHAR) AS valid_from, cast(dbt_valid_to AS VARCHAR) AS valid_to ` +
        `FROM ${PROD}.${SNAPSHOT} WHERE id IN (${ids.join(', ')}) ORDER BY id, dbt_valid_from`,
    ),
  );
  return rows.map((r) => ({
    id: Number(r['id']),
    email: String(r['email']),
    validFrom: String(r['valid_from']),
    validTo: r['valid_to'] === null ? null : String(r['valid_to']),
  }));
}

/**
 * Nothing that grows with the project goes through the deploy's history: each activity was sent only
 * the state fields it reads, the publish set and fingerprints as file references, backups as handles
 * without their entries, and no activity handed such a list back. (A project of a few thousand models
 * would otherwise cross Temporal's payload limit; bench/history.ts measures the sizes.)
 */
export async function expectReferencesOnly(worker: TestWorker, result: DeployResult): Promise<void> {
  const activities = await scheduledActivities(worker, result.workflowId);
  const steps = activities.filter((a) => a.activityType in STATE_READS);
  expect(steps.length).toBeGreaterThan(3);
  for (const { activityType, input, result: outcome } of steps) {
    const { state } = (input ?? {}) as { state?: Record<string, unknown> };
    const reads: readonly string[] = STATE_READS[activityType as keyof typeof STATE_READS];
    for (const field of Object.keys(state ?? {}))
      expect(reads, `${activityType} was sent ${field}`).toContain(field);
    const returned = ((outcome ?? {}) as { state?: Record<string, unknown> }).state ?? {};
    for (const carried of [state ?? {}, returned]) {
      expect(carried, activityType).not.toHaveProperty('publishSet');
      expect(carried, activityType).not.toHaveProperty('expected');
      expect(carried, activityType).not.toHaveProperty('backup.entries');
      expect(carried, activityType).not.toHaveProperty('restoreFrom.entries');
    }
  }
  expect(result.backup ?? {}).not.toHaveProperty('entries');
}

export function pick<T>(record: Record<string, T>, names: string[]): Record<string, T> {
  return Object.fromEntries(names.map((n) => [n, record[n] as T]));
}

/**
 * strategy x engine: publish, a failing audit, a fault after publish, and the snapshot's history across
 * two published deploys, each checked in the warehouse.
 */
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
    /** The snapshot's versions of the customers whose email changes, as the first deploy published them. */
    let versionsAtT: SnapshotVersion[] = [];
    const changed = [3, 17] as const;
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
      // The seed is in prod with the CSV's rows, and the published view reading it works there.
      expect(await seedInProd(project)).toEqual({
        segments: ['prospect:0-0', 'new:1-1', 'returning:2-4', 'loyal:5-'],
        customers: 200,
      });
      // The snapshot's first run: one open version per source customer.
      expect(prod[SNAPSHOT]).toMatchObject({ kind: 'table', rows: 200 });
      versionsAtT = await snapshotVersions(project, changed);
      expect(versionsAtT.map((v) => [v.id, v.validTo])).toEqual(changed.map((id) => [id, null]));
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
      expect(result.publishedCount).toBe(PUBLISHED[strategy].length);
      await expectReferencesOnly(worker, result);
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

    it("keeps the snapshot's history: after a source change the next deploy closes the old version and opens a new one", async () => {
      await changeCustomerEmails(project.raw, changed);

      const result = await deploy();

      expect(result.status, result.reason).toBe('published');
      const versions = await snapshotVersions(project, changed);
      expect(versions).toHaveLength(2 * changed.length);
      for (const [index, id] of changed.entries()) {
        const [old, current] = versions.filter((v) => v.id === id);
        // The version the first deploy recorded is still there, unchanged but for its end: the
        // snapshot was extended from prod's copy, not rebuilt from scratch.
        expect(old).toEqual({ ...versionsAtT[index], validTo: current?.validFrom });
        expect(current?.validTo).toBeNull();
        expect(current?.email).toBe(`new.${old?.email}`);
        expect(current!.validFrom > old!.validFrom).toBe(true);
      }
      const prod = await snapshotSchema(project, PROD);
      expect(prod[SNAPSHOT]?.rows).toBe(200 + changed.length);
      const [profiles] = await look(project, (read) =>
        read(`SELECT sum(profile_changes) AS n FROM ${PROD}.dim_customers`),
      );
      expect(Number(profiles?.['n'])).toBe(changed.length);
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

    it(
      'keeps every source row, none lost and none duplicated, across three deploys',
      async () => {
        for (const [at, expected] of [
          ['T', 600],
          ['T+1', 650],
          ['T+2', 700],
        ] as const) {
          if (at !== 'T') await appendRawOrders(project.raw, { orders: 50 });
          const result = await worker.deploy({ projectDir: project.dir, strategy: 'blue-green' });
          expect(result.status, `${at}: ${result.reason}`).toBe('published');
          expect(await orderCoverage(project), at).toEqual({
            rows: expected,
            distinct: expected,
            missing: 0,
          });
          deploys.push(result);
          prodAfter.push(await snapshotSchema(project, PROD));
        }
        if (engine === 'duckdb') await keepHistory(worker, deploys[2]!.workflowId, 'blue-green-published');
      },
      perDeploy(3),
    );

    it(
      'rolls back to the state before the latest deploy, and rolling back twice gives the same prod',
      async () => {
        const latest = deploys[2]!.deployId;
        const first = await worker.rollback({ projectDir: project.dir });
        expect(first.status, first.reason).toBe('published');
        expect(first.strategy).toBe('rollback');
        expect(first.steps[0]?.summary).toContain(latest);
        expect(await snapshotSchema(project, PROD)).toEqual(prodAfter[1]);
        expect((await orderCoverage(project)).rows).toBe(650);

        const again = await worker.rollback({ projectDir: project.dir, to: latest });
        expect(again.status, again.reason).toBe('published');
        await expectReferencesOnly(worker, again);
        expect(await snapshotSchema(project, PROD)).toEqual(prodAfter[1]);
        // backups.keep (3) bounds what stays per operation: the 3 deploy backups and the 2 rollbacks' own.
        expect((await backupSchemas(project)).length).toBe(5);
        if (engine === 'duckdb') await keepHistory(worker, again.workflowId, 'rollback-published');
      },
      perDeploy(2),
    );

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
      pick(await snapshotSchema(project, PROD), ['raw_customers', 'raw_orders', 'raw_payments', SNAPSHOT]);

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

    it(
      'refreshes the raw layer, and deploys then build from it instead of the live sources',
      async () => {
        const refresh = await worker.refreshMirror({ projectDir: project.dir });
        expect(refresh.status, refresh.reason).toBe('published');
        expect(refresh.strategy).toBe('mirror');
        expect((await rawLayer())['raw_orders']?.rows).toBe(600);
        // The snapshot reads the source, so it is part of the raw layer: the refresh published it.
        expect((await rawLayer())[SNAPSHOT]?.rows).toBe(200);

        await appendRawOrders(project.raw, { orders: 50 });
        await changeCustomerEmails(project.raw, [5]);
        const deploy = await worker.deploy({ projectDir: project.dir });
        expect(deploy.status, deploy.reason).toBe('published');
        // The 50 new source orders are not in prod: the deploy read the raw layer, not the source; nor
        // did it run the raw layer's snapshot over the changed customer.
        expect((await orderCoverage(project)).rows).toBe(600);
        expect((await rawLayer())[SNAPSHOT]?.rows).toBe(200);
      },
      perDeploy(2),
    );

    it(
      'keeps the last good raw copy when a source is down, and the next deploy still publishes',
      async () => {
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
      },
      perDeploy(2),
    );
  });
}
