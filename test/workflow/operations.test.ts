/**
 * Operating deploys against the real Temporal server: the approval gate (Updates), abort (with dbt
 * killed), approval timeouts, one deploy per environment (manual and scheduled), and history.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decide, deployProgress, deployResult } from '../../client/deploys.js';
import { DeployInProgress, RequestRejected } from '../../client/errors.js';
import { changeSchedule, createSchedule } from '../../client/schedules.js';
import { prepareDeploy } from '../../client/preflight.js';
import type { DeployResult } from '../../workflows/types.js';
import {
  type ExampleProject,
  exampleProject,
  keepHistory,
  ROOT,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
} from '../support/harness.js';

const PROD = 'analytics';

describe.sequential('operating deploys', () => {
  let project: ExampleProject;
  let worker: TestWorker;
  const results: DeployResult[] = [];
  const configFile = () => join(project.dir, 'deploy.yml');

  beforeAll(async () => {
    [project, worker] = await Promise.all([exampleProject(), startTestWorker('test-ops')]);
  });
  afterAll(async () => worker?.stop());

  async function waitFor<T>(
    what: string,
    probe: () => Promise<T | undefined>,
    timeoutMs = 120_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = await probe().catch(() => undefined);
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  const phaseIs = (handle: WorkflowHandle, phase: string) =>
    waitFor(`phase ${phase}`, async () =>
      (await deployProgress(handle)).phase === phase ? true : undefined,
    );

  async function setApproval(yaml: string): Promise<void> {
    const original = (await readFile(configFile(), 'utf8')).replace(/approval:[\s\S]*$/, '');
    await writeFile(configFile(), `${original}approval:\n${yaml}`);
  }

  it('rejects approve and abort when no deploy runs', async () => {
    await expect(decide(worker.client, 'jaffle_shop', 'prod', 'approve', { by: 'tester' })).rejects.toThrow(
      new RequestRejected('no deploy of jaffle_shop to prod is running: nothing to approve'),
    );
    await expect(decide(worker.client, 'jaffle_shop', 'prod', 'abort', { by: 'tester' })).rejects.toThrow(
      RequestRejected,
    );
  });

  it('waits at the gate after a passing audit, refuses a second deploy, and publishes once approved', async () => {
    const { handle, input } = await worker.start({ projectDir: project.dir, requireApproval: true });
    await expect(decide(worker.client, 'jaffle_shop', 'prod', 'approve', { by: 'early' })).rejects.toThrow(
      /is not waiting for approval \(it is (preparing|building|auditing)\)/,
    );
    await phaseIs(handle, 'awaiting-approval');
    expect(await snapshotSchema(project, PROD)).toEqual({});

    // One deploy per environment: the second is refused with the running one named.
    await expect(worker.start({ projectDir: project.dir })).rejects.toThrow(DeployInProgress);
    await expect(worker.start({ projectDir: project.dir })).rejects.toThrow(
      new RegExp(`already being changed by deploy ${input.deployId}`),
    );

    const decision = await decide(worker.client, 'jaffle_shop', 'prod', 'approve', {
      by: 'ana@data',
      note: 'numbers checked',
    });
    expect(decision).toMatchObject({ kind: 'approved', by: 'ana@data', note: 'numbers checked' });
    await expect(decide(worker.client, 'jaffle_shop', 'prod', 'approve', { by: 'twice' })).rejects.toThrow(
      /not waiting for approval/,
    );
    const result = await deployResult(handle);
    results.push(result);
    await keepHistory(worker, result.workflowId, 'wac-approved');
    expect(result.status).toBe('published');
    expect(result.decision).toMatchObject({ kind: 'approved', by: 'ana@data', note: 'numbers checked' });
    expect((await snapshotSchema(project, PROD))['fct_orders']?.rows).toBe(600);
    expect(result.report).toMatch(/report\.md$/);
    const report = await readFile(result.report!, 'utf8');
    expect(report).toContain('approved by | ana@data');
    expect(JSON.parse(await readFile(result.report!.replace(/\.md$/, '.json'), 'utf8'))).toMatchObject({
      status: 'published',
    });
  });

  it('aborts a deploy waiting at the gate: nothing changes in prod', async () => {
    const before = await snapshotSchema(project, PROD);
    const { handle } = await worker.start({ projectDir: project.dir, requireApproval: true });
    await phaseIs(handle, 'awaiting-approval');
    await decide(worker.client, 'jaffle_shop', 'prod', 'abort', { by: 'bo@data', note: 'wrong day' });
    const result = await deployResult(handle);
    results.push(result);
    expect(result.status).toBe('aborted');
    expect(result.reason).toBe('aborted at the approval gate by bo@data: wrong day');
    expect(await snapshotSchema(project, PROD)).toEqual(before);
  });

  it('aborts a long dbt build: dbt is gone within 10 s and prod is unchanged', async () => {
    const before = await snapshotSchema(project, PROD);
    // A model that keeps dbt busy far longer than the test waits (a CPU-bound count over 10^12 rows).
    const slow = join(project.dir, 'models', 'utils', 'util_slow.sql');
    await writeFile(slow, 'select count(*) as n from range(1000000000000)\n');
    try {
      const { handle } = await worker.start({ projectDir: project.dir });
      const dbtRunning = async () => {
        const { stdout } = await execa('pgrep', ['-f', `dbt build .*${project.dir}`], { reject: false });
        return stdout.trim() ? stdout.trim() : undefined;
      };
      await phaseIs(handle, 'building');
      await waitFor('dbt build to start', dbtRunning);
      // util_slow reads nothing, so dbt starts it at once; by now it is mid-query.
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      await decide(worker.client, 'jaffle_shop', 'prod', 'abort', { by: 'tester', note: 'too slow' });
      // The bound: the dbt process is gone within 10 s of the abort.
      await waitFor('dbt to exit', async () => ((await dbtRunning()) ? undefined : true), 10_000);
      const result = await deployResult(handle);
      results.push(result);
      await keepHistory(worker, result.workflowId, 'wac-aborted-mid-build');
      expect(result.status).toBe('aborted');
      expect(result.reason).toBe('aborted by tester: too slow');
      expect(result.steps.find((s) => s.id === 'build')?.status).toBe('failed');
      expect(await snapshotSchema(project, PROD)).toEqual(before);
    } finally {
      await execa('rm', ['-f', slow]);
    }
  });

  it.each([
    ['abort', 'aborted'],
    ['approve', 'published'],
  ] as const)('applies approval.on_timeout %s when nobody decides in time', async (onTimeout, status) => {
    await setApproval(`  required: true\n  timeout: 3s\n  on_timeout: ${onTimeout}\n`);
    const result = await worker.deploy({ projectDir: project.dir });
    results.push(result);
    expect(result.status).toBe(status);
    expect(result.decision).toMatchObject({
      kind: onTimeout === 'abort' ? 'aborted' : 'approved',
      by: 'approval timeout',
      note: 'no decision within 3s',
    });
    await setApproval('  required: false\n');
  });

  it('runs a schedule triggered twice while its first run is going once, and manual deploys share the guard', async () => {
    const { input } = prepareDeploy({ projectDir: project.dir, requireApproval: true });
    await createSchedule(worker.client, input, '0 6 1 1 *', worker.taskQueue);
    try {
      await changeSchedule(worker.client, 'jaffle_shop', 'prod', 'trigger');
      const handle = worker.client.workflow.getHandle('dbt-deploy-jaffle_shop-prod');
      await phaseIs(handle, 'awaiting-approval');
      await changeSchedule(worker.client, 'jaffle_shop', 'prod', 'trigger');
      await expect(worker.start({ projectDir: project.dir })).rejects.toThrow(DeployInProgress);
      const description = await worker.client.schedule.getHandle('dbt-deploy-jaffle_shop-prod').describe();
      expect(description.info.numActionsSkippedOverlap).toBe(1);
      expect(description.info.runningActions).toHaveLength(1);
      await decide(worker.client, 'jaffle_shop', 'prod', 'abort', { by: 'tester', note: 'scheduled test' });
      results.push(await deployResult(handle));
    } finally {
      await changeSchedule(worker.client, 'jaffle_shop', 'prod', 'delete');
    }
    const started: string[] = [];
    for await (const w of worker.client.workflow.list({ query: `WorkflowType = 'scheduledDeployWorkflow'` }))
      started.push(w.workflowId);
    expect(started).toHaveLength(1);
  });

  it('lists the deploys it ran with `history --json`, newest first, with their statuses', async () => {
    const expected = results.map((r) => [r.deployId, r.status]).reverse();
    const listed = await waitFor('visibility to catch up', async () => {
      const { stdout, exitCode } = await execa(
        join(ROOT, 'bin', 'dbt-deploy'),
        ['history', '--project-dir', project.dir, '--json'],
        {
          reject: false,
          env: { TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: 'test-ops' },
        },
      );
      if (exitCode !== 0) return undefined;
      const lines = JSON.parse(stdout) as Array<{ deployId: string; status: string; decision: unknown }>;
      return lines.length === expected.length ? lines : undefined;
    });
    expect(listed.map((l) => [l.deployId, l.status])).toEqual(expected);
    expect(listed.at(-1)?.decision).toMatchObject({ kind: 'approved', by: 'ana@data' });
  });
});
