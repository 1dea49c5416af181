/**
 * The plan of an operation, made once at its start by a local activity: its result is recorded in the
 * workflow's history, so a replay after a worker upgrade reads the plan the operation started with
 * instead of recomputing it from the new code (see docs/architecture.md, "A plan fixed at the start").
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Plan } from '../workflows/plan.js';
import { planOperation, type PlanOptions, StrategyNotSupported } from '../workflows/strategies/index.js';
import type { DeployInput, Operation } from '../workflows/types.js';

export function planActivities() {
  return {
    async planOperation({
      input,
      operation,
      options,
    }: {
      input: DeployInput;
      operation: Operation;
      /** `{diff: false}` when the workflow replays a history from before the diff step; unset: today's plan. */
      options?: PlanOptions;
    }): Promise<Plan> {
      try {
        return planOperation(input, operation, options);
      } catch (error) {
        if (error instanceof StrategyNotSupported)
          throw ApplicationFailure.nonRetryable(error.message, 'StrategyNotSupported');
        throw error;
      }
    },
  };
}
