/**
 * Everything checked before a deploy starts: the dbt project, deploy.yml, the profile and its targets,
 * the strategy against the warehouse's capabilities, and dbt itself. A deploy that would fail on bad
 * input fails here, with nothing touched and no workflow started.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time.js';
import { parse, YAMLParseError } from 'yaml';
import { auditRulesOf, diffSettingsOf } from '../activities/audit-rules.js';
import { DBT_LOOKUP, dbtBin } from '../activities/dbt.js';
import { checkWebhookTemplate } from '../activities/notify.js';
import { connectionFor, ProfileError, type WarehouseConnection } from '../activities/profiles.js';
import { CAPABILITIES, type Engine } from '../activities/warehouses/capabilities.js';
import { supportedStrategies, unsupportedBecause } from '../workflows/strategies/index.js';
import {
  STRATEGIES,
  type DeployInput,
  type PublishSelection,
  type StrategyName,
} from '../workflows/types.js';
import { DEFAULT_PUBLISH_TAGS, type DeployConfig, loadDeployConfig, readFailure } from './config.js';
import { UsageError } from './errors.js';

export interface DeployOptions {
  projectDir?: string;
  profilesDir?: string;
  config?: string;
  env?: string;
  strategy?: string;
  vars?: string;
  gitSha?: string;
  /** A rollback runs no strategy: the strategy's own checks (mirror key, audit target) do not apply. */
  forRollback?: boolean;
  /** `--require-approval`: wait at the approval gate even when deploy.yml does not ask for it. */
  requireApproval?: boolean;
}

export interface PreparedDeploy {
  input: Omit<DeployInput, 'deployId'>;
  config: DeployConfig;
  configPath: string;
}

export function prepareDeploy(options: DeployOptions): PreparedDeploy {
  const projectDir = resolve(options.projectDir ?? '.');
  const project = readDbtProject(projectDir);
  const configPath = resolve(options.config ?? join(projectDir, 'deploy.yml'));
  const config = loadDeployConfig(configPath);
  const envName = options.env ?? 'prod';
  const environment = config.environments[envName];
  if (!environment) {
    const known = Object.keys(config.environments).join(', ');
    throw new UsageError(`${configPath}: environment "${envName}" not found (environments: ${known})`);
  }
  const strategy = parseStrategy(options.strategy ?? environment.strategy ?? config.strategy);
  const profilesDir = resolveProfilesDir(projectDir, options.profilesDir);
  const where = `${configPath}: environments.${envName}`;
  // Each target is read once: its connection names the engine and the location the checks compare.
  const prod = targetConnection(
    projectDir,
    profilesDir,
    project.profile,
    environment.target,
    `${where}.target`,
  );
  const staging = targetConnection(
    projectDir,
    profilesDir,
    project.profile,
    environment.staging_target,
    `${where}.staging_target`,
  );
  requireSeparateStaging(
    prod,
    staging,
    environment.target,
    environment.staging_target,
    where,
    'staging_target',
  );
  const checkStrategy = !options.forRollback;
  if (checkStrategy && strategy === 'wap' && environment.audit_target) {
    const audit = targetConnection(
      projectDir,
      profilesDir,
      project.profile,
      environment.audit_target,
      `${where}.audit_target`,
    );
    requireSeparateStaging(prod, audit, environment.target, environment.audit_target, where, 'audit_target');
  }
  if (checkStrategy && strategy === 'mirror' && !config.mirror) {
    throw new UsageError(
      `${configPath}: strategy "mirror" refreshes a raw layer, but there is no "mirror" key (add \`mirror: {select: [tag:raw]}\`, see docs/strategies.md)`,
    );
  }
  const engine = prod.engine;
  if (options.vars !== undefined) parseVars(options.vars);
  requireDbt();
  if (checkStrategy) requireSupported(strategy, engine, configPath);
  const approval = approvalOf(config, options, configPath);
  const heartbeatTimeout = heartbeatTimeoutOf(config, configPath);
  if (config.notify) {
    const problem = checkWebhookTemplate(config.notify.webhook);
    if (problem) throw new UsageError(`${configPath}: notify.webhook: ${problem}`);
  }
  const publish = publishOf(config, projectDir, configPath);
  return {
    config,
    configPath,
    input: {
      project: project.name,
      projectDir,
      profilesDir,
      profile: project.profile,
      env: envName,
      strategy,
      engine,
      targets: {
        prod: environment.target,
        staging: environment.staging_target,
        ...(environment.audit_target ? { audit: environment.audit_target } : {}),
      },
      publishTags: 'tags' in publish ? publish.tags : [],
      publish,
      backupsKeep: config.backups.keep,
      ...(config.select ? { select: config.select } : {}),
      ...(config.mirror ? { mirror: { select: config.mirror.select } } : {}),
      ...(approval ? { approval } : {}),
      ...(config.notify ? { notify: { webhook: config.notify.webhook, on: config.notify.on } } : {}),
      ...(config.audits?.length ? { audits: auditRulesOf(config.audits) } : {}),
      ...(config.diff ? { diff: diffSettingsOf(config.diff) } : {}),
      ...(heartbeatTimeout ? { heartbeatTimeout } : {}),
      ...(options.vars !== undefined ? { vars: options.vars } : {}),
      ...(options.gitSha ? { gitSha: options.gitSha } : {}),
    },
  };
}

