/**
 * The package's main entry: the plugin for your worker, and the worker the `dbt-deploy worker` command
 * runs. The client library is `dbt-temporal-deploy/client`, the workflows `dbt-temporal-deploy/workflows`.
 */
export {
  DbtDeployPlugin,
  dbtDeployPlugin,
  type DbtDeployPluginOptions,
  PLUGIN_NAME,
  WORKFLOWS_PATH,
} from './worker/plugin.js';
export { bundleDeployWorkflows, createDeployWorker, type DeployWorkerOptions } from './worker/worker.js';
export { runWorker, type RunWorkerOptions } from './worker/run.js';
export { createActivities, type ActivitiesOptions, type DeployActivities } from './activities/steps.js';
export { dbtBin } from './activities/dbt.js';
export type * from './workflows/types.js';
