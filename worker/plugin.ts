/**
 * dbtDeployPlugin: add the product's workflows and activities to your own Temporal worker.
 *
 *   const worker = await Worker.create({ connection, taskQueue: 'dbt-deploy', plugins: [dbtDeployPlugin()] });
 */
import { fileURLToPath } from 'node:url';
import { SimplePlugin } from '@temporalio/plugin';
import type { WorkflowBundleOption } from '@temporalio/worker';
import { type ActivitiesOptions, createActivities, type DeployActivities } from '../activities/steps.js';

export interface DbtDeployPluginOptions extends ActivitiesOptions {
  /** A prebuilt workflow bundle (see `bundleDeployWorkflows`); without it the worker bundles on start. */
  workflowBundle?: WorkflowBundleOption;
  /** Replaces the activities, e.g. to inject a fault in a test. */
  activities?: DeployActivities;
}

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export function dbtDeployPlugin(options: DbtDeployPluginOptions = {}): SimplePlugin {
  return new SimplePlugin({
    name: 'dbt-temporal-deploy',
    activities: options.activities ?? createActivities(options),
    ...(options.workflowBundle
      ? { workflowBundle: options.workflowBundle }
      : { workflowsPath: WORKFLOWS_PATH }),
  });
}