/**
 * For commands that act on a running or past deploy (approve, abort, status, history, schedules):
 * the project and an environment that deploy.yml knows, without dbt or the warehouse's profile.
 */
export function identifyEnvironment(options: DeployOptions): {
  project: string;
  env: string;
  config: DeployConfig;
} {
  const projectDir = resolve(options.projectDir ?? '.');
  const project = readDbtProject(projectDir);
  const configPath = resolve(options.config ?? join(projectDir, 'deploy.yml'));
  const config = loadDeployConfig(configPath);
  const env = options.env ?? 'prod';
  if (!config.environments[env]) {
    const known = Object.keys(config.environments).join(', ');
    throw new UsageError(`${configPath}: environment "${env}" not found (environments: ${known})`);
  }
  return { project: project.name, env, config };
}

export function parseStrategy(value: string): StrategyName {
  if ((STRATEGIES as readonly string[]).includes(value)) return value as StrategyName;
  throw new UsageError(`unknown strategy "${value}" (strategies: ${STRATEGIES.join(', ')})`);
}

/** The gate's settings when a person must approve; the timeout is checked here, not at the gate. */
function approvalOf(
  config: DeployConfig,
  options: DeployOptions,
  configPath: string,
): DeployInput['approval'] | undefined {
  if (!config.approval.required && !options.requireApproval) return undefined;
  // The gate guards what a deploy publishes: a rollback or a raw-layer refresh does not wait at it.
  if (options.forRollback || options.strategy === 'mirror') return undefined;
  durationMs(config.approval.timeout, 'approval.timeout', configPath, {
    unit: 'm or 24h',
    examples: '30m, 24h, "2 days"',
  });
  return { required: true, timeout: config.approval.timeout, onTimeout: config.approval.on_timeout };
}

/** The least `heartbeat_timeout`: steps beat every 2 s, so a shorter one would fail steps that are fine. */
const MIN_HEARTBEAT_TIMEOUT_MS = 5_000;

function heartbeatTimeoutOf(config: DeployConfig, configPath: string): string | undefined {
  const value = config.heartbeat_timeout;
  if (value === undefined) return undefined;
  const ms = durationMs(value, 'heartbeat_timeout', configPath, { unit: 's', examples: '20s, 1m' });
  if (ms < MIN_HEARTBEAT_TIMEOUT_MS) {
    throw new UsageError(
      `${configPath}: heartbeat_timeout: "${value}" is below 5s; steps heartbeat every 2 s, so a shorter timeout would fail healthy steps`,
    );
  }
  return value;
}

