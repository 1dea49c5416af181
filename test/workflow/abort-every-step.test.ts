/**
 * An abort during every step of a plan, the last one included, against the real worker, dbt and a
 * DuckDB file. Each step is held open after its real work is done (a mock that only holds: it changes
 * no result), the abort is accepted, and only then does the step complete: the race where an activity
 * finishes after the cancel request. Every deploy must end `aborted`, its decision recorded, with
 * prod, its backups and its prod-state record exactly as before.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type DeployActivities } from '../../activities/steps.js';
import { decide, deployResult } from '../../client/deploys.js';
import { appendRawOrders } from '../../examples/jaffle_shop/raw-data.js';
import { planDeploy } from '../../workflows/strategies/index.js';
import {
  type ExampleProject,
  exampleProject,
  listSchemas,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
} from '../support/harness.js';
import { deployInput } from '../unit/deploy-input.js';

const PROD = 'analytics';
/**
 * wap: its last prod change is a dbt build, and its last step records prod's state. The input names
 * its publish selection, as every input the CLI makes does, so the plan is the one the worker runs.
 */
const PLAN = planDeploy(
  deployInput({
    strategy: 'wap',
    targets: { prod: 'prod', staging: 'staging', audit: 'audit' },
    publish: { tags: ['mart', 'utils'] },
  }),
);

interface Hold {
  reached: Promise<void>;
  release(): void;
}

/**
 * MOCK (fault injection): the real activities, except that the step named by `at` is held after its
 * real work, heartbeating and ignoring the cancel, until the test releases it. Only the timing is
 * faked; every step does its real work and returns its real result.
 */
function mockHoldingActivities(): { activities: DeployActivities; at(stepId: string): Hold } {
  const real = createActivities();
  let pending: { stepId: string; reached: () => void; released: Promise<void> } | undefined;
  const activities = Object.fromEntries(
    Object.entries(real).map(([name, run]) => [
      name,
      async (request: { stepId?: string }) => {
        const result: unknown = await (run as (r: unknown) => Promise<unknown>)(request);
        const hold = pending;
        if (hold && request.stepId === hold.stepId) {
          pending = undefined;
          hold.reached();
          const context = Context.current();
          const beat = setInterval(() => context.heartbeat(), 500);
          try {
            await hold.released;
          } finally {
            clearInterval(beat);
          }
        }
        return result;
      },
    ]),
  ) as unknown as DeployActivities;
  return {
    activities,
    at(stepId) {
      let reached!: () => void;
      let release!: () => void;
      const hold: Hold = {
        reached: new Promise<void>((resolve) => (reached = resolve)),
        release: () => release(),
      };
      pending = { stepId, reached, released: new Promise<void>((resolve) => (release = resolve)) };
      return hold;
    },
  };
}

async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe.sequential('an abort during every step of a wap deploy on DuckDB', () => {
  const holding = mockHoldingActivities();
  let project: ExampleProject;
  let worker: TestWorker;
  let prodBefore: Awaited<ReturnType<typeof snapshotSchema>>;
  let backupsBefore: string[];
  let stateBefore: string;
  const stateRecord = () =>
    readFile(join(project.dir, 'target', 'dbt-deploy', 'state', 'prod', 'manifest.json'), 'utf8');
  const backups = async () => (await listSchemas(project)).filter((s) => s.startsWith('dbt_deploy_backup__'));

  beforeAll(async () => {
    [project, worker] = await Promise.all([
      exampleProject(),
      startTestWorker('test-abort', holding.activities),
    ]);
  });
  afterAll(async () => worker?.stop());

  it('publishes a first deploy: the prod every abort below must leave as it is', async () => {
    const result = await worker.deploy({ projectDir: project.dir, strategy: 'wap' });
    expect(result.status, result.reason).toBe('published');
    prodBefore = await snapshotSchema(project, PROD);
    backupsBefore = await backups();
    stateBefore = await stateRecord();
    // New source rows: a deploy that got through would change prod's fct_orders.
    await appendRawOrders(project.raw, { orders: 40 });
    expect(PLAN.steps.map((s) => s.id)).toEqual([
      'check-publish',
      'resolve',
      'build',
      'audit',
      'select',
      'diff',
      'backup',
      'publish',
      'verify',
    ]);
  });

  it.each(PLAN.steps.map((s) => [s.id, s.touches] as const))(
    'abort during %s (touches %s), accepted before the step completes: aborted, prod restored',
    async (stepId, touches) => {
      const hold = holding.at(stepId);
      const { handle } = await worker.start({ projectDir: project.dir, strategy: 'wap' });
      await within(180_000, `step ${stepId} to run`, hold.reached);
      const decision = await decide(worker.client, 'jaffle_shop', 'prod', 'abort', {
        by: 'tester',
        note: `during ${stepId}`,
      });
      expect(decision).toMatchObject({ kind: 'aborted', by: 'tester' });
      hold.release();
      const result = await deployResult(handle);

      expect(result.status, result.reason).toBe('aborted');
      expect(result.decision).toMatchObject({ kind: 'aborted', by: 'tester', note: `during ${stepId}` });
      expect(result.reason).toBe(`aborted by tester: during ${stepId}`);
      expect(result.published).toEqual([]);
      // The held step did its work and completed; the saga undid it if it changed prod or kept a backup.
      const changes = touches === 'prod' || touches === 'backup';
      expect(result.steps.find((s) => s.id === stepId)?.status).toBe(changes ? 'compensated' : 'completed');
      const index = PLAN.steps.findIndex((s) => s.id === stepId);
      expect(result.steps.slice(index + 1).every((s) => s.status === 'skipped')).toBe(true);
      expect(await snapshotSchema(project, PROD)).toEqual(prodBefore);
      expect(await backups()).toEqual(backupsBefore);
      expect(await stateRecord()).toBe(stateBefore);
    },
  );

  it('refuses an abort once every step is done, and the deploy publishes the new rows', async () => {
    const hold = holding.at('verify');
    const { handle } = await worker.start({ projectDir: project.dir, strategy: 'wap' });
    await within(180_000, 'the last step to run', hold.reached);
    hold.release();
    const result = await deployResult(handle);
    expect(result.status, result.reason).toBe('published');
    await expect(decide(worker.client, 'jaffle_shop', 'prod', 'abort', { by: 'late' })).rejects.toThrow(
      /nothing to abort|is running/,
    );
    expect((await snapshotSchema(project, PROD))['fct_orders']?.rows).toBe(
      prodBefore['fct_orders']!.rows + 40,
    );
    expect(await stateRecord()).not.toBe(stateBefore);
  });
});
