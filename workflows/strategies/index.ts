import { CAPABILITIES } from '../../activities/warehouses/capabilities.js';
import type { Plan } from '../plan.js';
import type { DeployInput, StrategyName } from '../types.js';
import { planWac } from './wac.js';

/** Builds the plan a deploy will run. A closed switch: adding a strategy fails to compile until handled. */
export function planDeploy(input: DeployInput): Plan {
  const capabilities = CAPABILITIES[input.engine];
  const strategy: StrategyName = input.strategy;
  switch (strategy) {
    case 'wac':
      return planWac(input, capabilities);
    default:
      return assertNever(strategy);
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled strategy: ${String(value)}`);
}
