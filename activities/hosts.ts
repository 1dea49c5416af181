/**
 * Which host a deploy's steps run on. A deploy's steps share local files (dbt's artifacts, the relation
 * map), so every worker process also polls a task queue of its own, and the workflow claims one: the
 * steps then run there, and a lost host shows up as a step nobody picks up (schedule-to-start timeout).
 * Workers whose artifacts folder every host reads run the steps on the shared queue instead.
 */
import { hostname } from 'node:os';
import { Context } from '@temporalio/activity';
import type { Duration } from '@temporalio/common';

/** Where a deploy runs its steps, as the claiming worker answered. */
export interface HostLease {
  /** `hostname/pid` of the worker process, for logs and the UI. */
  host: string;
  taskQueue: string;
  /** False: the steps may run on any worker of the shared queue (shared artifacts). */
  pinned: boolean;
  /** How long a pinned step may wait for its host before the host counts as lost. */
  scheduleToStartTimeout: Duration;
}

/** What this process's worker offers; set while its host queue is polled. */
export interface HostQueue {
  taskQueue?: string;
  scheduleToStartTimeout: Duration;
}

export function hostActivities(queue: HostQueue) {
  return {
    /** Run on the shared queue it claims this process for the deploy; on the host queue it proves the host is alive. */
    async claimHost(): Promise<HostLease> {
      const host = `${hostname()}/${process.pid}`;
      const { taskQueue, scheduleToStartTimeout } = queue;
      if (taskQueue) return { host, taskQueue, pinned: true, scheduleToStartTimeout };
      return { host, taskQueue: Context.current().info.taskQueue, pinned: false, scheduleToStartTimeout };
    },
  };
}

export type HostActivities = ReturnType<typeof hostActivities>;
