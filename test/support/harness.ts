/**
 * What the workflow and CLI tests share: a fresh copy of the example project with its raw sources, a
 * worker on its own task queue against the run's Temporal server, and an independent look at the
 * warehouse (relations, row counts, checksums) that does not go through the adapter under test.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import {
  ApplicationFailure,
  defaultPayloadConverter,
  type Payload,
  type PayloadCodec,
} from '@temporalio/common';
import { execa } from 'execa';
import { inject } from 'vitest';
import { temporalCliPath } from '../../client/dev-server.js';
import { createActivities, type DeployActivities } from '../../activities/steps.js';
import { deployResult, newDeployId, type Operation, startDeploy } from '../../client/deploys.js';
import { type DeployOptions, prepareDeploy } from '../../client/preflight.js';
import { createExampleWorkspace, type ExampleWorkspace } from '../../examples/jaffle_shop/workspace.js';
import { createDeployWorker, quietRuntime } from '../../worker/worker.js';
import type { DeployInput, DeployResult } from '../../workflows/types.js';
import type { TestNamespace } from './namespaces.js';
import { createDatabase, dropDatabase } from './postgres.js';
import { onCleanUp, scratchDir } from './scratch.js';

export { listSchemas, look, type LookTarget, type RelationSnapshot, snapshotSchema } from './warehouse.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export type ExampleProject = ExampleWorkspace;

export type Engine = 'duckdb' | 'postgres' | 'bigquery';

/**
 * A private copy of examples/jaffle_shop with its raw sources loaded: on DuckDB in its own file, on
 * PostgreSQL in a fresh database of the run's server (so test files never see each other's schemas).
 * Both are removed after the test file, passed or failed.
 */
export async function exampleProject(engine: Engine = 'duckdb'): Promise<ExampleProject> {
  const dir = join(await scratchDir('dbt-deploy-test-', inject('scratchRoot')), 'jaffle_shop');
  if (engine === 'duckdb') return createExampleWorkspace(dir);
  if (engine === 'bigquery') {
    const apiEndpoint = inject('bigqueryEndpoint');
    if (!apiEndpoint)
      throw new Error('the BigQuery emulator is not installed: run `scripts/setup --bigquery`');
    // A project of its own per workspace: the emulator keeps projects apart, so files never meet.
    const projectId = `jaffle-${randomBytes(4).toString('hex')}`;
    return createExampleWorkspace(dir, { bigquery: { projectId, location: 'US', apiEndpoint } });
  }
  const server = inject('postgres');
  const database = `jaffle_${randomBytes(4).toString('hex')}`;
  await createDatabase(server, database);
  onCleanUp(() => dropDatabase(server, database));
  return createExampleWorkspace(dir, { postgres: { ...server, database } });
}

export interface TestWorker {
  namespace: TestNamespace;
  taskQueue: string;
  client: Client;
  deploy(options: DeployOptions): Promise<DeployResult>;
  rollback(options: DeployOptions & { to?: string }): Promise<DeployResult>;
  /** Starts a deploy without waiting for it: for approvals, aborts and concurrency. */
  start(options: DeployOptions): Promise<{ handle: WorkflowHandle; input: DeployInput }>;
  refreshMirror(options: DeployOptions): Promise<DeployResult>;
  stop(): Promise<void>;
}

export interface TestWorkerOptions {
  /** Worker and client seal payloads with it (client/codec.ts). */
  codec?: PayloadCodec;
  /**
   * Bundle the workflows for this worker instead of using the run's shared bundle: with `codec`, the
   * workflows' own failures are then sealed too (the shared bundle has the plain failure converter).
   */
  ownBundle?: boolean;
}