/** A deploy.yml duration (`30m`, `24h`, `2 days`) in milliseconds; refused with one line naming the key. */
function durationMs(
  value: string,
  key: string,
  configPath: string,
  hint: { unit: string; examples: string },
): number {
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) {
    throw new UsageError(
      `${configPath}: ${key}: "${value}" needs a unit (e.g. ${value.trim()}${hint.unit}); a bare number would mean milliseconds`,
    );
  }
  let ms: number;
  try {
    ms = msToNumber(value as Duration);
  } catch {
    ms = Number.NaN;
  }
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new UsageError(`${configPath}: ${key}: "${value}" is not a duration (e.g. ${hint.examples})`);
  }
  return ms;
}

/**
 * deploy.yml `publish` as the deploy carries it. A name instead of a list is a YAML selector, which
 * must be one of the project's selectors.yml: checked here, before anything starts. Whether a
 * selection matches any model is dbt's to say: the deploy's first step asks it, before building.
 */
function publishOf(config: DeployConfig, projectDir: string, configPath: string): PublishSelection {
  const { tags, select } = config.publish;
  if (select === undefined) return { tags: tags ?? DEFAULT_PUBLISH_TAGS };
  if (Array.isArray(select)) return { select };
  const where = join(projectDir, 'selectors.yml');
  const known = yamlSelectors(where);
  if (!known?.includes(select)) {
    const problem = known
      ? `is not a selector of ${where} (${known.length > 0 ? `selectors: ${known.join(', ')}` : 'it defines none'})`
      : `names a YAML selector, but ${projectDir} has no selectors.yml`;
    const asList = /[\s:+*,@]/.test(select)
      ? `; a list of dbt selectors needs brackets: select: [${select.split(/\s+/).join(', ')}]`
      : '';
    throw new UsageError(`${configPath}: publish.select: "${select}" ${problem}${asList}`);
  }
  return { selector: select };
}

/** The names of the YAML selectors in a project's selectors.yml; undefined when it has none. */
function yamlSelectors(path: string): string[] | undefined {
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = parse(readFileSync(path, 'utf8'));
  } catch (error) {
    const detail = error instanceof YAMLParseError ? error.message.split('\n')[0] : String(error);
    throw new UsageError(`${path}: not valid YAML: ${detail}`);
  }
  const selectors = (parsed as { selectors?: unknown } | null)?.selectors;
  if (!Array.isArray(selectors)) return [];
  return selectors.flatMap((s) =>
    typeof s === 'object' && s !== null && typeof (s as { name?: unknown }).name === 'string'
      ? [(s as { name: string }).name]
      : [],
  );
}

/** The engine's capabilities decide; the error names the strategies that would work. */
function requireSupported(strategy: StrategyName, engine: Engine, configPath: string): void {
  if (strategy === 'auto') return;
  const refused = unsupportedBecause(strategy, CAPABILITIES[engine]);
  if (refused) {
    throw new UsageError(
      `${configPath}: strategy "${strategy}" cannot run on ${engine}: ${refused} (strategies that work: ${supportedStrategies(CAPABILITIES[engine]).join(', ')})`,
    );
  }
}

