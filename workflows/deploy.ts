/**
 * The workflows: a deploy, a mirror refresh and a rollback each run a plan as a saga. Each step is one activity; before a step that can
 * change the warehouse runs, its compensation is pushed, and on any failure (or an abort) the
 * compensations run newest first in a scope that cannot be cancelled. The workflow ends `published`,
 * or fails carrying the same result object with status `failed`, `rolled_back` or `aborted`.
 */
import {
  type ActivityOptions,
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time.js';
import type { DeployActivities, DeployState, StepOutcome } from '../activities/steps.js';
import { formatDiffSummary } from './diff.js';
import { approvalGateIndex, type Compensation, type Plan, STEP_ICONS, type Step } from './plan.js';
import {
  abortUpdate,
  approveUpdate,
  type Decision,
  type DecisionRequest,
  type DeployPhase,
  type DeployProgress,
  progressQuery,
} from './queries.js';
import { HOST_PINNING_PATCH, HostPinnedSteps } from './hosts.js';
import { projectIdOf } from './ids.js';
import { NOTIFY_PATCH, notifyWebhook } from './notify.js';
import { envKey, gitShaKey, phaseKey, projectKey, statusKey, strategyKey } from './search-attributes.js';
import { backupHandle, mergeState, publishedOf, stateFor } from './state.js';
import { planOperation } from './strategies/index.js';
import type { DeployInput, DeployResult, DeployStatus, Operation, StepRecord } from './types.js';

const ACTIVITY_DEFAULTS: ActivityOptions = {
  // dbt builds of real projects take hours; liveness comes from heartbeats, not from this bound.
  startToCloseTimeout: '6 hours',
  // Every step heartbeats at least every 2 s (a timer beside dbt and beside each warehouse session),
  // so 20 s is ten missed beats: a lost worker costs 20 s before its step is retried elsewhere.
  heartbeatTimeout: '20 seconds',
  retry: {
    maximumAttempts: 3,
    initialInterval: '2 seconds',
    nonRetryableErrorTypes: ['ConfigError', 'UnsupportedOperation', 'DbtInvocationError'],
  },
};

const planning = proxyLocalActivities<DeployActivities>({
  // Planning is pure computation on the worker; a plan the engine cannot run is refused, not retried.
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['StrategyNotSupported'] },
});

const activities = proxyActivities<DeployActivities>({
  ...ACTIVITY_DEFAULTS,
  // Cancelling a deploy must wait until dbt is really gone before compensations touch the warehouse.
  cancellationType: 'WAIT_CANCELLATION_COMPLETED',
});

/** Search attributes, phases and the report came after the first recorded histories. */
const OBSERVABLE_PATCH = 'search-attributes-and-report';

/**
 * The plan is made once, by a local activity, and carried in history. Before this marker the workflow
 * made it from the code at hand on every replay, so a worker upgrade could change a running deploy's
 * plan (a deploy waiting a day at the approval gate would resume with other steps, or fail to replay).
 */
const FIXED_PLAN_PATCH = 'plan-fixed-at-start';

/** The outcome heads the current details once an operation ends (details only: no command). */
const OUTCOME_DETAILS_PATCH = 'outcome-in-details';
/**
 * Plans carry a diff of prod against the candidate, and deploy.yml's audit rules, before the cut-over.
 * Histories from before it replay the plans they were recorded with (see `planOf`).
 */
const DIFF_PATCH = 'diff-before-cut-over';

/** A step said publish must not go ahead (failed audit, verify mismatch): no retry, run the saga. */
const PUBLISH_BLOCKED = 'PublishBlocked';

export async function deployWorkflow(input: DeployInput): Promise<DeployResult> {
  const patches = patchesAtStart(input);
  return runPlan(input, await planOf(input, 'deploy', patches), patches);
}

/** Refreshes the raw layer; its own workflow type so the UI and `history` tell it from a deploy. */
export async function refreshMirrorWorkflow(input: DeployInput): Promise<DeployResult> {
  const patches = patchesAtStart(input);
  return runPlan(input, await planOf(input, 'mirror-refresh', patches), patches);
}

/** Restores prod to its state before an earlier deploy (`input.rollbackTo`, or the latest). */
export async function rollbackWorkflow(input: DeployInput): Promise<DeployResult> {
  const patches = patchesAtStart(input);
  return runPlan(input, await planOf(input, 'rollback', patches), patches);
}

/** Which of the workflow's changes this run (or the history it replays) has. */
interface Patches {
  observable: boolean;
  fixedPlan: boolean;
  hostPinning: boolean;
  /** The webhook of deploy.yml `notify` is told; false when the input has none. */
  notify: boolean;
  outcomeDetails: boolean;
  diff: boolean;
}

