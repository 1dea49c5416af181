/**
 * Everything checked before a deploy starts: the dbt project, deploy.yml, the profile and its targets,
 * the strategy against the warehouse's capabilities, and dbt itself. A deploy that would fail on bad
 * input fails here, with nothing touched and no workflow started.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { dbtBin } from '../activities/dbt.js';
import { connectionFor, ProfileError, type WarehouseConnection } from '../activities/profiles.js';
import { CAPABILITIES, type Engine } from '../activities/warehouses/capabilities.js';
import { supportedStrategies, unsupportedBecause } from '../workflows/strategies/index.js';
import { STRATEGIES, type DeployInput, type StrategyName } from '../workflows/types.js';
import { type DeployConfig, loadDeployConfig } from './config.js';
import { UsageError } from './errors.js';

export interface DeployOptions {
  projectDir?: string;
  profilesDir?: string;
  config?: string;
  env?: string;
  strategy?: string;
  vars?: string;
  gitSha?: string;
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
  requireSeparateStaging(prod, staging, environment.target, environment.staging_target, where);
  if (strategy === 'wap' && environment.audit_target) {
    const audit = targetConnection(
      projectDir,
      profilesDir,
      project.profile,
      environment.audit_target,
      `${where}.audit_target`,
    );
    requireSeparateStaging(prod, audit, environment.target, environment.audit_target, where);
  }
  if (strategy === 'mirror' && !config.mirror) {
    throw new UsageError(
      `${configPath}: strategy "mirror" refreshes a raw layer, but there is no "mirror" key (add \`mirror: {select: [tag:raw]}\`, see docs/strategies.md)`,
    );
  }
  const engine = prod.engine;
  if (options.vars !== undefined) parseVars(options.vars);
  requireDbt();
  requireSupported(strategy, engine, configPath);
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
      publishTags: config.publish.tags,
      backupsKeep: config.backups.keep,
      ...(config.select ? { select: config.select } : {}),
      ...(config.mirror ? { mirror: { select: config.mirror.select } } : {}),
      ...(options.vars !== undefined ? { vars: options.vars } : {}),
      ...(options.gitSha ? { gitSha: options.gitSha } : {}),
    },
  };
}

export function parseStrategy(value: string): StrategyName {
  if ((STRATEGIES as readonly string[]).includes(value)) return value as StrategyName;
  throw new UsageError(`unknown strategy "${value}" (strategies: ${STRATEGIES.join(', ')})`);
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
  const parsed: unknown = parse(readFileSync(path, 'utf8'));
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
 * must also be in one warehouse (one DuckDB file, one PostgreSQL database), because publish copies
 * between them in one transaction.
 */
function requireSeparateStaging(
  prod: WarehouseConnection,
  staging: WarehouseConnection,
  prodTarget: string,
  stagingTarget: string,
  where: string,
): void {
  if (prod.engine !== staging.engine) {
    throw new UsageError(
      `${where}: target "${prodTarget}" is ${prod.engine} but staging_target "${stagingTarget}" is ${staging.engine}; both must be on the same warehouse`,
    );
  }
  const [prodWarehouse, stagingWarehouse] = [warehouseOf(prod), warehouseOf(staging)];
  if (prodWarehouse === stagingWarehouse && prod.schema === staging.schema) {
    throw new UsageError(
      `${where}: target "${prodTarget}" and staging_target "${stagingTarget}" both write to schema "${prod.schema}"; give staging its own schema`,
    );
  }
  if (prodWarehouse !== stagingWarehouse) {
    const what = prod.engine === 'duckdb' ? 'file' : 'database';
    throw new UsageError(
      `${where}: target "${prodTarget}" (${prodWarehouse}) and staging_target "${stagingTarget}" (${stagingWarehouse}) must use the same ${what}`,
    );
  }
}

/** Which warehouse a target writes to: a DuckDB file, or one database of one PostgreSQL server. */
function warehouseOf(connection: WarehouseConnection): string {
  switch (connection.engine) {
    case 'duckdb':
      return connection.path;
    case 'postgres':
      return `${connection.host}:${connection.port}/${connection.dbname}`;
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
      `dbt is not installed at ${bin}: run \`npm run setup\` (or set DBT_BIN to your dbt executable)`,
    );
  }
}
