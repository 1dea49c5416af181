/**
 * The client library (`dbt-temporal-deploy/client`): prepare a deploy from a dbt project, start it on
 * your own Temporal client, follow it, approve or abort it. The CLI is built on exactly these.
 */
export { connectClient, temporalSettings, type TemporalSettings } from './connection.js';
export {
  AesGcmCodec,
  type CodecKey,
  codecKeysFromEnv,
  encryptingDataConverter,
  parseCodecKeys,
  projectAlias,
  readCodecKeys,
} from './codec.js';
export { type CodecServer, type CodecServerOptions, startCodecServer } from './codec-server.js';
export {
  decide,
  deployProgress,
  deployResult,
  deployWorkflowId,
  type LiveProgress,
  newDeployId,
  type Operation,
  runningDeploy,
  startDeploy,
  whoAmI,
} from './deploys.js';
export { type DeployOptions, identifyEnvironment, type PreparedDeploy, prepareDeploy } from './preflight.js';
export { deployHistory, formatHistory, type HistoryLine } from './history.js';
export { formatPlan, formatResult } from './report.js';
export { DeployInProgress, RequestRejected, TemporalUnavailable, UsageError } from './errors.js';
export { planDeploy } from '../workflows/strategies/index.js';
export { planRollback } from '../workflows/strategies/rollback.js';
export type * from '../workflows/types.js';
