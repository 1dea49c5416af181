/**
 * Mirror refresh: the raw layer (models that copy each source 1:1, `tag:raw` by default) is rebuilt
 * from the live sources in staging, audited, and only then replaces prod's raw layer. When a source
 * is down or fails its tests, prod keeps the last good copy and production deploys, which build
 * from the raw layer, still succeed.
 */
import type { Capabilities } from '../../activities/warehouses/capabilities.js';
import type { Plan } from '../plan.js';
import type { DeployInput } from '../types.js';
import {
  auditStep,
  backupStep,
  diffStep,
  type PlanOptions,
  publishRelationsStep,
  resolveStep,
  selectStep,
  steps,
  verifyStep,
} from './common.js';

export const DEFAULT_MIRROR_SELECT = ['tag:raw'];

export function planMirrorRefresh(
  input: DeployInput,
  capabilities: Capabilities,
  options: PlanOptions = {},
): Plan {
  const { staging } = input.targets;
  const select = input.mirror?.select ?? DEFAULT_MIRROR_SELECT;
  return {
    strategy: 'mirror',
    rationale: `refresh the raw layer (${select.join(' ')}) from the live sources in "${staging}", audit it, then replace prod's copy`,
    steps: steps(
      resolveStep(input, staging),
      {
        id: 'build',
        activity: 'dbtBuild',
        title: `Copy every source into the raw layer (${select.join(' ')}) in "${staging}" and test it`,
        touches: 'staging',
        args: { target: staging, select },
      },
      auditStep(),
      selectStep(input, 'built'),
      diffStep(input, options),
      backupStep(input, 'mirror'),
      publishRelationsStep(input, staging, capabilities),
      verifyStep(input, `"${staging}"`),
    ),
  };
}
