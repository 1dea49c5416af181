/**
 * Schedules that run deploys (`dbt-deploy schedule ...`). Each starts `scheduledDeployWorkflow`,
 * which deploys under the environment's one workflow id, so a scheduled run and a manual deploy
 * never overlap; runs that would overlap an earlier scheduled one are skipped by the schedule itself.
 */
import { type Client, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { deployWorkflowId } from '../workflows/ids.js';
import type { ScheduledInput } from '../workflows/scheduled.js';
import { projectIdFor, withProjectAlias } from './codec.js';
import { operationDetails, operationSummary } from '../workflows/summary.js';
import { UsageError } from './errors.js';

/** A schedule is named like the deploys it starts: one per project and environment. */
export const scheduleId = deployWorkflowId;

export interface ScheduleLine {
  id: string;
  cron: string[];
  paused: boolean;
  note?: string;
  strategy?: string;
  nextRuns: string[];
  recentRuns: Array<{ at: string; workflowId: string }>;
}

export async function createSchedule(
  client: Client,
  given: ScheduledInput,
  cron: string,
  taskQueue: string,
): Promise<string> {
  const input = withProjectAlias(client, given);
  const id = scheduleId(projectIdFor(client, input.project), input.env);
  try {
    await client.schedule.create({
      scheduleId: id,
      spec: { cronExpressions: [cron] },
      action: {
        type: 'startWorkflow',
        workflowType: 'scheduledDeployWorkflow',
        args: [input],
        taskQueue,
        workflowId: `${id}-scheduled`,
        staticSummary: operationSummary(input, 'deploy', { schedule: { id, cron } }),
        staticDetails: operationDetails(input, 'deploy', { schedule: { id, cron } }),
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
      // The server turns cron into calendar specs; the memo keeps the expression as it was written.
      memo: { strategy: input.strategy, cron },
    });
  } catch (error) {
    if (error instanceof Error && /already (exists|registered)/i.test(error.message)) {
      throw new UsageError(
        `schedule ${id} already exists: \`dbt-deploy schedule delete --env ${input.env}\` first to replace it`,
      );
    }
    throw error;
  }
  return id;
}

export async function listSchedules(client: Client, project: string): Promise<ScheduleLine[]> {
  const lines: ScheduleLine[] = [];
  for await (const summary of client.schedule.list()) {
    if (!summary.scheduleId.startsWith(deployWorkflowId(projectIdFor(client, project), ''))) continue;
    const strategy = summary.memo?.['strategy'];
    const cron = summary.memo?.['cron'];
    lines.push({
      id: summary.scheduleId,
      cron: typeof cron === 'string' ? [cron] : [],
      paused: summary.state.paused,
      ...(summary.state.note ? { note: summary.state.note } : {}),
      ...(typeof strategy === 'string' ? { strategy } : {}),
      nextRuns: summary.info.nextActionTimes.map((t) => t.toISOString()),
      recentRuns: summary.info.recentActions.map((a) => ({
        at: a.takenAt.toISOString(),
        workflowId: a.action.workflow.workflowId,
      })),
    });
  }
  return lines.sort((a, b) => a.id.localeCompare(b.id));
}

export type ScheduleChange = 'pause' | 'unpause' | 'trigger' | 'delete';

export async function changeSchedule(
  client: Client,
  project: string,
  env: string,
  change: ScheduleChange,
  note?: string,
): Promise<string> {
  const id = scheduleId(projectIdFor(client, project), env);
  const handle = client.schedule.getHandle(id);
  try {
    switch (change) {
      case 'pause':
        await handle.pause(note ?? 'paused with dbt-deploy');
        break;
      case 'unpause':
        await handle.unpause(note ?? 'unpaused with dbt-deploy');
        break;
      case 'trigger':
        // The SDK's default for a manual trigger allows overlap; a deploy schedule never does.
        await handle.trigger(ScheduleOverlapPolicy.SKIP);
        break;
      case 'delete':
        await handle.delete();
        break;
    }
  } catch (error) {
    if (error instanceof ScheduleNotFoundError) {
      throw new UsageError(
        `no schedule ${id}: create one with \`dbt-deploy schedule create --env ${env} --cron ...\``,
      );
    }
    throw error;
  }
  return id;
}
