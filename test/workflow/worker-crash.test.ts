/**
 * A worker lost in the middle of a deploy, as when its machine dies: SIGKILL takes the `dbt-deploy
 * worker` process and its dbt child at once. A second worker process takes over; the lost build is
 * retried once its heartbeat times out (deploy.yml `heartbeat_timeout`, 10 s here instead of the
 * default 20 s, so the test waits less), and the deploy publishes exactly once. SIGTERM then drains the second worker, which exits 0. The
 * test prints how long the deploy waited between the kill and the build's new attempt.
 */
import { randomBytes } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { decodeTimeoutType } from '@temporalio/common';
import { execa, type Result, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deployProgress, deployResult, newDeployId, startDeploy } from '../../client/deploys.js';
import { prepareDeploy } from '../../client/preflight.js';
import { type ExampleProject, exampleProject, ROOT, snapshotSchema } from '../support/harness.js';
import type { TestNamespace } from '../support/namespaces.js';
import { dbtBuildIn, killGroup, until } from '../support/processes.js';

const CLI = join(ROOT, 'bin', 'dbt-deploy');
const NAMESPACE: TestNamespace = 'test-crash';

type WorkerProcess = ResultPromise<{ detached: true; reject: false; stdin: 'ignore' }>;

describe('a worker killed mid-deploy', () => {
  const taskQueue = `crash-${randomBytes(4).toString('hex')}`;
  const workers: WorkerProcess[] = [];
  let project: ExampleProject;
  let connection: Connection;
  let client: Client;

  beforeAll(async () => {
    project = await exampleProject();
    await appendFile(join(project.dir, 'deploy.yml'), 'heartbeat_timeout: 10s\n');
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection, namespace: NAMESPACE });
  });

  afterAll(async () => {
    for (const worker of workers) if (worker.exitCode === null) killGroup(worker, 'SIGKILL');
    await connection?.close();
  });

  /** Leads its own process group, so one signal reaches the worker, tsx and dbt alike. */
  function startWorker(): WorkerProcess {
    const worker = execa(CLI, ['worker'], {
      detached: true,
      reject: false,
      stdin: 'ignore',
      env: {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_NAMESPACE: NAMESPACE,
        DBT_DEPLOY_TASK_QUEUE: taskQueue,
        // Both workers read the project's own artifacts folder: a lost step is retried where it stands
        // (test/hosts covers hosts that share no folder).
        DBT_DEPLOY_SHARED_ARTIFACTS: '1',
      },
    });
    workers.push(worker);
    return worker;
  }

  it('resumes on a new worker and publishes exactly once; SIGTERM then drains that worker', async () => {
    const first = startWorker();
    const prepared = prepareDeploy({ projectDir: project.dir });
    const input = { ...prepared.input, deployId: newDeployId(prepared.input.env) };
    const handle = await startDeploy(client, input, taskQueue);

    await until('the build step runs dbt', async () => {
      const progress = await deployProgress(handle).catch(() => undefined);
      return (
        progress?.step?.id === 'build' && progress.step.status === 'running' && (await dbtBuildIn(first))
      );
    });
    const killedAt = Date.now();
    killGroup(first, 'SIGKILL');
    await first;
    expect(await dbtBuildIn(first)).toBe(false);

    const second = startWorker();
    // The server moves the build to attempt 2 once its heartbeat timed out.
    await until('the lost build is due again', async () => {
      const { raw } = await handle.describe();
      return (raw.pendingActivities ?? []).some(
        (a) => a.activityType?.name === 'dbtBuild' && (a.attempt ?? 0) > 1,
      );
    });
    const retriedAfter = (Date.now() - killedAt) / 1000;
    const result = await deployResult(handle);

    expect(result.status, result.reason).toBe('published');
    const activities = await activityHistory(handle);
    expect(activities.completed.filter((type) => type === 'publishTables')).toHaveLength(1);
    const build = activities.started.find((a) => a.type === 'dbtBuild');
    // History records only the attempt that finished, with the failure of the one before it.
    expect(build?.attempt).toBeGreaterThan(1);
    expect(build?.lastFailure).toBe('HEARTBEAT');
    // deploy.yml's heartbeat_timeout, not the default, is what the build was scheduled with.
    expect(activities.heartbeatTimeouts.get('dbtBuild')).toBe(10);
    // A measurement, not a bound: the heartbeat timeout plus the retry's start on a loaded machine.
    console.log(`the lost build was due again ${retriedAfter.toFixed(1)} s after the kill`);

    const prod = await snapshotSchema(project, 'analytics');
    const staging = await snapshotSchema(project, 'analytics_staging');
    expect(prod['fct_orders']?.rows).toBe(600);
    for (const [name, relation] of Object.entries(prod)) expect(relation, name).toEqual(staging[name]);

    // The worker process itself gets the signal, as from a process manager (bin/dbt-deploy runs one node
    // process with tsx's loader: the `tsx` command, relaying to a child, killed it when busy).
    second.kill('SIGTERM');
    const stopped = await within(15_000, second);
    expect(stopped.exitCode, String(stopped.stderr)).toBe(0);
    const logs = String(stopped.stdout)
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level?: string; message?: string; time?: string });
    expect(logs.length).toBeGreaterThan(0);
    expect(logs[0]).toMatchObject({ level: expect.any(String), message: expect.any(String) });
    expect(logs.map((l) => l.message)).toEqual(
      expect.arrayContaining(['worker polling', expect.stringMatching(/^draining/), 'worker stopped']),
    );
  }, 600_000);
});

async function within(ms: number, worker: WorkerProcess): Promise<Result> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`worker still running ${ms} ms after SIGTERM`)), ms);
  });
  try {
    return await Promise.race([worker, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface ActivityHistory {
  completed: string[];
  /** The heartbeat timeout each activity type was last scheduled with, in seconds. */
  heartbeatTimeouts: Map<string, number>;
  started: Array<{ type: string; attempt: number; lastFailure?: string }>;
}

/** Activity types as the workflow history records them; `lastFailure` is the earlier attempt's timeout kind. */
async function activityHistory(handle: WorkflowHandle): Promise<ActivityHistory> {
  const events = (await handle.fetchHistory()).events ?? [];
  const types = new Map<string, string>();
  const history: ActivityHistory = { completed: [], started: [], heartbeatTimeouts: new Map() };
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      types.set(String(event.eventId), scheduled.activityType?.name ?? '');
      const timeout = scheduled.heartbeatTimeout;
      if (timeout)
        history.heartbeatTimeouts.set(scheduled.activityType?.name ?? '', Number(timeout.seconds ?? 0));
    }
    const started = event.activityTaskStartedEventAttributes;
    if (started) {
      const timeout = started.lastFailure?.timeoutFailureInfo?.timeoutType;
      history.started.push({
        type: types.get(String(started.scheduledEventId)) ?? '',
        attempt: started.attempt ?? 0,
        ...(timeout ? { lastFailure: decodeTimeoutType(timeout) } : {}),
      });
    }
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) history.completed.push(types.get(String(completed.scheduledEventId)) ?? '');
  }
  return history;
}