/** A worker and client on a task queue of their own; `activities` replaces the real ones (fault injection). */
export async function startTestWorker(
  namespace: TestNamespace,
  activities?: DeployActivities,
  options: TestWorkerOptions = {},
): Promise<TestWorker> {
  quietRuntime();
  const address = inject('temporalAddress');
  const taskQueue = `test-${randomBytes(4).toString('hex')}`;
  const { worker, connection } = await createDeployWorker({
    address,
    namespace,
    taskQueue,
    ...(options.ownBundle ? {} : { workflowBundle: { codePath: inject('workflowBundlePath') } }),
    ...(activities ? { activities } : {}),
    ...(options.codec ? { codec: options.codec } : {}),
  });
  const running = worker.run();
  const clientConnection = await Connection.connect({ address });
  const client = new Client({
    connection: clientConnection,
    namespace,
    ...(options.codec ? { dataConverter: { payloadCodecs: [options.codec] } } : {}),
  });
  const start = async (operation: Operation, options: DeployOptions, rollbackTo?: string) => {
    const prepared = prepareDeploy(options);
    const input: DeployInput = {
      ...prepared.input,
      deployId: newDeployId(prepared.input.env),
      ...(rollbackTo ? { rollbackTo } : {}),
    };
    return { handle: await startDeploy(client, input, taskQueue, operation), input };
  };
  const run = async (operation: Operation, options: DeployOptions, rollbackTo?: string) =>
    deployResult((await start(operation, options, rollbackTo)).handle);
  return {
    namespace,
    taskQueue,
    client,
    deploy: (options) => run('deploy', options),
    start: (options) => start('deploy', options),
    rollback: ({ to, ...options }) => run('rollback', { ...options, forRollback: true }, to),
    refreshMirror: (options) => run('mirror-refresh', { ...options, strategy: 'mirror' }),
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
      await clientConnection.close();
    },
  };
}

/**
 * A fault that cannot be produced for real on demand: the named activity fails with a non-retryable
 * error instead of running. Everything else is the real activity.
 */
export function withInjectedFault(activity: keyof DeployActivities, onlyStep?: string): DeployActivities {
  const real = createActivities();
  const original = real[activity] as (request: { stepId: string }) => Promise<unknown>;
  return {
    ...real,
    [activity]: async (request: { stepId: string }) => {
      if (onlyStep && request.stepId !== onlyStep) return original(request);
      throw ApplicationFailure.nonRetryable(`injected fault in ${activity}`, 'InjectedFault');
    },
  };
}

/**
 * Saves the history a deploy just made under .test-runs/histories. Copy one into test/replay/histories
 * to pin it: the replay test then fails on any workflow change that would break deploys in flight.
 */
export async function keepHistory(worker: TestWorker, workflowId: string, name: string): Promise<void> {
  // The Temporal CLI writes the JSON form that Worker.runReplayHistory reads back.
  const { runId } = await worker.client.workflow.getHandle(workflowId).describe();
  const { stdout } = await execa(temporalCliPath(), [
    'workflow',
    'show',
    '--workflow-id',
    workflowId,
    '--run-id',
    runId,
    '--output',
    'json',
    '--address',
    inject('temporalAddress'),
    '--namespace',
    worker.namespace,
  ]);
  const dir = join(ROOT, '.test-runs', 'histories');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${name}.json`), stdout);
}

/** One activity a deploy scheduled, as its history recorded it: its input and, when it completed, its result. */
export interface ScheduledActivity {
  activityType: string;
  /** The encoded size of the input, in bytes. */
  inputBytes: number;
  input: unknown;
  result?: unknown;
}

/** Every activity of a workflow run, read back from the server's history and decoded. */
export async function scheduledActivities(
  worker: TestWorker,
  workflowId: string,
): Promise<ScheduledActivity[]> {
  const history = await worker.client.workflow.getHandle(workflowId).fetchHistory();
  const byEvent = new Map<string, ScheduledActivity>();
  const decode = (payloads: { payloads?: Payload[] | null } | null | undefined): unknown => {
    const [first] = payloads?.payloads ?? [];
    return first ? defaultPayloadConverter.fromPayload(first) : undefined;
  };
  for (const event of history.events ?? []) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const payloads = scheduled.input?.payloads ?? [];
      byEvent.set(String(event.eventId), {
        activityType: scheduled.activityType?.name ?? '',
        inputBytes: payloads.reduce((n, p) => n + (p.data?.length ?? 0), 0),
        input: decode(scheduled.input),
      });
    }
    const completed = event.activityTaskCompletedEventAttributes;
    const activity = completed && byEvent.get(String(completed.scheduledEventId));
    if (activity) activity.result = decode(completed.result);
  }
  return [...byEvent.values()];
}
