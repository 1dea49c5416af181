/**
 * Write-Audit-Clone: build and test everything in staging, and only when every model and test passes,
 * copy the published tables (tags such as `mart`, `utils`) to prod. Views cannot be cloned: they are
 * re-created in prod, from the SQL dbt compiled for it, after the tables they read are in place.
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
  const build = buildStep(input, { target: staging });
  return {
    strategy: 'wac',
    rationale: `build and audit in "${staging}", then ${copyVerb.toLowerCase()} only the tables ${published} to "${prod}"`,
    steps: steps(
      // Without a raw layer, the check also compiles for prod and lists the build's snapshots, so the
      // build and the selection start no dbt of their own; with one, the resolve step maps everything.
      checkPublishStep(input, input.mirror ? undefined : build.args),
      input.mirror ? resolveStep(input, staging) : undefined,
      syncRawLayerStep(input, staging),
      build,
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