function readDbtProject(projectDir: string): { name: string; profile: string } {
  const path = join(projectDir, 'dbt_project.yml');
  if (!existsSync(path)) {
    throw new UsageError(`${projectDir}: no dbt_project.yml here (pass --project-dir, as with dbt)`);
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${path}: cannot read it (${readFailure(error)})`);
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    const detail = error instanceof YAMLParseError ? error.message.split('\n')[0] : String(error);
    throw new UsageError(`${path}: not valid YAML: ${detail}`);
  }
  const record = (parsed ?? {}) as Record<string, unknown>;
  const name = record['name'];
  if (typeof name !== 'string') throw new UsageError(`${path}: has no "name"`);
  const profile = typeof record['profile'] === 'string' ? record['profile'] : name;
  return { name, profile };
}

/** dbt's own order: the flag, DBT_PROFILES_DIR, the project directory, then ~/.dbt. */
export function resolveProfilesDir(projectDir: string, flag?: string): string {
  if (flag) return resolve(flag);
  const fromEnv = process.env['DBT_PROFILES_DIR'];
  if (fromEnv) return resolve(fromEnv);
  if (existsSync(join(projectDir, 'profiles.yml'))) return projectDir;
  return join(homedir(), '.dbt');
}

function targetConnection(
  projectDir: string,
  profilesDir: string,
  profile: string,
  target: string,
  key: string,
): WarehouseConnection {
  try {
    return connectionFor(projectDir, profilesDir, profile, target);
  } catch (error) {
    if (error instanceof ProfileError) throw new UsageError(`${key}: ${error.message}`);
    throw error;
  }
}

/**
 * Staging must be a different location than prod, or the build would write straight into prod; both
 * must also be in one warehouse (one DuckDB file, one PostgreSQL database; on an engine whose
 * `stagingScope` is `account`, any database of the same account), because publish copies or swaps
 * between them.
 */
function requireSeparateStaging(
  prod: WarehouseConnection,
  staging: WarehouseConnection,
  prodTarget: string,
  stagingTarget: string,
  where: string,
  role: 'staging_target' | 'audit_target',
): void {
  if (prod.engine !== staging.engine) {
    throw new UsageError(
      `${where}: target "${prodTarget}" is ${prod.engine} but ${role} "${stagingTarget}" is ${staging.engine}; both must be on the same warehouse`,
    );
  }
  const [prodPlace, stagingPlace] = [placeOf(prod), placeOf(staging)];
  if (prodPlace.warehouse === stagingPlace.warehouse && prodPlace.location === stagingPlace.location) {
    throw new UsageError(
      `${where}: target "${prodTarget}" and ${role} "${stagingTarget}" both write to schema "${prod.schema}"; give ${role === 'staging_target' ? 'staging' : 'the audit'} its own schema`,
    );
  }
  if (prodPlace.warehouse !== stagingPlace.warehouse) {
    throw new UsageError(
      `${where}: target "${prodTarget}" (${prodPlace.warehouse}) and ${role} "${stagingTarget}" (${stagingPlace.warehouse}) must use the same ${prodPlace.what}`,
    );
  }
}

/**
 * Which warehouse a target writes to (a DuckDB file, one database of one PostgreSQL server), named as
 * the engine's `stagingScope` draws the line, and the location inside it.
 */
function placeOf(connection: WarehouseConnection): { warehouse: string; what: string; location: string } {
  switch (connection.engine) {
    case 'duckdb':
      return { warehouse: connection.path, what: 'file', location: connection.schema };
    case 'postgres':
      return {
        warehouse: `${connection.host}:${connection.port}/${connection.dbname}`,
        what: 'database',
        location: connection.schema,
      };
    case 'bigquery':
      return {
        warehouse: `${connection.apiEndpoint ?? 'bigquery'}/${connection.project}`,
        what: 'project',
        location: connection.schema,
      };
    case 'snowflake':
      // One session reaches every database of the account: staging may be another database.
      return {
        warehouse: `account ${connection.account.toLowerCase()}`,
        what: 'account',
        location: `${connection.database}.${connection.schema}`.toUpperCase(),
      };
  }
}

function parseVars(vars: string): void {
  let parsed: unknown;
  try {
    parsed = parse(vars);
  } catch {
    throw new UsageError(`--vars: not valid YAML or JSON: ${vars}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`--vars: expected a mapping such as '{break_audit: true}', got: ${vars}`);
  }
}

function requireDbt(): void {
  const bin = dbtBin();
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new UsageError(
      `dbt is not installed at ${bin}: ${DBT_LOOKUP} (in a checkout, \`npm run setup\` makes .venv)`,
    );
  }
}
