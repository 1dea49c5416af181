/**
 * The activities a plan's steps name. Each takes the deploy input, the state earlier steps produced
 * and its own arguments, and returns a one-line summary plus the state it adds. Only small values go
 * back to the workflow; dbt's artifacts stay in the artifact folder and travel as references.
 */
import { type ActivitiesOptions, stepPaths } from './step-context.js';
import { notifyActivities } from './notify.js';
import { planActivities } from './plan.js';
import { buildSteps } from './steps/build.js';
import { diffSteps } from './steps/diff.js';
import { publishSteps } from './steps/publish.js';
import { restoreSteps } from './steps/restore.js';
import { selectionSteps } from './steps/selection.js';

export type {
  ActivitiesOptions,
  DeployState,
  StepArtifacts,
  StepOutcome,
  StepRequest,
} from './step-context.js';

export function createActivities(options: ActivitiesOptions = {}) {
  const paths = stepPaths(options);
  return {
    ...planActivities(),
    ...selectionSteps(paths),
    ...buildSteps(paths),
    ...diffSteps(paths),
    ...publishSteps(paths),
    ...restoreSteps(paths),
    ...notifyActivities(),
  };
}

export type DeployActivities = ReturnType<typeof createActivities>;