/**
 * Every `patched()` check, made before the first await. A check made after the planning local
 * activity would put its marker in the same workflow task as the activity's result, and a worker that
 * rebuilds the run from history (after a cache eviction or a crash) meets that marker before the code
 * has asked for it: a non-determinism error that leaves the deploy stuck. The order keeps older
 * histories replaying: theirs begin with the observability marker, or with none.
 */
function patchesAtStart(input: DeployInput): Patches {
  return {
    observable: patched(OBSERVABLE_PATCH),
    fixedPlan: patched(FIXED_PLAN_PATCH),
    hostPinning: patched(HOST_PINNING_PATCH),
    // Only an input with a webhook asks, so operations without one record no extra marker.
    notify: input.notify ? patched(NOTIFY_PATCH) : false,
    outcomeDetails: patched(OUTCOME_DETAILS_PATCH),
    diff: patched(DIFF_PATCH),
  };
}

/**
 * The operation's plan, fixed at its start: the local activity's result is recorded in history, and a
 * replay reads it back instead of planning again with whatever code the worker runs now. Histories from
 * before the marker made the plan here, in workflow code, and replay that way; all of them come from
 * before the diff step too, so their plan has none.
 */
async function planOf(input: DeployInput, operation: Operation, patches: Patches): Promise<Plan> {
  const options = { diff: patches.diff };
  if (patches.fixedPlan) {
    try {
      return await planning.planOperation.executeWithOptions(
        { summary: `Plan the ${operation} (${input.strategy} on ${input.engine})` },
        [{ input, operation, options }],
      );
    } catch (error) {
      throw refused(error);
    }
  }
  try {
    return planOperation(input, operation, options);
  } catch (error) {
    throw refused(error);
  }
}

/** A plan that cannot be made (the engine cannot run the strategy) fails the workflow, not its task. */
function refused(error: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'StrategyNotSupported',
    message: messageOf(error),
    nonRetryable: true,
  });
}

