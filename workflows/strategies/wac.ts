/**
 * Write-Audit-Clone: build and test everything in staging, and only when every model and test passes,
 * copy the published tables (tags such as `mart`, `utils`) to prod. Views cannot be cloned, so dbt
 * re-creates them in prod after the tables they read are in place.
 */
import type { Capabilities } from '../../activities/warehouses/capabilities.js';
import type { Plan } from '../plan.js';
import type { DeployInput } from '../types.js';

export function planWac(input: DeployInput, capabilities: Capabilities): Plan {
  const { prod, staging } = input.targets;
  const tags = input.publishTags.join(', ');
  const copyVerb = capabilities.zeroCopyClone ? 'Clone' : 'Copy';
  const atomicity = capabilities.transactionalDdl ? ' in one transaction' : ', one table at a time';
  return {
    strategy: 'wac',
    rationale: `build and audit in "${staging}", then ${copyVerb.toLowerCase()} only the tables tagged ${tags} to "${prod}"`,
    steps: [
      {
        id: 'build',
        activity: 'dbtBuild',
        title: `Build and test every model in target "${staging}"`,
        touches: 'staging',
        args: { target: staging },
      },
      {
        id: 'audit',
        activity: 'audit',
        title: 'Audit: every model succeeded and every test passed (warn and skipped block)',
        touches: 'nothing',
        args: { buildStepId: 'build' },
      },
      {
        id: 'select',
        activity: 'resolvePublishSet',
        title: `Select the models tagged ${tags} and their relations in "${prod}"`,
        touches: 'nothing',
        args: { buildStepId: 'build', prodTarget: prod },
      },
      {
        id: 'backup',
        activity: 'backupProd',
        title: `Back up the "${prod}" relations about to change`,
        touches: 'backup',
        args: { prodTarget: prod },
        compensation: {
          activity: 'dropBackup',
          title: 'drop this deploy’s backup',
          args: { prodTarget: prod },
        },
      },
      {
        id: 'publish-tables',
        activity: 'publishTables',
        title: `${copyVerb} the selected tables from "${staging}" to "${prod}"${atomicity}`,
        touches: 'prod',
        args: { prodTarget: prod },
        compensation: {
          activity: 'restoreProd',
          title: `restore "${prod}" from the backup`,
          args: { prodTarget: prod },
        },
      },
      {
        id: 'publish-views',
        activity: 'publishViews',
        title: `Re-create the selected views in "${prod}" with dbt`,
        touches: 'prod',
        args: { prodTarget: prod },
        compensation: {
          activity: 'restoreProd',
          title: `restore "${prod}" from the backup`,
          args: { prodTarget: prod },
        },
      },
      {
        id: 'verify',
        activity: 'verifyProd',
        title: `Verify "${prod}" matches "${staging}" (row count and checksum per relation)`,
        touches: 'nothing',
        args: { prodTarget: prod },
      },
    ],
  };
}
