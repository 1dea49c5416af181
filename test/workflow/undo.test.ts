/**
 * When the undo itself goes wrong, and what a restore leaves behind, on DuckDB with the real worker:
 * a restore that fails after publish must end `failed` with the backup kept and say so; and after
 * any restore, the prod-state record (`state/<env>/manifest.json`, what `state:modified` compares
 * with) must describe the prod the warehouse holds, not the deploy that was undone.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type DeployActivities } from '../../activities/steps.js';
import { appendRawOrders } from '../../examples/jaffle_shop/raw-data.js';
import {
  type ExampleProject,
  exampleProject,
  listSchemas,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
} from '../support/harness.js';

const PROD = 'analytics';

type Fault = { activity: keyof DeployActivities; stepId?: string; after?: boolean };

/**
 * MOCK (fault injection): the named activities fail with a non-retryable error, before doing anything
 * or (`after`) once their real work is done, as when a worker dies after committing but before
 * reporting. A failing restore cannot be produced on demand against a healthy warehouse.
 */
function mockFaults(...faults: Fault[]): DeployActivities {
  const real = createActivities();
  const activities: Record<string, unknown> = { ...real };
  for (const { activity, stepId, after } of faults) {
    const original = real[activity] as (request: { stepId: string }) => Promise<unknown>;
    activities[activity] = async (request: { stepId: string }) => {
      if (stepId && request.stepId !== stepId) return original(request);
      if (after) await original(request);
      throw ApplicationFailure.nonRetryable(`injected fault in ${activity}`, 'InjectedFault');
    };
  }
  return activities as DeployActivities;
}

describe.sequential('undo on DuckDB', () => {
  let project: ExampleProject;
  let worker: TestWorker;
  const stateRecord = () =>
    readFile(join(project.dir, 'target', 'dbt-deploy', 'state', 'prod', 'manifest.json'), 'utf8');
  const backups = async () => (await listSchemas(project)).filter((s) => s.startsWith('dbt_deploy_backup__'));

  async function withFaultyWorker<T>(faults: Fault[], work: (w: TestWorker) => Promise<T>): Promise<T> {
    const faulty = await startTestWorker('test-undo', mockFaults(...faults));
    try {
      return await work(faulty);
    } finally {
      await faulty.stop();
    }
  }

  beforeAll(async () => {
    [project, worker] = await Promise.all([exampleProject(), startTestWorker('test-undo')]);
  });
  afterAll(async () => worker?.stop());

  it('a wap verify that recorded the new prod state, then failed: prod and its state record both go back', async () => {
    const first = await worker.deploy({ projectDir: project.dir, strategy: 'wap' });
    expect(first.status, first.reason).toBe('published');
    const prodBefore = await snapshotSchema(project, PROD);
    const stateBefore = await stateRecord();
    await appendRawOrders(project.raw, { orders: 40 });

    // The verify step does its real work (records the new manifest as prod's state), then fails.
    const result = await withFaultyWorker([{ activity: 'audit', stepId: 'verify', after: true }], (w) =>
      w.deploy({ projectDir: project.dir, strategy: 'wap' }),
    );

    expect(result.status).toBe('rolled_back');
    expect(result.reason).toContain('injected fault in audit');
    expect(await snapshotSchema(project, PROD)).toEqual(prodBefore);
    // state:modified must compare with the manifest of what prod holds again, not the undone deploy's.
    expect(await stateRecord()).toBe(stateBefore);
  }, 900_000);

  it('a restore that fails after publish: failed, the rollback failure named, the backup kept', async () => {
    const prodBefore = await snapshotSchema(project, PROD);
    const stateBefore = await stateRecord();
    await appendRawOrders(project.raw, { orders: 30 });

    const result = await withFaultyWorker([{ activity: 'verifyProd' }, { activity: 'restoreProd' }], (w) =>
      w.deploy({ projectDir: project.dir, strategy: 'wac' }),
    );

    expect(result.status).toBe('failed');
    expect(result.reason).toBe(
      'injected fault in verifyProd; then the rollback failed (restore "prod" from the backup: injected fault in restoreProd), the backup was kept: prod needs attention',
    );
    expect(result.steps.find((s) => s.id === 'publish-tables')?.status).toBe('completed');
    // The backup was not dropped: it is in the result and in the warehouse, ready for `rollback`.
    expect(result.backup?.deployId).toBe(result.deployId);
    expect(await backups()).toContain(result.backup?.location.schema);
    // Prod holds the unverified publish: that is what "needs attention" means.
    expect((await snapshotSchema(project, PROD))['fct_orders']?.rows).toBe(
      prodBefore['fct_orders']!.rows + 70,
    );

    // What the operator does next: roll back to before that deploy, from the kept backup.
    const rollback = await worker.rollback({ projectDir: project.dir, to: result.deployId });
    expect(rollback.status, rollback.reason).toBe('published');
    expect(await snapshotSchema(project, PROD)).toEqual(prodBefore);
    expect(await stateRecord()).toBe(stateBefore);
  }, 900_000);
});
