/**
 * Two worker hosts that share no artifacts folder, as two machines would: each `dbt-deploy worker`
 * keeps dbt's files in a folder of its own and polls, beside the shared task queue, a queue of its
 * own. The deploy's steps are pinned to the host that claimed it. SIGKILL takes that host (worker and
 * dbt) mid-build; its steps' queue then has no poller, the schedule-to-start timeout says the host is
 * lost, and the deploy runs again from its first step on the other host and publishes exactly once.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { decodeTimeoutType } from '@temporalio/common';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deployProgress, deployResult, newDeployId, startDeploy } from '../../client/deploys.js';
import { prepareDeploy } from '../../client/preflight.js';
import { type ExampleProject, exampleProject, ROOT, snapshotSchema } from '../support/harness.js';
import type { TestNamespace } from '../support/namespaces.js';
import { dbtBuildIn, killGroup, until } from '../support/processes.js';

const CLI = join(ROOT, 'bin', 'dbt-deploy');
const NAMESPACE: TestNamespace = 'test-hosts';

type WorkerProcess = ResultPromise<{ detached: true; reject: false; stdin: 'ignore' }>;

interface Host {
  name: string;
  artifactsDir: string;
  process: WorkerProcess;
}

describe('many worker hosts', () => {
  const taskQueue = `hosts-${randomBytes(4).toString('hex')}`;
  const hosts: Host[] = [];
  let project: ExampleProject;
  let connection: Connection;
  let client: Client;

  beforeAll(async () => {
    project = await exampleProject();
    // The lost build's heartbeat times out sooner than the default 20 s: the test waits less.
    await appendFile(join(project.dir, 'deploy.yml'), 'heartbeat_timeout: 10s\n');
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection, namespace: NAMESPACE });
  });

  afterAll(async () => {
    for (const host of hosts) if (host.process.exitCode === null) killGroup(host.process, 'SIGKILL');
    await connection?.close();
  });

  /** A host of its own: its own process group and its own artifacts folder. */
  async function startHost(name: string): Promise<Host> {
    const artifactsDir = await mkdtemp(join(tmpdir(), `dbt-deploy-${name}-`));
    const process = execa(CLI, ['worker', '--artifacts-dir', artifactsDir, '--host-loss-timeout', '10s'], {
      detached: true,
      reject: false,
      stdin: 'ignore',
      env: {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_NAMESPACE: NAMESPACE,
        DBT_DEPLOY_TASK_QUEUE: taskQueue,
      },
    });
    const host = { name, artifactsDir, process };
    hosts.push(host);
    return host;
  }

  it('finishes on the other host when the one running the deploy dies, publishing once', async () => {
    await Promise.all([startHost('host-a'), startHost('host-b')]);
    const prepared = prepareDeploy({ projectDir: project.dir });
    const input = { ...prepared.input, deployId: newDeployId(prepared.input.env) };
    const handle = await startDeploy(client, input, taskQueue);

    let running: Host | undefined;
    await until(
      'the build step runs dbt on one of the hosts',
      async () => {
        const progress = await deployProgress(handle).catch(() => undefined);
        if (progress?.step?.id !== 'build' || progress.step.status !== 'running') return false;
        for (const host of hosts) if (await dbtBuildIn(host.process)) running = host;
        return running !== undefined;
      },
      180_000,
    );
    const lost = running!;
    const survivor = hosts.find((h) => h !== lost)!;
    killGroup(lost.process, 'SIGKILL');
    await lost.process;

    const result = await deployResult(handle);
    expect(result.status, result.reason).toBe('published');

    const activities = await activityHistory(handle);
    expect(activities.completed.filter((a) => a.type === 'publishTables')).toHaveLength(1);
    // The lost host's build never finished; the deploy ran again on the other host's own queue.
    const builds = activities.scheduled.filter((a) => a.type === 'dbtBuild');
    expect(new Set(builds.map((b) => b.taskQueue)).size).toBe(2);
    for (const build of builds) expect(build.taskQueue.startsWith(`${taskQueue}@`)).toBe(true);
    expect(activities.timedOut).toContainEqual({ type: 'dbtBuild', timeout: 'SCHEDULE_TO_START' });
    const published = activities.completed.find((a) => a.type === 'publishTables')!;
    const finalBuild = activities.completed.find((a) => a.type === 'dbtBuild')!;
    expect(published.taskQueue).toBe(finalBuild.taskQueue);

    // Every file the published deploy read is in the survivor's folder, none of it in the lost host's.
    const survivorBuild = join(survivor.artifactsDir, 'jaffle_shop', input.deployId, 'build');
    expect(existsSync(join(survivorBuild, 'run_results.json'))).toBe(true);
    expect(
      existsSync(join(lost.artifactsDir, 'jaffle_shop', input.deployId, 'build', 'run_results.json')),
    ).toBe(false);
    expect(result.artifactsDir).toBe(join(survivor.artifactsDir, 'jaffle_shop', input.deployId));

    const prod = await snapshotSchema(project, 'analytics');
    const staging = await snapshotSchema(project, 'analytics_staging');
    expect(prod['fct_orders']?.rows).toBe(600);
    for (const [name, relation] of Object.entries(prod)) expect(relation, name).toEqual(staging[name]);
  }, 420_000);
});

interface ActivityEvent {
  type: string;
  taskQueue: string;
}

interface ActivityHistory {
  scheduled: ActivityEvent[];
  completed: ActivityEvent[];
  timedOut: Array<{ type: string; timeout: string | undefined }>;
}

/** Activities as history records them: where each was scheduled, which completed, which timed out how. */
async function activityHistory(handle: WorkflowHandle): Promise<ActivityHistory> {
  const events = (await handle.fetchHistory()).events ?? [];
  const byId = new Map<string, ActivityEvent>();
  const history: ActivityHistory = { scheduled: [], completed: [], timedOut: [] };
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const activity = {
        type: scheduled.activityType?.name ?? '',
        taskQueue: scheduled.taskQueue?.name ?? '',
      };
      byId.set(String(event.eventId), activity);
      history.scheduled.push(activity);
    }
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) history.completed.push(byId.get(String(completed.scheduledEventId))!);
    const timedOut = event.activityTaskTimedOutEventAttributes;
    if (timedOut) {
      history.timedOut.push({
        type: byId.get(String(timedOut.scheduledEventId))?.type ?? '',
        timeout: decodeTimeoutType(timedOut.failure?.timeoutFailureInfo?.timeoutType),
      });
    }
  }
  return history;
}
