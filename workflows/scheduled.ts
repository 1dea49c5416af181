/**
 * What a schedule starts. Schedules add a timestamp to the workflow ids they start, so a scheduled
 * run would not collide with a manual deploy by id; this workflow starts the deploy as a child under
 * the environment's one workflow id instead, so manual and scheduled deploys share the same guard.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, patched, startChild, uuid4, workflowInfo } from '@temporalio/workflow';
import { deployWorkflow } from './deploy.js';
import { deployIdOf, deployWorkflowId, projectIdOf } from './ids.js';
import { operationDetails, operationSummary } from './summary.js';
import type { DeployInput, DeployResult } from './types.js';

export type ScheduledInput = Omit<DeployInput, 'deployId'>;

export interface ScheduledOutcome {
  /** Set when the deploy ran; its failure fails this workflow too. */
  result?: DeployResult;
  /** Set when another deploy of the environment was running: this run did nothing. */
  skipped?: string;
}

/** The deploy it starts carries the deploy id, git sha and its details in the UI, as a manual one does. */
const DETAILS_PATCH = 'scheduled-deploy-details';

export async function scheduledDeployWorkflow(input: ScheduledInput): Promise<ScheduledOutcome> {
  // Checked before the first await, as deploy.ts's patchesAtStart explains.
  const details = patched(DETAILS_PATCH);
  const deployId = deployIdOf(input.env, workflowInfo().startTime, uuid4().slice(0, 4));
  // With encrypted payloads the id and the summary name the project by its alias, never in clear.
  const project = projectIdOf(input);
  const workflowId = deployWorkflowId(project, input.env);
  // A schedule is named like the deploys it starts (client/schedules.ts).
  const started = { schedule: { id: workflowId } };
  try {
    const child = await startChild(deployWorkflow, {
      workflowId,
      args: [{ ...input, deployId }],
      // The deploy finishes (or compensates) on its own even if this wrapper is terminated.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      ...(details
        ? {
            staticSummary: operationSummary({ ...input, deployId }, 'deploy', started),
            staticDetails: operationDetails({ ...input, deployId }, 'deploy', started),
          }
        : { staticSummary: `Scheduled deploy of ${project} to ${input.env} with ${input.strategy}` }),
      memo: { deployId, operation: 'deploy' },
    });
    return { result: await child.result() };
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      return {
        skipped: `a deploy of ${project} to ${input.env} is already running (workflow ${workflowId})`,
      };
    }
    throw error;
  }
}
