/**
 * The small typed client the CLI is built on: start a deploy, wait for its result, read its progress.
 * Teams that run their own Temporal clients can use it as is.
 */
import { randomBytes } from 'node:crypto';
import {
  type Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { deployWorkflow } from '../workflows/deploy.js';
import { progressQuery, type DeployProgress } from '../workflows/queries.js';
import type { DeployInput, DeployResult } from '../workflows/types.js';
import { DeployInProgress } from './errors.js';

/** One workflow id per project and environment: the server itself refuses a second concurrent deploy. */
export function deployWorkflowId(project: string, env: string): string {
  return `dbt-deploy-${project}-${env}`;
}

/** Sortable and readable: `prod-20261125t171500-3fa2`. Also names the deploy's backup location. */
export function newDeployId(env: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').toLowerCase();
  return `${env}-${stamp}-${randomBytes(2).toString('hex')}`.replace(/[^a-z0-9-]/gi, '_');
}

/** The workflows that change an environment; they share one workflow id, so only one runs at a time. */
export type Operation = 'deploy' | 'rollback' | 'mirror-refresh';

const WORKFLOW_TYPES: Record<Operation, string> = {
  deploy: 'deployWorkflow',
  rollback: 'rollbackWorkflow',
  'mirror-refresh': 'refreshMirrorWorkflow',
};

export async function startDeploy(
  client: Client,
  input: DeployInput,
  taskQueue: string,
  operation: Operation = 'deploy',
): Promise<WorkflowHandle<typeof deployWorkflow>> {
  const workflowId = deployWorkflowId(input.project, input.env);
  const summary = {
    deploy: `Deploy ${input.project} to ${input.env} with ${input.strategy}`,
    rollback: `Roll back ${input.project} in ${input.env} to before ${input.rollbackTo ?? 'the latest deploy'}`,
    'mirror-refresh': `Refresh the raw layer of ${input.project} in ${input.env}`,
  }[operation];
  try {
    return await client.workflow.start(WORKFLOW_TYPES[operation], {
      taskQueue,
      workflowId,
      args: [input],
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      staticSummary: summary,
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new DeployInProgress(
        `${input.project} in ${input.env} is already being changed (workflow ${workflowId}); wait for it or abort it`,
      );
    }
    throw error;
  }
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

export async function deployProgress(handle: WorkflowHandle): Promise<DeployProgress> {
  return handle.query(progressQuery);
}

function isDeployResult(value: unknown): value is DeployResult {
  return typeof value === 'object' && value !== null && 'status' in value && 'deployId' in value;
}
