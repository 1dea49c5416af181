/**
 * The workflows: a deploy, a mirror refresh and a rollback each run a plan as a saga. Each step is one activity; before a step that can
 * change the warehouse runs, its compensation is pushed, and on any failure (or an abort) the
 * compensations run newest first in a scope that cannot be cancelled. The workflow ends `published`,
 * or fails carrying the same result object with status `failed`, `rolled_back` or `aborted`.
 */
import {
  type ActivityOptions,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { DeployActivities, DeployState, StepOutcome } from '../activities/steps.js';
import { type Compensation, type Plan, type Step } from './plan.js';
import { progressQuery, type DeployProgress } from './queries.js';
import { planDeploy } from './strategies/index.js';
import { planRollback } from './strategies/rollback.js';
import type { DeployInput, DeployResult, DeployStatus, StepRecord } from './types.js';

const ACTIVITY_DEFAULTS: ActivityOptions = {
  // dbt builds of real projects take hours; liveness comes from heartbeats, not from this bound.
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '60 seconds',
  retry: {
    maximumAttempts: 3,
    initialInterval: '2 seconds',
    nonRetryableErrorTypes: ['ConfigError', 'UnsupportedOperation', 'DbtInvocationError'],
  },
};

const activities = proxyActivities<DeployActivities>({
  ...ACTIVITY_DEFAULTS,
  // Cancelling a deploy must wait until dbt is really gone before compensations touch the warehouse.
  cancellationType: 'WAIT_CANCELLATION_COMPLETED',
});

/** A step said publish must not go ahead (failed audit, verify mismatch): no retry, run the saga. */
const PUBLISH_BLOCKED = 'PublishBlocked';

export async function deployWorkflow(input: DeployInput): Promise<DeployResult> {
  return runPlan(
    input,
    planOrRefuse(() => planDeploy(input)),
  );
}

/** Refreshes the raw layer; its own workflow type so the UI and `history` tell it from a deploy. */
export async function refreshMirrorWorkflow(input: DeployInput): Promise<DeployResult> {
  return runPlan(
    input,
    planOrRefuse(() => planDeploy({ ...input, strategy: 'mirror' })),
  );
}

/** Restores prod to its state before an earlier deploy (`input.rollbackTo`, or the latest). */
export async function rollbackWorkflow(input: DeployInput): Promise<DeployResult> {
  return runPlan(input, planRollback(input));
}

/** A plan that cannot be made (the engine cannot run the strategy) fails the workflow, not its task. */
function planOrRefuse(make: () => Plan): Plan {
  try {
    return make();
  } catch (error) {
    throw ApplicationFailure.create({
      type: 'StrategyNotSupported',
      message: messageOf(error),
      nonRetryable: true,
    });
  }
}

async function runPlan(input: DeployInput, plan: Plan): Promise<DeployResult> {
  const startedAt = new Date().toISOString();
  const steps: StepRecord[] = plan.steps.map((s) => ({ id: s.id, title: s.title, status: 'pending' }));
  const compensations: Compensation[] = [];
  let state: DeployState = { artifacts: {} };
  let current = -1;
  let prodTouched = false;

  setHandler(progressQuery, (): DeployProgress => progressOf(plan, steps, current, startedAt));
  showDetails(plan, steps);

  try {
    for (const [index, step] of plan.steps.entries()) {
      current = index;
      if (step.compensation && !compensations.some((c) => sameCompensation(c, step.compensation!))) {
        compensations.push(step.compensation);
      }
      prodTouched ||= step.touches === 'prod';
      mark(steps, index, 'running');
      showDetails(plan, steps);
      const outcome = await runStep(step, input, state);
      state = mergeState(state, outcome.state);
      if (outcome.blocked) {
        mark(steps, index, 'failed', outcome.summary);
        throw ApplicationFailure.create({
          type: PUBLISH_BLOCKED,
          message: outcome.blocked,
          nonRetryable: true,
        });
      }
      mark(steps, index, 'completed', outcome.summary);
    }
    showDetails(plan, steps);
    return resultOf(input, plan, 'published', state, steps, startedAt);
  } catch (error) {
    const running = steps.findIndex((s) => s.status === 'running');
    if (running >= 0) mark(steps, running, 'failed', messageOf(error));
    const aborted = isCancellation(error);
    const undo = await CancellationScope.nonCancellable(() =>
      compensate(plan, compensations, input, state, steps),
    );
    let status: DeployStatus = aborted ? 'aborted' : prodTouched ? 'rolled_back' : 'failed';
    let reason = messageOf(error);
    if (undo.failed) {
      status = 'failed';
      reason = `${reason}; then the rollback failed (${undo.failed}), the backup was kept: prod needs attention`;
    }
    const result = resultOf(input, plan, status, state, steps, startedAt, reason);
    showDetails(plan, steps, `**${status}**: ${reason}`);
    throw ApplicationFailure.create({
      type: failureTypeOf(status),
      message: reason,
      nonRetryable: true,
      details: [result],
    });
  }
}

async function runStep(step: Step, input: DeployInput, state: DeployState): Promise<StepOutcome> {
  const options = { ...ACTIVITY_DEFAULTS, summary: step.title };
  const base = { input, state, stepId: step.id };
  // One case per activity: a step the executor cannot run is a compile error, not a run-time surprise.
  switch (step.activity) {
    case 'dbtBuild':
      return activities.dbtBuild.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'audit':
      return activities.audit.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'resolveRelations':
      return activities.resolveRelations.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'syncFromProd':
      return activities.syncFromProd.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'resolvePublishSet':
      return activities.resolvePublishSet.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'selectPublishSet':
      return activities.selectPublishSet.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'backupProd':
      return activities.backupProd.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'publishTables':
      return activities.publishTables.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'publishViews':
      return activities.publishViews.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'publishRelations':
      return activities.publishRelations.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'swapSchemas':
      return activities.swapSchemas.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'verifyProd':
      return activities.verifyProd.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'findBackup':
      return activities.findBackup.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'restoreBackup':
      return activities.restoreBackup.executeWithOptions(options, [{ ...base, args: step.args }]);
    case 'verifyRestore':
      return activities.verifyRestore.executeWithOptions(options, [{ ...base, args: step.args }]);
  }
}

/**
 * Runs compensations newest first. It stops at the first one that fails: a later compensation (such as
 * dropping the backup) must never run when the restore before it did not finish.
 */
async function compensate(
  plan: Plan,
  compensations: Compensation[],
  input: DeployInput,
  state: DeployState,
  steps: StepRecord[],
): Promise<{ failed?: string }> {
  for (const compensation of [...compensations].reverse()) {
    const options = { ...ACTIVITY_DEFAULTS, summary: `Compensate: ${compensation.title}` };
    const request = { input, state, stepId: `undo-${compensation.activity}`, args: compensation.args };
    try {
      switch (compensation.activity) {
        case 'restoreProd':
          await activities.restoreProd.executeWithOptions(options, [request]);
          break;
        case 'dropBackup':
          await activities.dropBackup.executeWithOptions(options, [request]);
          break;
        case 'unswapSchemas':
          await activities.unswapSchemas.executeWithOptions(options, [request]);
          break;
      }
    } catch (error) {
      return { failed: `${compensation.title}: ${messageOf(error)}` };
    }
  }
  for (const [index, step] of steps.entries()) {
    const touches = plan.steps[index]?.touches;
    if (step.status === 'completed' && (touches === 'prod' || touches === 'backup'))
      mark(steps, index, 'compensated', step.summary);
    if (step.status === 'pending') mark(steps, index, 'skipped');
  }
  return {};
}

/** Later steps add to what earlier ones learned; each step's artifacts are kept under its own id. */
function mergeState(state: DeployState, update: Partial<DeployState> | undefined): DeployState {
  if (!update) return state;
  return { ...state, ...update, artifacts: { ...state.artifacts, ...update.artifacts } };
}

function sameCompensation(a: Compensation, b: Compensation): boolean {
  return a.activity === b.activity && JSON.stringify(a.args) === JSON.stringify(b.args);
}

function mark(steps: StepRecord[], index: number, status: StepRecord['status'], summary?: string): void {
  const step = steps[index];
  if (step) steps[index] = { ...step, status, ...(summary !== undefined ? { summary } : {}) };
}

function resultOf(
  input: DeployInput,
  plan: Plan,
  status: DeployStatus,
  state: DeployState,
  steps: StepRecord[],
  startedAt: string,
  reason?: string,
): DeployResult {
  return {
    deployId: input.deployId,
    workflowId: workflowInfo().workflowId,
    env: input.env,
    strategy: plan.strategy,
    status,
    ...(reason ? { reason } : {}),
    published: status === 'published' ? (state.published ?? []) : [],
    audit: state.audit ?? null,
    // After a rollback the backup has served its purpose and is dropped; report where it was only if kept.
    backup: status === 'published' || status === 'failed' ? (state.backup ?? null) : null,
    steps,
    artifactsDir: state.artifactsDir ?? '',
    startedAt,
    finishedAt: new Date().toISOString(),
  };
}

function failureTypeOf(status: DeployStatus): string {
  switch (status) {
    case 'aborted':
      return 'DeployAborted';
    case 'rolled_back':
      return 'DeployRolledBack';
    default:
      return 'DeployFailed';
  }
}

function messageOf(error: unknown): string {
  // An activity's own message sits in the cause; the ActivityFailure wrapper only says "activity failed".
  if (error instanceof ActivityFailure && error.cause) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}

function progressOf(plan: Plan, steps: StepRecord[], current: number, startedAt: string): DeployProgress {
  const step = steps[current];
  return {
    strategy: plan.strategy,
    step: step
      ? { index: current + 1, of: steps.length, id: step.id, title: step.title, status: step.status }
      : null,
    steps,
    startedAt,
    elapsedMs: Date.now() - Date.parse(startedAt),
  };
}

const ICONS: Record<StepRecord['status'], string> = {
  pending: '○',
  running: '▶',
  completed: '✔',
  failed: '✘',
  compensated: '↺',
  skipped: '–',
};

/** The Temporal UI shows this markdown as the workflow's current details. */
function showDetails(plan: Plan, steps: StepRecord[], footer?: string): void {
  const lines = steps.map((s) => `${ICONS[s.status]} ${s.title}${s.summary ? ` — ${s.summary}` : ''}`);
  setCurrentDetails(
    [`**${plan.strategy}**: ${plan.rationale}`, '', ...lines, ...(footer ? ['', footer] : [])].join('\n'),
  );
}
