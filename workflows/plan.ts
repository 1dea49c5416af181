/**
 * A plan is what a strategy says a deploy will do: an ordered list of steps, each one activity call,
 * with the compensation that undoes it when the step changes the warehouse. Plans are pure data, so
 * `dbt-deploy plan` prints exactly what the workflow will run.
 */
import type { StrategyName } from './types.js';

/** Which part of the warehouse a step writes to. `prod` steps are the ones readers can observe. */
export type Touches = 'nothing' | 'staging' | 'backup' | 'prod';

interface StepBase {
  /** Unique within the plan; also the folder name of the step's dbt artifacts. */
  id: string;
  /** One line, in the words of the process; shown by `plan`, in the result and in the Temporal UI. */
  title: string;
  touches: Touches;
  /**
   * Registered before the step runs, not after: a publish that timed out may still have committed, so
   * its undo must run either way. Every compensation is therefore safe to run when its step never ran.
   */
  compensation?: Compensation;
}

export type Step =
  | (StepBase & { activity: 'dbtBuild'; args: { target: string } })
  | (StepBase & { activity: 'audit'; args: { buildStepId: string } })
  | (StepBase & { activity: 'resolvePublishSet'; args: { buildStepId: string; prodTarget: string } })
  | (StepBase & { activity: 'backupProd'; args: { prodTarget: string } })
  | (StepBase & { activity: 'publishTables'; args: { prodTarget: string } })
  | (StepBase & { activity: 'publishViews'; args: { prodTarget: string } })
  | (StepBase & { activity: 'verifyProd'; args: { prodTarget: string } });

export type StepActivityName = Step['activity'];

export type Compensation =
  | { activity: 'restoreProd'; title: string; args: { prodTarget: string } }
  | { activity: 'dropBackup'; title: string; args: { prodTarget: string } };

export interface Plan {
  strategy: StrategyName;
  /** Why this strategy, in one sentence (shown by `plan`). */
  rationale: string;
  steps: Step[];
}

/** A plan as plain lines, for `dbt-deploy plan` and the workflow's UI details. */
export function describePlan(plan: Plan): string[] {
  return plan.steps.map((step, index) => {
    const undo = step.compensation ? `  (undo: ${step.compensation.title})` : '';
    return `${index + 1}. ${step.title} [touches ${step.touches}]${undo}`;
  });
}