async function runPlan(input: DeployInput, plan: Plan, patches: Patches): Promise<DeployResult> {
  // Histories recorded before search attributes and reports existed replay without them.
  const observable = patches.observable;
  const startedAt = new Date().toISOString();
  const steps: StepRecord[] = plan.steps.map((s) => ({ id: s.id, title: s.title, status: 'pending' }));
  const compensations: Compensation[] = [];
  const gate = approvalGateIndex(plan, input);
  let state: DeployState = { artifacts: {} };
  // Deploys started before host pinning keep running every step on the shared queue.
  const hosts = patches.hostPinning ? new HostPinnedSteps(state, mergeState) : undefined;
  let current = -1;
  let prodTouched = false;
  let phase: DeployPhase = 'preparing';
  let decision = null as Decision | null;
  let waitingSince = null as string | null;
  let ending = false;
  let abortedAtGate = false;
  const work = new CancellationScope();

  const enter = (next: DeployPhase) => {
    if (observable && next !== phase) upsertSearchAttributes([{ key: phaseKey, value: next }]);
    phase = next;
  };
  if (observable) {
    upsertSearchAttributes([
      { key: projectKey, value: projectIdOf(input) },
      { key: envKey, value: input.env },
      { key: strategyKey, value: plan.strategy },
      { key: phaseKey, value: phase },
      { key: statusKey, value: 'running' },
      ...(input.gitSha ? [{ key: gitShaKey, value: input.gitSha }] : []),
    ]);
  }

  setHandler(progressQuery, (): DeployProgress => ({
    ...progressOf(plan, steps, current, startedAt),
    phase,
    diff: state.diff ?? null,
    approval:
      waitingSince && input.approval
        ? {
            waitingSince,
            deadline: new Date(Date.parse(waitingSince) + msToNumber(input.approval.timeout)).toISOString(),
            onTimeout: input.approval.onTimeout,
          }
        : null,
  }));
  setHandler(
    approveUpdate,
    (request): Decision => {
      decision = { kind: 'approved', by: request.by, at: new Date().toISOString(), ...noteOf(request) };
      return decision;
    },
    {
      validator: (request) => {
        requireWho(request);
        if (waitingSince === null || decision !== null) {
          throw new Error(
            `deploy ${input.deployId} is not waiting for approval (it is ${ending ? 'ending' : phase}); nothing to approve`,
          );
        }
      },
    },
  );
  setHandler(
    abortUpdate,
    (request): Decision => {
      decision = { kind: 'aborted', by: request.by, at: new Date().toISOString(), ...noteOf(request) };
      // At the gate the wait ends by itself; during a step, cancelling it stops dbt and runs the saga.
      if (waitingSince === null) work.cancel();
      return decision;
    },
    {
      validator: (request) => {
        requireWho(request);
        if (ending || decision?.kind === 'aborted')
          throw new Error(`deploy ${input.deployId} is already ending; there is nothing left to abort`);
      },
    },
  );
  showDetails(plan, steps);

  try {
    await work.run(async () => {
      for (const [index, step] of plan.steps.entries()) {
        if (index === gate && input.approval) {
          enter('awaiting-approval');
          waitingSince = new Date().toISOString();
          showDetails(
            plan,
            steps,
            [
              `**awaiting approval** until the deadline: \`dbt-deploy approve --env ${input.env}\``,
              // What the approver says yes to; the UI shows it beside the steps.
              ...(state.diff ? ['', '```', ...formatDiffSummary(state.diff), '```'] : []),
            ].join('\n'),
          );
          // Not awaited: the gate's deadline runs from now, however long the webhook takes.
          if (patches.notify)
            void notifyWebhook(input, 'awaiting_approval', {
              workflowId: workflowInfo().workflowId,
              approval: {
                waitingSince,
                deadline: new Date(
                  Date.parse(waitingSince) + msToNumber(input.approval.timeout),
                ).toISOString(),
                onTimeout: input.approval.onTimeout,
              },
            });
          const decided = await condition(() => decision !== null, input.approval.timeout);
          if (!decided) {
            const note = `no decision within ${input.approval.timeout}`;
            const kind = input.approval.onTimeout === 'approve' ? 'approved' : 'aborted';
            decision = { kind, by: 'approval timeout', at: new Date().toISOString(), note };
          }
          waitingSince = null;
          if (decision?.kind === 'aborted') {
            abortedAtGate = true;
            throw ApplicationFailure.create({
              type: 'DeployAborted',
              message: `aborted at the approval gate by ${decision.by}${decision.note ? `: ${decision.note}` : ''}`,
              nonRetryable: true,
            });
          }
        }
        current = index;
        if (step.compensation && !compensations.some((c) => sameCompensation(c, step.compensation!))) {
          compensations.push(step.compensation);
        }
        prodTouched ||= step.touches === 'prod';
        enter(phaseOf(step));
        mark(steps, index, 'running');
        showDetails(plan, steps);
        const outcome = hosts
          ? await hosts.run(step, state, (s, st, pin) => runStep(s, input, st, pin))
          : await runStep(step, input, state);
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
        // An abort was accepted while this step ran, and the step finished anyway (a warehouse
        // statement that commits does not stop for a cancel). The abort still stands: the saga undoes
        // the step. Without this check an abort during the last step would end the deploy `published`.
        if (decision?.kind === 'aborted') throw new CancelledFailure(abortReason(decision));
      }
    });
    ending = true;
    const published = resultOf(input, plan, 'published', state, steps, startedAt, undefined, decision);
    showDetails(plan, steps, undefined, patches.outcomeDetails ? outcomeOf(published) : undefined);
    return await finish(published);
  } catch (error) {
    ending = true;
    const running = steps.findIndex((s) => s.status === 'running');
    if (running >= 0) mark(steps, running, 'failed', messageOf(error));
    const aborted = isCancellation(error) || decision?.kind === 'aborted';
    enter('compensating');
    const undo = await CancellationScope.nonCancellable(() =>
      compensate(plan, compensations, input, state, steps),
    );
    let status: DeployStatus = aborted ? 'aborted' : prodTouched ? 'rolled_back' : 'failed';
    // An abort cancels the running step, whose own error (dbt killed) says less than who aborted and why.
    let reason = decision?.kind === 'aborted' && !abortedAtGate ? abortReason(decision) : messageOf(error);
    if (undo.failed) {
      status = 'failed';
      reason = `${reason}; then the rollback failed (${undo.failed}), the backup was kept: prod needs attention`;
    }
    const result = await CancellationScope.nonCancellable(() =>
      finish(resultOf(input, plan, status, state, steps, startedAt, reason, decision)),
    );
    if (patches.outcomeDetails) showDetails(plan, steps, undefined, outcomeOf(result));
    else showDetails(plan, steps, `**${status}**: ${reason}`);
    throw ApplicationFailure.create({
      type: failureTypeOf(status),
      message: reason,
      nonRetryable: true,
      details: [result],
    });
  }

  /** The end of every deploy: its report on the worker, its final search attributes, open updates done. */
  async function finish(result: DeployResult): Promise<DeployResult> {
    enter('done');
    if (!observable) return result;
    upsertSearchAttributes([{ key: statusKey, value: result.status }]);
    let report: string | undefined;
    try {
      ({ report } = await activities.writeReport.executeWithOptions(
        { ...ACTIVITY_DEFAULTS, summary: 'Write the deploy report (markdown and JSON)' },
        [{ input, result }],
      ));
    } catch (error) {
      // Bookkeeping: a report that cannot be written must not undo a deploy that was verified.
      log.warn('the deploy report was not written', { error: messageOf(error) });
    }
    const final = report ? { ...result, report } : result;
    if (patches.notify)
      await notifyWebhook(input, final.status, { workflowId: final.workflowId, result: final });
    await condition(allHandlersFinished);
    return final;
  }
}

