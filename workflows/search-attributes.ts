/**
 * The search attributes every deploy carries, so the Temporal UI and `dbt-deploy history` can find a
 * deploy by project, environment, strategy, phase, status or commit. The dev server registers them
 * (`DEPLOY_SEARCH_ATTRIBUTES`); a production cluster needs them created once (docs/operations.md).
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const DEPLOY_SEARCH_ATTRIBUTES = {
  DbtDeployProject: 'Keyword',
  DbtDeployEnv: 'Keyword',
  DbtDeployStrategy: 'Keyword',
  /** Where the deploy is: a `DeployPhase` (`preparing`, `building`, `auditing`, `awaiting-approval`, ...). */
  DbtDeployPhase: 'Keyword',
  /** `running` until the end, then the result's status (`published`, `rolled_back`, `aborted`, `failed`). */
  DbtDeployStatus: 'Keyword',
  DbtDeployGitSha: 'Keyword',
} as const;

export const projectKey = defineSearchAttributeKey('DbtDeployProject', SearchAttributeType.KEYWORD);
export const envKey = defineSearchAttributeKey('DbtDeployEnv', SearchAttributeType.KEYWORD);
export const strategyKey = defineSearchAttributeKey('DbtDeployStrategy', SearchAttributeType.KEYWORD);
export const phaseKey = defineSearchAttributeKey('DbtDeployPhase', SearchAttributeType.KEYWORD);
export const statusKey = defineSearchAttributeKey('DbtDeployStatus', SearchAttributeType.KEYWORD);
export const gitShaKey = defineSearchAttributeKey('DbtDeployGitSha', SearchAttributeType.KEYWORD);
