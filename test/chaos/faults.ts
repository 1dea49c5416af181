/**
 * What a chaos trial does, drawn from a seeded PRNG: the engine, the strategy, the fault and the point
 * in the plan where it fires. The same seed always gives the same trials, so a failing one can be
 * run again alone (`npm run chaos -- --seed S --only N`).
 */
import type { StepActivityName } from '../../workflows/plan.js';
import { planDeploy } from '../../workflows/strategies/index.js';
import type { DeployInput } from '../../workflows/types.js';

export const ENGINES = ['duckdb', 'postgres'] as const;
export type ChaosEngine = (typeof ENGINES)[number];

export const CHAOS_STRATEGIES = ['blue-green', 'clone-back', 'wap', 'wac'] as const;
export type ChaosStrategy = (typeof CHAOS_STRATEGIES)[number];

export const FAULT_KINDS = ['kill-worker', 'warehouse-error', 'kill-dbt', 'stall'] as const;
/**
 * Drawn only when asked for (`--kind stall-dbt`): SIGSTOP on dbt alone, the worker lives. Known to
 * hang until the step's start-to-close timeout (docs/reliability.md, not covered).
 */
export const EXTRA_FAULT_KINDS = ['stall-dbt'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number] | (typeof EXTRA_FAULT_KINDS)[number];

/** Handed to the chaos worker as CHAOS_FAULT. */
export interface Fault {
  kind: FaultKind;
  /** Only this deploy's step is faulted (the trial's baseline deploy runs clean on the same worker). */
  deployId: string;
  stepId: string;
  /** How long after the step starts (for kill-dbt: after dbt is seen) the fault fires. */
  delayMs: number;
  /** warehouse-error: before the step's real work, or after it (the work committed, the reply was lost). */
  when?: 'before' | 'after';
  /** warehouse-error: on every attempt, not only the first. */
  persistent?: boolean;
}

export interface TrialSpec {
  index: number;
  /** The run's seed; with `index` it reproduces this trial. */
  seed: number;
  engine: ChaosEngine;
  strategy: ChaosStrategy;
  kind: FaultKind;
  stepId: string;
  delayMs: number;
  when?: 'before' | 'after';
  persistent?: boolean;
}

/** Activities that run dbt: where killing dbt means something. */
const DBT_ACTIVITIES: readonly StepActivityName[] = [
  'dbtBuild',
  'resolveRelations',
  'resolvePublishSet',
  'publishViews',
];

/** mulberry32: small, seedable, good enough to spread trials. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The steps of the plan a trial's deploy will run (the plan is pure: no warehouse needed). */
export function planSteps(engine: ChaosEngine, strategy: ChaosStrategy) {
  const input: DeployInput = {
    deployId: 'chaos',
    project: 'jaffle_shop',
    projectDir: '/chaos',
    profilesDir: '/chaos',
    profile: 'jaffle_shop',
    env: 'chaos',
    strategy,
    engine,
    targets: { prod: 'prod', staging: 'staging', audit: 'audit' },
    publishTags: ['mart', 'utils'],
    backupsKeep: 3,
  };
  return planDeploy(input).steps;
}

/**
 * Trial `index` of the run seeded `seed`; `fixed` pins the engine or the fault kind (the CI subset
 * covers each kind once on both engines) and leaves the rest to the PRNG.
 */
export function drawTrial(
  seed: number,
  index: number,
  fixed: Partial<Pick<TrialSpec, 'engine' | 'strategy' | 'kind'>> = {},
): TrialSpec {
  const random = prng(seed * 100_003 + index);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const engine = fixed.engine ?? pick(ENGINES);
  const strategy = fixed.strategy ?? pick(CHAOS_STRATEGIES);
  const kind = fixed.kind ?? pick(FAULT_KINDS);
  const steps = planSteps(engine, strategy);
  const onDbt = kind === 'kill-dbt' || kind === 'stall-dbt';
  const candidates = onDbt ? steps.filter((s) => DBT_ACTIVITIES.includes(s.activity)) : steps;
  const step = pick(candidates);
  // dbt runs for seconds, a warehouse step for a fraction of one: a longer delay would land past the
  // end of the plan.
  const runsDbt = onDbt || DBT_ACTIVITIES.includes(step.activity);
  const delayMs = Math.floor(random() * (runsDbt ? 4_000 : 300));
  const spec: TrialSpec = { index, seed, engine, strategy, kind, stepId: step.id, delayMs };
  if (kind === 'warehouse-error') {
    spec.when = random() < 0.5 ? 'before' : 'after';
    spec.persistent = random() < 0.4;
  }
  return spec;
}

/** One line naming a trial's fault, for tables and failure reports. */
export function describeFault(spec: TrialSpec): string {
  switch (spec.kind) {
    case 'warehouse-error':
      return `warehouse-error ${spec.when} ${spec.stepId}${spec.persistent ? ' (every attempt)' : ' (first attempt)'}`;
    case 'kill-dbt':
    case 'stall-dbt':
      return `${spec.kind} from ${spec.stepId}, ${spec.delayMs} ms into dbt`;
    default:
      return `${spec.kind} ${spec.delayMs} ms into ${spec.stepId}`;
  }
}
