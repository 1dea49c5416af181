/**
 * Picks the plan for a deploy. Which strategies an engine can run is decided here from its declared
 * capabilities, so the CLI refuses an impossible strategy before anything is touched and `auto`
 * explains its choice.
 */
import { CAPABILITIES, type Capabilities } from '../../activities/warehouses/capabilities.js';
import { type Plan, withAttempts } from '../plan.js';
import { type DeployInput, type Operation, type PlanKind, STRATEGIES, type StrategyName } from '../types.js';
import { planBlueGreen } from './blue-green.js';
import type { PlanOptions } from './common.js';
import { planCloneBack } from './clone-back.js';
import { planMirrorRefresh } from './mirror.js';
import { planRollback } from './rollback.js';
import { planWac } from './wac.js';
import { planWap } from './wap.js';

type Concrete = Exclude<StrategyName, 'auto'>;

/** Why an engine cannot run a strategy, or undefined when it can. */
export function unsupportedBecause(strategy: Concrete, capabilities: Capabilities): string | undefined {
  switch (strategy) {
    case 'blue-green':
      return capabilities.atomicSwap === 'none' && !capabilities.transactionalDdl
        ? 'it can neither swap locations nor replace many relations in one transaction'
        : undefined;
    case 'clone-back':
    case 'wap':
    case 'wac':
    case 'mirror':
      return undefined;
    default:
      return assertNever(strategy);
  }
}

export function supportedStrategies(capabilities: Capabilities): Concrete[] {
  return STRATEGIES.filter(
    (s): s is Concrete => s !== 'auto' && unsupportedBecause(s, capabilities) === undefined,
  );
}

/** The safest strategy the engine supports, and the reason, for `auto`. */
export function chooseStrategy(capabilities: Capabilities): { strategy: Concrete; why: string } {
  if (capabilities.atomicSwap !== 'none')
    return {
      strategy: 'blue-green',
      why: `this warehouse swaps a whole ${capabilities.atomicSwap} atomically`,
    };
  if (capabilities.transactionalDdl)
    return {
      strategy: 'blue-green',
      why: 'this warehouse replaces every relation in one transaction, so readers see the old or the new prod, never a mix',
    };
  if (capabilities.zeroCopyClone)
    return { strategy: 'wac', why: 'this warehouse cannot swap, but clones tables without copying them' };
  return {
    strategy: 'wap',
    why: 'this warehouse can neither swap nor clone: prod is rebuilt only after an audit',
  };
}

export class StrategyNotSupported extends Error {
  override readonly name = 'StrategyNotSupported';
}

/** Builds the plan a deploy will run. A closed switch: adding a strategy fails to compile until handled. */
export function planDeploy(
  input: DeployInput,
  capabilities = CAPABILITIES[input.engine],
  options: PlanOptions = {},
): Plan {
  let strategy: Concrete;
  let chosen = '';
  if (input.strategy === 'auto') {
    const choice = chooseStrategy(capabilities);
    strategy = choice.strategy;
    chosen = `auto chose ${choice.strategy} (${choice.why}): `;
  } else {
    strategy = input.strategy;
  }
  const refused = unsupportedBecause(strategy, capabilities);
  if (refused) {
    throw new StrategyNotSupported(
      `strategy "${strategy}" cannot run on ${input.engine}: ${refused} (strategies that work: ${supportedStrategies(capabilities).join(', ')})`,
    );
  }
  const plan = withAttempts(planStrategy(strategy, input, capabilities, options));
  return chosen ? { ...plan, rationale: `${chosen}${plan.rationale}` } : plan;
}

function planStrategy(
  strategy: Concrete,
  input: DeployInput,
  capabilities: Capabilities,
  options: PlanOptions,
): Plan {
  switch (strategy) {
    case 'blue-green':
      return planBlueGreen(input, capabilities, options);
    case 'clone-back':
      return planCloneBack(input, capabilities, options);
    case 'wap':
      return planWap(input, options);
    case 'wac':
      return planWac(input, capabilities, options);
    case 'mirror':
      return planMirrorRefresh(input, capabilities, options);
    default:
      return assertNever(strategy);
  }
}

/** The plan of any operation the workflows run: a deploy, a mirror refresh or a rollback. */
export function planOperation(input: DeployInput, operation: Operation, options: PlanOptions = {}): Plan {
  switch (operation) {
    case 'rollback':
      return planRollback(input);
    case 'mirror-refresh':
      return planDeploy({ ...input, strategy: 'mirror' }, undefined, options);
    case 'deploy':
      return planDeploy(input, undefined, options);
  }
}

export type { PlanKind, PlanOptions };

function assertNever(value: never): never {
  throw new Error(`unhandled strategy: ${String(value)}`);
}
