/**
 * The small typed client the CLI is built on: start a deploy, wait for its result, read its progress.
 * Teams that run their own Temporal clients can use it as is.
 */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import {
  type Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type WorkflowHandle,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { ApplicationFailure, type Payload } from '@temporalio/common';
import type { DbtProgress } from '../activities/dbt.js';
import { fullDiff } from '../activities/report.js';
import type { DiffSummary, ProdDiff } from '../workflows/diff.js';
import type { deployWorkflow } from '../workflows/deploy.js';
import {
  abortUpdate,
  approveUpdate,
  type Decision,
  type DecisionRequest,
  type DeployProgress,
  progressQuery,
} from '../workflows/queries.js';
import { deployIdOf, deployWorkflowId, projectIdOf } from '../workflows/ids.js';
import { operationDetails, operationSummary } from '../workflows/summary.js';
import type { DeployInput, DeployResult, Operation } from '../workflows/types.js';
import { projectIdFor, withProjectAlias } from './codec.js';
import { DeployInProgress, RequestRejected } from './errors.js';

export { deployWorkflowId };

/** A new deploy id for `env` (see `deployIdOf`). */
export function newDeployId(env: string, now = new Date()): string {
  return deployIdOf(env, now, randomBytes(2).toString('hex'));
}

export type { Operation };

const WORKFLOW_TYPES: Record<Operation, string> = {
  deploy: 'deployWorkflow',
  rollback: 'rollbackWorkflow',
  'mirror-refresh': 'refreshMirrorWorkflow',
};

export async function startDeploy(
  client: Client,
  given: DeployInput,
  taskQueue: string,
  operation: Operation = 'deploy',
): Promise<WorkflowHandle<typeof deployWorkflow>> {
  // A client that encrypts payloads names the project by its alias wherever Temporal keeps it in clear.
  const input = withProjectAlias(client, given);
  const workflowId = deployWorkflowId(projectIdOf(input), input.env);
  const started = { by: whoAmI() };
  try {
    return await client.workflow.start(WORKFLOW_TYPES[operation], {
      taskQueue,
      workflowId,
      args: [input],
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      // Every run shares the workflow id: the summary and details tell them apart in the UI.
      staticSummary: operationSummary(input, operation, started),
      staticDetails: operationDetails(input, operation, started),
      memo: { deployId: input.deployId, operation },
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new DeployInProgress(await describeRunning(client, workflowId, input));
    }
    throw error;
  }
}

/** Names the running operation that blocks a new one, so the user knows what to wait for or abort. */
async function describeRunning(client: Client, workflowId: string, input: DeployInput): Promise<string> {
  let running = `workflow ${workflowId}`;
  try {
    const description = await client.workflow.getHandle(workflowId).describe();
    const deployId = description.memo?.['deployId'];
    const since = description.startTime.toISOString().replace(/\.\d+Z$/, 'Z');
    running = `${typeof deployId === 'string' ? `deploy ${deployId}` : description.type} (workflow ${workflowId}, started ${since})`;
  } catch {
    // It may have just ended; the plain id still says what collided.
  }
  return `${input.project} in ${input.env} is already being changed by ${running}; wait for it or run \`dbt-deploy abort --env ${input.env}\``;
}

/** Waits for the deploy to end; every ending, published or not, yields the same result object. */
export async function deployResult(handle: WorkflowHandle): Promise<DeployResult> {
  try {
    return (await handle.result()) as DeployResult;
  } catch (error) {
    if (error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure) {
      const [result] = error.cause.details ?? [];
      if (isDeployResult(result)) return result;
    }
    throw error;
  }
}

/** What a progress display shows: the workflow's own progress plus dbt's, from the running step's heartbeat. */
export interface LiveProgress extends DeployProgress {
  /** Nodes dbt finished, failed and still has to run in the current step, when that step runs dbt. */
  dbt: { done: number; total: number; failed: number; lastNode?: string } | null;
}

export async function deployProgress(handle: WorkflowHandle): Promise<LiveProgress> {
  const [progress, description] = await Promise.all([handle.query(progressQuery), handle.describe()]);
  // Heartbeats live on the pending activity, not in the workflow: the workflow cannot see them.
  let dbt: LiveProgress['dbt'] = null;
  for (const activity of description.raw.pendingActivities ?? []) {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    const details = await decodeHeartbeat(handle, payload as Payload);
    if (typeof details?.total === 'number' && details.total > 0) {
      dbt = {
        done: details.done ?? 0,
        total: details.total,
        failed: details.failed ?? 0,
        ...(details.lastNode ? { lastNode: details.lastNode } : {}),
      };
    }
  }
  // A query answers with workflow time, which stands still during a long step: count on the client's clock.
  return { ...progress, elapsedMs: Date.now() - Date.parse(progress.startedAt), dbt };
}

/** A heartbeat's first detail, opened with the client's codecs (the payload codec seals heartbeats too). */
async function decodeHeartbeat(handle: WorkflowHandle, payload: Payload): Promise<Partial<DbtProgress>> {
  const { payloadCodecs, payloadConverter } = handle.client.options.loadedDataConverter;
  let decoded = payload;
  for (const codec of [...payloadCodecs].reverse()) [decoded] = (await codec.decode([decoded])) as [Payload];
  return payloadConverter.fromPayload<Partial<DbtProgress>>(decoded);
}

/** The environment's deploy (or rollback, or mirror refresh) that is running now, if any. */
export async function runningDeploy(
  client: Client,
  project: string,
  env: string,
): Promise<WorkflowHandle | null> {
  const handle = client.workflow.getHandle(deployWorkflowId(projectIdFor(client, project), env));
  try {
    const { status } = await handle.describe();
    return status.name === 'RUNNING' ? handle : null;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return null;
    throw error;
  }
}

/**
 * Approves or aborts the environment's running deploy through an Update: the answer (accepted, or
 * why not) comes back at once instead of being lost like a signal to a deploy that is not waiting.
 */
export async function decide(
  client: Client,
  project: string,
  env: string,
  kind: 'approve' | 'abort',
  request: DecisionRequest,
): Promise<Decision> {
  const handle = await runningDeploy(client, project, env);
  if (!handle) throw new RequestRejected(`no deploy of ${project} to ${env} is running: nothing to ${kind}`);
  try {
    return await handle.executeUpdate(kind === 'approve' ? approveUpdate : abortUpdate, { args: [request] });
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError) {
      throw new RequestRejected(error.cause?.message ?? error.message);
    }
    throw error;
  }
}

/** `user@host`, what approvals and aborts record as who asked. */
export function whoAmI(): string {
  return `${userInfo().username}@${hostname()}`;
}

function isDeployResult(value: unknown): value is DeployResult {
  return typeof value === 'object' && value !== null && 'status' in value && 'deployId' in value;
}

/** What `dbt-deploy diff` shows: the running deploy's progress, its diff summary, and the full diff if readable. */
export interface RunningDiff {
  deployId: string;
  progress: DeployProgress;
  summary: DiffSummary;
  /** The whole diff, sample rows included: read from its file when this host can (same host, shared folder). */
  full?: ProdDiff;
}

/**
 * The diff of the environment's running deploy (the one waiting at the approval gate, typically). The
 * workflow answers with the summary it carries; the sample rows are in the file it references.
 */
export async function runningDiff(client: Client, project: string, env: string): Promise<RunningDiff> {
  const handle = await runningDeploy(client, project, env);
  if (!handle)
    throw new RequestRejected(`no deploy of ${project} to ${env} is running: there is no diff to show`);
  const [progress, description] = await Promise.all([handle.query(progressQuery), handle.describe()]);
  const deployId = String(description.memo?.['deployId'] ?? handle.workflowId);
  if (!progress.diff)
    throw new RequestRejected(
      `deploy ${deployId} has not diffed against prod yet (it is ${progress.phase}); the diff comes after the audit, before the approval gate`,
    );
  const full = await fullDiff(progress.diff);
  return { deployId, progress, summary: progress.diff, ...(full ? { full } : {}) };
}