function requireWho(request: DecisionRequest): void {
  if (!request?.by?.trim()) throw new Error('say who you are: the request needs a non-empty "by"');
}

function noteOf(request: DecisionRequest): { note?: string } {
  return request.note ? { note: request.note } : {};
}

function abortReason(decision: Decision): string {
  return `aborted by ${decision.by}${decision.note ? `: ${decision.note}` : ''}`;
}

function phaseOf(step: Step): DeployPhase {
  switch (step.activity) {
    case 'dbtBuild':
      return step.touches === 'prod' ? 'publishing' : 'building';
    case 'audit':
      return step.args.verifiesPublish ? 'verifying' : 'auditing';
    case 'diffProd':
      return 'auditing';
    case 'backupProd':
      return 'backing-up';
    case 'publishTables':
    case 'publishViews':
    case 'publishRelations':
    case 'swapSchemas':
    case 'restoreBackup':
      return 'publishing';
    case 'verifyProd':
    case 'verifyRestore':
      return 'verifying';
    default:
      return 'preparing';
  }
}

async function runStep(
  step: Step,
  input: DeployInput,
  state: DeployState,
  pin: ActivityOptions = {},
): Promise<StepOutcome> {
  // The plan says how often the step may run (`attemptsFor`); plans recorded before that field keep 3.
  const options: ActivityOptions = {
    ...ACTIVITY_DEFAULTS,
    retry: { ...ACTIVITY_DEFAULTS.retry, maximumAttempts: step.attempts ?? 3 },
    // Activity options are not replayed against history: an input without the key keeps 20 s.
    ...(input.heartbeatTimeout ? { heartbeatTimeout: input.heartbeatTimeout } : {}),
    summary: step.title,
    ...pin,
  };
  // Only what this activity reads of the state: a step's input stays the same size at any project size.
  const base = { input, state: stateFor(step.activity, state), stepId: step.id };
  // One case per activity: a step the executor cannot run is a compile error, not a run-time surprise.
  switch (step.activity) {
    case 'checkPublishSelection':
      return activities.checkPublishSelection.executeWithOptions(options, [{ ...base, args: step.args }]);
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
    case 'diffProd':
      return activities.diffProd.executeWithOptions(options, [{ ...base, args: step.args }]);
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
    const request = {
      input,
      state: stateFor(compensation.activity, state),
      stepId: `undo-${compensation.activity}`,
      args: compensation.args,
    };
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
  decision: Decision | null = null,
): DeployResult {
  return {
    deployId: input.deployId,
    workflowId: workflowInfo().workflowId,
    env: input.env,
    strategy: plan.strategy,
    status,
    ...(reason ? { reason } : {}),
    ...(status === 'published' ? publishedOf(state) : { published: [], publishedCount: 0 }),
    audit: state.audit ?? null,
    ...(state.diff ? { diff: state.diff } : {}),
    // After a rollback the backup has served its purpose and is dropped; report where it was only if kept.
    backup:
      (status === 'published' || status === 'failed') && state.backup ? backupHandle(state.backup) : null,
    steps,
    artifactsDir: state.artifactsDir ?? '',
    startedAt,
    finishedAt: new Date().toISOString(),
    decision,
    ...(input.gitSha ? { gitSha: input.gitSha } : {}),
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

function progressOf(
  plan: Plan,
  steps: StepRecord[],
  current: number,
  startedAt: string,
): Omit<DeployProgress, 'phase' | 'approval'> {
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

/** The Temporal UI shows this markdown as the workflow's current details; `outcome` heads it once it ended. */
function showDetails(plan: Plan, steps: StepRecord[], footer?: string, outcome?: string): void {
  // A markdown list: single newlines would run the steps together into one paragraph in the UI.
  const lines = steps.map((s) => `- ${STEP_ICONS[s.status]} ${s.title}${s.summary ? ` — ${s.summary}` : ''}`);
  setCurrentDetails(
    [
      ...(outcome ? [outcome, ''] : []),
      `**${plan.strategy}**: ${plan.rationale}`,
      '',
      ...lines,
      ...(footer ? ['', footer] : []),
    ].join('\n'),
  );
}

/** `**Outcome: published** in 42.0 s: 6 relations (deploy prod-…, git abc)`: the run's ending in one line. */
function outcomeOf(result: DeployResult): string {
  const seconds = ((Date.parse(result.finishedAt) - Date.parse(result.startedAt)) / 1000).toFixed(1);
  const what =
    result.status === 'published'
      ? `${result.published.length} relations in prod`
      : (result.reason ?? result.status);
  const git = result.gitSha ? `, git ${result.gitSha}` : '';
  return `**Outcome: ${result.status}** in ${seconds} s (deploy ${result.deployId}${git}): ${what}`;
}
