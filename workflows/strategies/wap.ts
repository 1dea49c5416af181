/**
 * Write-Audit-Publish: build and test everything in an audit location that readers never see. Only
 * when it all passes are the top-level models (the publish tags) rebuilt in prod by dbt itself, with
 * their tests, reading the layers below them from the audit location they were just checked in
 * (dbt's defer). A failing audit means prod is never touched; a failing prod build restores the backup.
 */
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
  selectStep,
  steps,
  syncRawLayerStep,
} from './common.js';

export function planWap(input: DeployInput, options: PlanOptions = {}): Plan {
  const { prod } = input.targets;
  const auditTarget = input.targets.audit ?? input.targets.staging;
  const published = publishedModels(input);
  return {
    strategy: 'wap',
    rationale: `build and test everything in "${auditTarget}", then rebuild only the models ${published} in "${prod}"`,
    steps: steps(
      checkPublishStep(input),
      resolveStep(input, auditTarget),
      syncRawLayerStep(input, auditTarget),
      buildStep(input, { target: auditTarget }),
      auditStep(),
      selectStep(input, 'tagged'),
      diffStep(input, options),
      backupStep(input),
      {
        id: 'publish',
        activity: 'dbtBuild',
        title: `Rebuild the selected models in "${prod}" with dbt, reading the audited layers below them, tests included`,
        touches: 'prod',
        args: { target: prod, selectPublishSet: true, deferToStep: 'build' },
        compensation: restoreProd(input),
      },
      {
        id: 'verify',
        activity: 'audit',
        title: `Verify the "${prod}" build: every rebuilt model and its tests passed`,
        touches: 'nothing',
        args: { buildStepId: 'publish', verifiesPublish: true },
      },
    ),
  };
}
