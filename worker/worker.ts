/**
 * The `dbt-deploy worker` process: a Temporal worker with the plugin, configured from the
 * environment, that shuts down gracefully on SIGINT/SIGTERM (the SDK's default shutdown signals).
 */
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { Duration } from '@temporalio/common';
import { ENCRYPTED_FAILURES_PATH, encryptingDataConverter } from '../client/codec.js';
import { connectionFailure, type TemporalSettings } from '../client/connection.js';
import { requireSearchAttributes } from '../client/search-attributes.js';
import { type DbtDeployPluginOptions, dbtDeployPlugin, WORKFLOWS_PATH } from './plugin.js';

export interface DeployWorkerOptions extends DbtDeployPluginOptions, TemporalSettings {
  /** Activities run at once on this worker; each dbt invocation is one. */
  maxConcurrentActivityTaskExecutions?: number;
  /** Workflow tasks processed at once; each is short, CPU-bound work in this process. @default 40 */
  maxConcurrentWorkflowTaskExecutions?: number;
  /**
   * On SIGINT/SIGTERM, how long running activities may finish before they are cancelled (dbt is then
   * killed and the step retried on another worker). @default '60 seconds'
   */
  shutdownGraceTime?: string;
}

export async function createDeployWorker(
  options: DeployWorkerOptions,
): Promise<{ worker: Worker; connection: NativeConnection }> {
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect({ address: options.address, ...options.connection });
  } catch (error) {
    throw await connectionFailure(options, error);
  }
  try {
    await requireSearchAttributes(connection, options.namespace);
  } catch (error) {
    await connection.close();
    throw error;
  }
  const worker = await Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 4,
    maxConcurrentWorkflowTaskExecutions: options.maxConcurrentWorkflowTaskExecutions ?? 40,
    shutdownGraceTime: (options.shutdownGraceTime ?? '60 seconds') as Duration,
    // An abort reaches a running dbt only through a heartbeat's reply: the SDK's default throttle
    // (80% of the heartbeat timeout, here 16 s) would let an aborted build run on that long.
    maxHeartbeatThrottleInterval: '2 seconds',
    defaultHeartbeatThrottleInterval: '2 seconds',
    // With the codec, error messages and stack traces are sealed too (a prebuilt workflow bundle must be
    // made with `bundleDeployWorkflows({ encryptFailures: true })` for the workflows' own failures).
    ...(options.codec ? { dataConverter: encryptingDataConverter(options.codec) } : {}),
    plugins: [dbtDeployPlugin(options)],
  });
  return { worker, connection };
}

/**
 * Bundles the workflows once, so several workers (tests, the demo) skip webpack on start.
 * `encryptFailures`: for workers with the payload codec, whose workflows' errors must be sealed too.
 */
export async function bundleDeployWorkflows(
  options: { encryptFailures?: boolean } = {},
): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: quietLogger,
    ...(options.encryptFailures ? { failureConverterPath: ENCRYPTED_FAILURES_PATH } : {}),
  });
}

const quietLogger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
  log: () => {},
};

/**
 * For the demo and tests: the SDK logs every deploy that ends unpublished as a failed workflow, with
 * a stack trace. Those endings are expected outcomes there, reported by the result object instead.
 */
let quieted = false;

export function quietRuntime(): void {
  if (quieted) return;
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  quieted = true;
}
