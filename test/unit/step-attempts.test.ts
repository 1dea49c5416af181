/** Each step's attempts come from what it touches, are written into the plan, and `plan` prints the exception. */
import { describe, expect, it } from 'vitest';
import { CAPABILITIES, ENGINES } from '../../activities/warehouses/capabilities.js';
import { describePlan, REPEATABLE_ATTEMPTS } from '../../workflows/plan.js';
import { planDeploy, supportedStrategies } from '../../workflows/strategies/index.js';
import { planRollback } from '../../workflows/strategies/rollback.js';
import { deployInput } from './deploy-input.js';

describe.each(ENGINES)('step attempts on %s', (engine) => {
  // Only what the engine runs: BigQuery refuses blue-green before a plan is made.
  it.each(supportedStrategies(CAPABILITIES[engine]))(
    '%s: only a dbt build in prod runs once; every other step is retried',
    (strategy) => {
      const plan = planDeploy(
        deployInput({ engine, strategy, targets: { prod: 'prod', staging: 'staging' } }),
      );
      for (const step of plan.steps) {
        const once = step.activity === 'dbtBuild' && step.touches === 'prod';
        expect(step.attempts, `${strategy}/${step.id}`).toBe(once ? 1 : REPEATABLE_ATTEMPTS);
      }
      expect(plan.steps.some((s) => s.attempts === 1)).toBe(strategy === 'wap');
    },
  );

  it('a rollback retries every step: each replaces or copies, so a repeat gives the same prod', () => {
    expect(planRollback(deployInput({ engine })).steps.map((s) => s.attempts)).toEqual([3, 3, 3, 3]);
  });
});

it('plan prints why wap`s prod build runs once, and nothing for the steps that are retried', () => {
  const lines = describePlan(planDeploy(deployInput({ strategy: 'wap' })));
  expect(lines.filter((l) => l.includes('runs once'))).toEqual([
    expect.stringMatching(
      /^7\. Rebuild the selected models in "prod" .*\[touches prod, runs once: a repeat could run incremental models/,
    ),
  ]);
});
