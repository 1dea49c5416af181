/**
 * A plan is what a strategy says a deploy will do: an ordered list of steps, each one activity call,
 * with the compensation that undoes it when the step changes the warehouse. Plans are pure data, so
 * `dbt-deploy plan` prints exactly what the workflow will run.
 */
import type { BackupOperation, DeployInput, PlanKind, StepRecord } from './types.js';

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
  /**
   * How many times the step may run, set from what it touches when the plan is made (`withAttempts`),
   * so the plan carried in a deploy's history also fixes its retries. Unset in plans recorded before.
   */
  attempts?: number;
}

/** Which models a dbt build runs; `publishSet` means exactly the models an earlier step selected. */
export interface BuildArgs {
  target: string;
  select?: string[];
  exclude?: string[];
  /** Add `--state` with the last published deploy's manifest, so `state:modified` has something to compare. */
  stateAware?: boolean;
  selectPublishSet?: boolean;
  /**
   * Resolve refs to unselected models from this earlier build step's location (dbt `--defer
   * --favor-state`): wap's prod build reads the upstream layers it just audited.
   */
  deferToStep?: string;
}

/** Which models a deploy publishes, chosen from where `resolve` says each model lives. */
export type PublishScope =
  /** every model the build produced, and prod relations staging no longer has are dropped (blue-green) */
  | 'all'
  /** the models the build produced, nothing else (clone-back, mirror) */
  | 'built'
  /** the models `publish` selects: its tags, or what the check step listed (wap) */
  | 'tagged';

export type Step =
  /**
   * Lists what `publish` selects before anything is built, and stops the deploy when it selects no
   * model. With `build` (wac's plans since it), it also compiles that selection for prod and lists the
   * snapshots that build will run, so the build and the choice of what to publish start no dbt of
   * their own for them.
   */
  | (StepBase & { activity: 'checkPublishSelection'; args: { prodTarget: string; build?: BuildArgs } })
  | (StepBase & { activity: 'dbtBuild'; args: BuildArgs })
  | (StepBase & {
      activity: 'audit';
      /** `verifiesPublish`: this audit checks a build that already ran in prod (wap's last step). */
      args: { buildStepId: string; verifiesPublish?: boolean };
    })
  | (StepBase & { activity: 'resolveRelations'; args: { prodTarget: string; buildTarget: string } })
  | (StepBase & { activity: 'syncFromProd'; args: { buildTarget: string; only?: string[] } })
  | (StepBase & { activity: 'resolvePublishSet'; args: { buildStepId: string; prodTarget: string } })
  | (StepBase & {
      activity: 'selectPublishSet';
      args: { buildStepId: string; prodTarget: string; scope: PublishScope };
    })
  | (StepBase & {
      activity: 'diffProd';
      /** The build whose manifest names each model's key and tags; the relations come from the publish set. */
      args: { buildStepId: string; prodTarget: string };
    })
  | (StepBase & { activity: 'backupProd'; args: { prodTarget: string; operation?: BackupOperation } })
  | (StepBase & { activity: 'publishTables'; args: { prodTarget: string } })
  | (StepBase & { activity: 'publishViews'; args: { prodTarget: string } })
  | (StepBase & { activity: 'publishRelations'; args: { prodTarget: string } })
  | (StepBase & { activity: 'swapSchemas'; args: { prodTarget: string } })
  | (StepBase & { activity: 'verifyProd'; args: { prodTarget: string } })
  | (StepBase & { activity: 'findBackup'; args: { prodTarget: string } })
  | (StepBase & { activity: 'restoreBackup'; args: { prodTarget: string } })
  | (StepBase & { activity: 'verifyRestore'; args: { prodTarget: string } });

export type StepActivityName = Step['activity'];

export type Compensation =
  | { activity: 'restoreProd'; title: string; args: { prodTarget: string } }
  | { activity: 'dropBackup'; title: string; args: { prodTarget: string } }
  | { activity: 'unswapSchemas'; title: string; args: { prodTarget: string } };

export interface Plan {
  strategy: PlanKind;
  /** Why this strategy, in one sentence (shown by `plan`). */
  rationale: string;
  steps: Step[];
}

/** Attempts of a step that is safe to repeat: it rewrites what readers never see, or replaces atomically. */
export const REPEATABLE_ATTEMPTS = 3;

/**
 * How often a step may run, from what it touches. A repeat is safe where it rewrites a location readers
 * never see (staging, audit, a backup), or where the change is one transaction or an idempotent
 * replacement (copies, view re-creation, a schema swap that recognises itself). dbt building in prod
 * is not: after a lost heartbeat the first attempt may still have committed part of its models, and a
 * second one would run incremental models on top of it (rows duplicated where readers see them). It
 * runs once; when it fails, the saga restores prod from the backup.
 */
export function attemptsFor(step: Step): { attempts: number; why?: string } {
  if (step.activity === 'dbtBuild' && step.touches === 'prod')
    return {
      attempts: 1,
      why: 'a repeat could run incremental models on top of a half-finished attempt; on failure prod is restored from the backup',
    };
  return { attempts: REPEATABLE_ATTEMPTS };
}

/** The plan with every step's attempts written in, so they travel with it. */
export function withAttempts(plan: Plan): Plan {
  return { ...plan, steps: plan.steps.map((step) => ({ ...step, attempts: attemptsFor(step).attempts })) };
}

/** How a step's status is shown in the UI's details, reports and terminals. */
export const STEP_ICONS: Record<StepRecord['status'], string> = {
  pending: '○',
  running: '▶',
  completed: '✔',
  failed: '✘',
  compensated: '↺',
  skipped: '–',
};

/** The approval gate sits right before the first step that changes prod or keeps a backup; -1 without one. */
export function approvalGateIndex(plan: Plan, input: Pick<DeployInput, 'approval'>): number {
  if (!input.approval?.required) return -1;
  return plan.steps.findIndex((s) => s.touches === 'prod' || s.touches === 'backup');
}

/** A plan as plain lines, for `dbt-deploy plan`; with `input`, the approval gate is shown where it waits. */
export function describePlan(plan: Plan, input: Pick<DeployInput, 'approval'> = {}): string[] {
  const gate = approvalGateIndex(plan, input);
  return plan.steps.flatMap((step, index) => {
    const undo = step.compensation ? `  (undo: ${step.compensation.title})` : '';
    const { attempts, why } = attemptsFor(step);
    // Only the exception is printed: every other step is retried (`REPEATABLE_ATTEMPTS`).
    const retries = attempts === 1 ? `, runs once: ${why}` : '';
    const line = `${index + 1}. ${step.title} [touches ${step.touches}${retries}]${undo}`;
    if (index !== gate || !input.approval) return [line];
    const { timeout, onTimeout } = input.approval;
    return [`   wait for \`dbt-deploy approve\` or \`abort\` (after ${timeout}: ${onTimeout})`, line];
  });
}
