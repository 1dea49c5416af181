/**
 * Blue/green: prod and staging are two complete copies of the project. Staging is first brought up to
 * prod (so incremental models never build on a copy one deploy behind), built and audited, and then
 * becomes prod in one cut-over: a schema swap where the engine can rename schemas in a transaction,
 * otherwise a copy of every relation inside one transaction.
 */
import type { Capabilities } from '../../activities/warehouses/capabilities.js';
import type { Plan, Step } from '../plan.js';
import type { DeployInput } from '../types.js';
import {
  auditStep,
  backupStep,
  buildStep,
  diffStep,
  type PlanOptions,
  publishRelationsStep,
  resolveStep,
  selectStep,
  steps,
  syncStep,
  verifyStep,
} from './common.js';

export function planBlueGreen(
  input: DeployInput,
  capabilities: Capabilities,
  options: PlanOptions = {},
): Plan {
  const { prod, staging } = input.targets;
  const swaps = capabilities.atomicSwap !== 'none';
  const database = capabilities.cutOver.kind === 'database-swap';
  const cutOver: Step[] = swaps
    ? [
        {
          id: 'swap',
          activity: 'swapSchemas',
          title: database
            ? `Swap "${staging}" into "${prod}": the staging database with prod's in one statement, or, with staging schemas in prod's database, one schema at a time (grants copied, views re-pointed at prod first); the old prod becomes this deploy's backup`
            : `Swap "${staging}" into "${prod}" in one transaction; the old prod schemas become this deploy's backup`,
          touches: 'prod',
          args: { prodTarget: prod },
          compensation: {
            activity: 'unswapSchemas',
            title: database ? `swap the old "${prod}" back` : `swap the old "${prod}" schemas back`,
            args: { prodTarget: prod },
          },
        },
      ]
    : [backupStep(input), publishRelationsStep(input, staging, capabilities)];
  return {
    strategy: 'blue-green',
    rationale: swaps
      ? `build on a fresh copy of "${prod}" in "${staging}", then swap ${database ? `databases in one statement (schemas one at a time when "${staging}" shares prod's database)` : 'schemas atomically'} (zero-copy backup)`
      : `build on a fresh copy of "${prod}" in "${staging}", then replace every relation of "${prod}" in one transaction (no schema rename on this engine)`,
    steps: steps(
      resolveStep(input, staging),
      syncStep(input, staging, capabilities),
      buildStep(input, { target: staging }),
      auditStep(),
      selectStep(input, 'all'),
      diffStep(input, options),
      ...cutOver,
      verifyStep(input, swaps ? 'the staging build it replaced' : `"${staging}"`),
    ),
  };
}
