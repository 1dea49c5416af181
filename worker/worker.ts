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
import { type DbtDeployPluginOptions, dbtDeployPlugin, WORKFLOWS_PATH } from './plugin.js';

export interface DeployWorkerOptions extends DbtDeployPluginOptions {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Activities run at once on this worker; each dbt invocation is one. */
  maxConcurrentActivityTaskExecutions?: number;
}

export async function createDeployWorker(
  options: DeployWorkerOptions,
): Promise<{ worker: Worker; connection: NativeConnection }> {
  const connection = await NativeConnection.connect({ address: options.address });
  const worker = await Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 4,
    plugins: [dbtDeployPlugin(options)],
  });
  return { worker, connection };
}

/** Bundles the workflows once, so several workers (tests, the demo) skip webpack on start. */
export async function bundleDeployWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
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
export function quietRuntime(): void {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
}
