/**
 * Steps pinned to one host. The steps of a deploy pass files to each other (dbt's artifacts, the
 * relation map), so they all run on the task queue of the worker that claimed the deploy. When that
 * host dies, its queue has no poller: the step in flight times out on its heartbeat, its retry is never
 * picked up, and the short schedule-to-start timeout (which Temporal never retries) says the host is
 * lost. Until a step has written prod or a backup, the group then starts again from its first step on
 * another host; after that, a lost host fails the step and the saga undoes what was written.
 */
import {
  ActivityFailure,
  type ActivityOptions,
  ApplicationFailure,
  log,
  proxyActivities,
  TimeoutFailure,
} from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { HostActivities, HostLease } from '../activities/hosts.js';
import type { DeployState, StepOutcome } from '../activities/steps.js';
import type { Step } from './plan.js';

/** Deploys started before host pinning run every step on the shared queue, as they did. */
export const HOST_PINNING_PATCH = 'steps-pinned-to-one-host';

const claims = proxyActivities<HostActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, initialInterval: '1 second' },
  cancellationType: 'TRY_CANCEL',
});

/** Runs one step with the activity options that place it on the deploy's host. */
export type PinnedStepRunner = (step: Step, state: DeployState, pin: ActivityOptions) => Promise<StepOutcome>;

type Merge = (state: DeployState, update: Partial<DeployState> | undefined) => DeployState;

export class HostPinnedSteps {
  private lease: HostLease | undefined;
  /** The steps finished on the current host, in order: what a new host must run again. */
  private readonly ran: Step[] = [];
  /** Set once a step that writes prod or a backup was scheduled: from then on the group cannot restart. */
  private committed = false;

  constructor(
    private readonly initial: DeployState,
    private readonly merge: Merge,
  ) {}

  /**
   * Runs `step` on the deploy's host. When the host was lost, the earlier steps run again on the new
   * one first, and the returned state carries everything they produced there.
   */
  async run(step: Step, state: DeployState, runStep: PinnedStepRunner): Promise<StepOutcome> {
    let rebuilt: DeployState | undefined;
    let lost = false;
    for (;;) {
      try {
        if (lost) {
          const from = this.lease?.host;
          this.lease = await claims.claimHost();
          log.warn('host lost: running the deploy again from its first step on another host', {
            lostHost: from,
            newHost: this.lease.host,
            stepsAgain: this.ran.map((s) => s.id),
          });
          rebuilt = await this.runAgain(runStep);
          lost = false;
        }
        const lease = (this.lease ??= await claims.claimHost());
        if (!this.committed && (step.touches === 'prod' || step.touches === 'backup')) {
          // The last moment a restart is safe: make sure the host is there before prod is touched.
          if (lease.pinned) await this.probe(lease);
          this.committed = true;
        }
        const outcome = await runStep(step, rebuilt ?? state, pinOf(lease));
        this.ran.push(step);
        return rebuilt ? { ...outcome, state: this.merge(rebuilt, outcome.state) } : outcome;
      } catch (error) {
        if (this.committed || !hostLost(error)) throw error;
        lost = true;
      }
    }
  }

  /** The steps that ran on the lost host, again on the current one, from the plan's first state. */
  private async runAgain(runStep: PinnedStepRunner): Promise<DeployState> {
    let state = this.initial;
    for (const step of this.ran) {
      const outcome = await runStep(step, state, pinOf(this.lease!));
      if (outcome.blocked) {
        // A step that passed on the lost host fails on the new one: the deploy cannot go on.
        throw ApplicationFailure.create({
          type: 'HostMoveBlocked',
          message: `on the new host "${step.title}" no longer passes: ${outcome.blocked}`,
          nonRetryable: true,
        });
      }
      state = this.merge(state, outcome.state);
    }
    return state;
  }

  private async probe(lease: HostLease): Promise<void> {
    await claims.claimHost.executeWithOptions(
      {
        ...pinOf(lease),
        startToCloseTimeout: '1 minute',
        retry: { maximumAttempts: 1 },
        summary: `Check that host ${lease.host} is still there`,
      },
      [],
    );
  }
}

function pinOf(lease: HostLease): ActivityOptions {
  return lease.pinned
    ? { taskQueue: lease.taskQueue, scheduleToStartTimeout: lease.scheduleToStartTimeout }
    : {};
}

/** Nobody picked the step up within the schedule-to-start timeout: its host's queue has no poller. */
export function hostLost(error: unknown): boolean {
  return (
    error instanceof ActivityFailure &&
    error.cause instanceof TimeoutFailure &&
    error.cause.timeoutType === TimeoutType.SCHEDULE_TO_START
  );
}
