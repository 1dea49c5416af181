/**
 * dbtDeployPlugin: add the product's workflows and activities to your own Temporal worker.
 *
 *   const worker = await Worker.create({ connection, taskQueue: 'dbt-deploy', plugins: [dbtDeployPlugin()] });
 *
 * Teams that bundle their own workflows re-export `dbt-temporal-deploy/workflows` from their workflow
 * module and pass `workflowsPath` or `workflowBundle` to `Worker.create`: the plugin then leaves the
 * workflows alone and only adds the activities.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Duration } from '@temporalio/common';
import { SimplePlugin } from '@temporalio/plugin';
import { type State, Worker, type WorkerOptions, type WorkflowBundleOption } from '@temporalio/worker';
import { type HostQueue, hostActivities } from '../activities/hosts.js';
import { type ActivitiesOptions, createActivities, type DeployActivities } from '../activities/steps.js';

export interface DbtDeployPluginOptions extends ActivitiesOptions {
  /**
   * A prebuilt workflow bundle (see `bundleDeployWorkflows`), used when the worker names no workflows
   * of its own.
   * @default undefined: the worker bundles the package's workflows (`WORKFLOWS_PATH`) when it starts
   */
  workflowBundle?: WorkflowBundleOption;
  /**
   * Replaces the activities, e.g. to inject a fault in a test.
   * @default createActivities(options): the real steps, running dbt and the warehouse adapters
   */
  activities?: DeployActivities;
  /**
   * Run a deploy's steps on a task queue of this worker process alone (`<taskQueue>@<host>-<pid>-<id>`),
   * polled beside the shared one, because the steps pass local files to each other. Set it to false
   * only when every worker reads the same artifacts folder (`artifactsRoot` on shared storage): steps
   * then run on any worker of the shared queue.
   * @default true
   */
  pinStepsToHost?: boolean;
  /**
   * How long a pinned step may wait for its host to pick it up before the host counts as lost and the
   * deploy starts again from its first step on another host (only before prod is touched). Keep it
   * above the time a busy host needs to free an activity slot.
   * @default '1 minute'
   */
  hostLossTimeout?: Duration;
}

/** The workflows' entry module: the TypeScript source in a checkout, the compiled module in the package. */
export const WORKFLOWS_PATH = workflowsEntry();

function workflowsEntry(): string {
  const source = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
  return existsSync(source) ? source : fileURLToPath(new URL('../workflows/index.js', import.meta.url));
}

export const PLUGIN_NAME = 'dbt-temporal-deploy';

const ENDING = new Set<State>(['STOPPING', 'DRAINING', 'DRAINED', 'STOPPED', 'FAILED']);

/**
 * A `SimplePlugin` that registers the deploy activities and, unless the worker brings its own
 * workflows, the deploy workflows.
 */
export class DbtDeployPlugin extends SimplePlugin {
  /** This process's own task queue while a worker with the plugin runs. */
  private readonly hostQueue: HostQueue;
  private readonly allActivities: object;
  /** Activity slots per worker, by task queue: the host worker gets as many as the shared one. */
  private readonly slots = new Map<string, number | undefined>();

  constructor(readonly pluginOptions: DbtDeployPluginOptions = {}) {
    const hostQueue: HostQueue = { scheduleToStartTimeout: pluginOptions.hostLossTimeout ?? '1 minute' };
    const activities = {
      ...(pluginOptions.activities ?? createActivities(pluginOptions)),
      ...hostActivities(hostQueue),
    };
    super({ name: PLUGIN_NAME, activities });
    this.hostQueue = hostQueue;
    this.allActivities = activities;
  }

  override configureWorker(options: WorkerOptions): WorkerOptions {
    const configured = super.configureWorker(options);
    this.slots.set(configured.taskQueue, configured.maxConcurrentActivityTaskExecutions);
    // A worker that names its own workflows (re-exporting ours) keeps them: setting both is an error.
    if (configured.workflowsPath || configured.workflowBundle) return configured;
    return this.pluginOptions.workflowBundle
      ? { ...configured, workflowBundle: this.pluginOptions.workflowBundle }
      : { ...configured, workflowsPath: WORKFLOWS_PATH };
  }

  /** Runs the worker and, beside it, an activity worker on this process's own task queue. */
  override async runWorker(worker: Worker, next: (w: Worker) => Promise<void>): Promise<void> {
    const connection = worker.connection;
    if (this.pluginOptions.pinStepsToHost === false || !connection) return super.runWorker(worker, next);
    const { namespace, taskQueue } = worker.options;
    const hostTaskQueue = `${taskQueue}@${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const hostWorker = await Worker.create({
      connection,
      namespace,
      taskQueue: hostTaskQueue,
      activities: this.allActivities,
      // The steps' inputs and results are sealed by the same codec as the shared worker's.
      ...(worker.options.dataConverter ? { dataConverter: worker.options.dataConverter } : {}),
      ...(this.slots.get(taskQueue)
        ? { maxConcurrentActivityTaskExecutions: this.slots.get(taskQueue) }
        : {}),
      shutdownGraceTime: worker.options.shutdownGraceTimeMs,
      maxHeartbeatThrottleInterval: worker.options.maxHeartbeatThrottleIntervalMs,
      defaultHeartbeatThrottleInterval: worker.options.defaultHeartbeatThrottleIntervalMs,
    });
    const hostRun = hostWorker.run();
    this.hostQueue.taskQueue = hostTaskQueue;
    // Draining the shared worker drains the host worker with it; either one failing stops both.
    const follow = setInterval(() => {
      if (ENDING.has(worker.getState()) && hostWorker.getState() === 'RUNNING') hostWorker.shutdown();
      if (ENDING.has(hostWorker.getState()) && worker.getState() === 'RUNNING') worker.shutdown();
    }, 250);
    try {
      await Promise.all([super.runWorker(worker, next), hostRun]);
    } finally {
      clearInterval(follow);
      delete this.hostQueue.taskQueue;
      if (hostWorker.getState() === 'RUNNING') hostWorker.shutdown();
      await hostRun.catch(() => undefined);
    }
  }
}

export function dbtDeployPlugin(options: DbtDeployPluginOptions = {}): DbtDeployPlugin {
  return new DbtDeployPlugin(options);
}
