/**
 * Write-Audit-Clone: build and test everything in staging, and only when every model and test passes,
 * copy the published tables (tags such as `mart`, `utils`) to prod. Views cannot be cloned, so dbt
 * re-creates them in prod after the tables they read are in place.
 */
import type { Capabilities } from '../../activities/warehouses/capabilities.js';
import type { Plan } from '../plan.js';
import type { DeployInput } from '../types.js';
import {
  checkPublishStep,
  publishedModels,
  auditStep,
  backupStep,
  buildStep,
  diffStep,
  type PlanOptions,
  resolveStep,
  restoreProd,
  steps,
  syncRawLayerStep,
  verifyStep,
} from './common.js';

export function planWac(input: DeployInput, capabilities: Capabilities, options: PlanOptions = {}): Plan {
  const { prod, staging } = input.targets;
  const published = publishedModels(input);
  const copyVerb = capabilities.zeroCopyClone ? 'Clone' : 'Copy';
  const atomicity = capabilities.transactionalDdl ? ' in one transaction' : ', one table at a time';
  return {
    strategy: 'wac',
    rationale: `build and audit in "${staging}", then ${copyVerb.toLowerCase()} only the tables ${published} to "${prod}"`,
    steps: steps(
      checkPublishStep(input),
      input.mirror ? resolveStep(input, staging) : undefined,
      syncRawLayerStep(input, staging),
      buildStep(input, { target: staging }),
      auditStep(),
      {
        id: 'select',
        activity: 'resolvePublishSet',
        title: `Select the models ${published} and their relations in "${prod}"`,
        touches: 'nothing',
        args: { buildStepId: 'build', prodTarget: prod },
      },
      diffStep(input, options),
      backupStep(input),
      {
        id: 'publish-tables',
        activity: 'publishTables',
        title: `${copyVerb} the selected tables from "${staging}" to "${prod}"${atomicity}`,
        touches: 'prod',
        args: { prodTarget: prod },
        compensation: restoreProd(input),
      },
      {
        id: 'publish-views',
        activity: 'publishViews',
        title: `Re-create the selected views in "${prod}" from the SQL dbt compiled for it`,
        touches: 'prod',
        args: { prodTarget: prod },
        compensation: restoreProd(input),
      },
      verifyStep(input, `"${staging}"`),
    ),
  };
}
