/**
 * Clone-back (the article's "production rollbacks"): clone prod into staging, rebuild only what
 * changed (or carries a publish tag) on top of that copy, audit it, and clone the rebuilt relations
 * back to prod. Unchanged models are never rebuilt, and incremental models always start from prod.
 */
import type { Capabilities } from '../../activities/warehouses/capabilities.js';
import type { Plan } from '../plan.js';
import { publishSelectionOf, publishSelectors } from '../publish-selection.js';
import type { DeployInput } from '../types.js';
import {
  withUpstreamViews,
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

export function planCloneBack(
  input: DeployInput,
  capabilities: Capabilities,
  options: PlanOptions = {},
): Plan {
  const { prod, staging } = input.targets;
  const select = input.select ?? ['state:modified+', ...publishSelectors(publishSelectionOf(input))];
  return {
    strategy: 'clone-back',
    rationale: `copy "${prod}" into "${staging}", rebuild ${select.join(' ')} there, audit, then copy the rebuilt relations back`,
    steps: steps(
      resolveStep(input, staging),
      syncStep(input, staging, capabilities),
      buildStep(
        input,
        { target: staging, select: withUpstreamViews(select), stateAware: true },
        `the selected models (${select.join(' ')}) and the views they read`,
      ),
      auditStep(),
      selectStep(input, 'built'),
      diffStep(input, options),
      backupStep(input),
      publishRelationsStep(input, staging, capabilities),
      verifyStep(input, `"${staging}"`),
    ),
  };
}
