/**
 * Reads dbt's profiles.yml the way dbt resolves it, so the worker connects to exactly the warehouse the
 * dbt target names. Credentials stay here, on the worker: only profile and target names travel
 * through Temporal history.
 */
import { readFileSync } from 'node:fs';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';
import {
  type BigQueryConnection,
  bigQueryConnection,
  BigQueryProfileError,
} from './warehouses/bigquery/connection.js';
import { ENGINES, type Engine, isEngine } from './warehouses/capabilities.js';

export class ProfileError extends Error {
  override readonly name = 'ProfileError';
}

export interface DuckDbConnection {
  engine: 'duckdb';
  /** Absolute path of the database file. */
  path: string;
  /** The catalog name dbt renders into relation names: the file's stem unless the profile sets one. */
  database: string;
  schema: string;
}

export interface PostgresConnection {
  engine: 'postgres';
  host: string;
  port: number;
  user: string;
  /** Resolved from the profile (usually `env_var('PGPASSWORD')`) on the worker; never sent to Temporal. */
  password?: string;
  /** dbt calls it `dbname`; it is also the `database` part of every relation name dbt renders. */
  dbname: string;
  schema: string;
}

/**
 * A Snowflake target as dbt-snowflake reads it. Credentials (password, private key and its passphrase,
 * OAuth token) are resolved here on the worker and only ever passed to the driver.
 */
export interface SnowflakeConnection {
  engine: 'snowflake';
  account: string;
  user: string;
  auth:
    | { kind: 'password'; password: string }
    | { kind: 'key-pair'; privateKey?: string; privateKeyPath?: string; passphrase?: string }
    | { kind: 'oauth'; token: string };
  role: string;
  warehouse: string;
  database: string;
  schema: string;
  queryTag?: string;
  /** Only for a local stand-in: `host`, `port` and `protocol` of the profile, as dbt-snowflake takes them. */
  accessUrl?: string;
}

export type { BigQueryConnection };

export type WarehouseConnection =
  DuckDbConnection | PostgresConnection | SnowflakeConnection | BigQueryConnection;

export interface TargetOutput {
  type: string;
  schema?: string;
  [key: string]: unknown;
}

export function readProfiles(profilesDir: string): Record<string, unknown> {
  const path = join(profilesDir, 'profiles.yml');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ProfileError(`${path}: not found (set --profiles-dir or DBT_PROFILES_DIR)`);
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new ProfileError(`${path}: not valid YAML: ${detail}`);
  }
  if (!isRecord(parsed)) throw new ProfileError(`${path}: expected a mapping of profiles`);
  return parsed;
}

/** The output block of one target, with `env_var()` rendered as dbt would. */
export function readTarget(profilesDir: string, profile: string, target: string): TargetOutput {
  const profiles = readProfiles(profilesDir);
  const entry = profiles[profile];
  const where = join(profilesDir, 'profiles.yml');
  if (!isRecord(entry)) throw new ProfileError(`${where}: profile "${profile}" not found`);
  const outputs = entry['outputs'];
  if (!isRecord(outputs)) throw new ProfileError(`${where}: profile "${profile}" has no outputs`);
  const output = outputs[target];
  if (!isRecord(output)) {
    const known = Object.keys(outputs).join(', ');
    throw new ProfileError(
      `${where}: target "${target}" not found in profile "${profile}" (targets: ${known})`,
    );
  }
  const rendered = renderValues(output, where) as Record<string, unknown>;
  if (typeof rendered['type'] !== 'string')
    throw new ProfileError(`${where}: target "${target}" has no type`);
  return rendered as TargetOutput;
}

export function engineOf(output: TargetOutput, where: string): Engine {
  if (!isEngine(output.type)) {
    throw new ProfileError(
      `${where}: adapter type "${output.type}" is not supported yet (supported: ${ENGINES.join(', ')})`,
    );
  }
  return output.type;
}

export function connectionFor(
  projectDir: string,
  profilesDir: string,
  profile: string,
  target: string,
): WarehouseConnection {
  const output = readTarget(profilesDir, profile, target);
  const engine = engineOf(output, join(profilesDir, 'profiles.yml'));
  switch (engine) {
    case 'duckdb': {
      const raw = typeof output['path'] === 'string' ? output['path'] : ':memory:';
      if (raw === ':memory:')
        throw new ProfileError(`target "${target}": an in-memory DuckDB cannot be deployed to`);
      // dbt runs with the project as its working directory, so a relative path is relative to it.
      const path = isAbsolute(raw) ? raw : resolve(projectDir, raw);
      const database =
        typeof output['database'] === 'string' ? output['database'] : basename(path, extname(path));
      const schema = safeName(output.schema ?? 'main', target, 'duckdb');
      return { engine, path, database, schema };
    }
    case 'postgres': {
      const field = (name: string) => profileText(output[name]);
      const user = field('user');
      // dbt-postgres names the database `dbname` and accepts `database`; the password also as `pass`.
      const dbname = field('dbname') ?? field('database');
      const schema = profileText(output.schema);
      if (user === undefined || dbname === undefined || schema === undefined)
        throw new ProfileError(`target "${target}": a postgres target needs user, dbname and schema`);
      const password = field('password') ?? field('pass');
      return {
        engine,
        host: field('host') ?? 'localhost',
        port: portOf(output['port'], target),
        user,
        ...(password === undefined ? {} : { password }),
        dbname,
        schema: safeName(schema, target, 'postgres'),
      };
    }
    case 'bigquery':
      try {
        return bigQueryConnection(output, target, projectDir);
      } catch (error) {
        if (error instanceof BigQueryProfileError) throw new ProfileError(error.message);
        throw error;
      }
    case 'snowflake':
      return snowflakeConnection(output, target);
  }
}

/**
 * dbt-snowflake's keys: `account`, `user`, `password` or `private_key_path` / `private_key` (with
 * `private_key_passphrase`) or `authenticator: oauth` with `token`, `role`, `warehouse`, `database`,
 * `schema`, `query_tag`, and `host` / `port` / `protocol` for a non-default endpoint. A worker has no
 * browser, so `externalbrowser` is refused; every error names the key.
 */
function snowflakeConnection(output: TargetOutput, target: string): SnowflakeConnection {
  const field = (name: string) => profileText(output[name]);
  const need = (name: string, why: string): string => {
    const value = field(name);
    if (value === undefined || value === '')
      throw new ProfileError(`target "${target}": a snowflake target needs \`${name}\` (${why})`);
    return value;
  };
  const authenticator = (field('authenticator') ?? 'snowflake').toLowerCase();
  if (authenticator === 'externalbrowser')
    throw new ProfileError(
      `target "${target}": authenticator: externalbrowser opens a browser, which a worker does not have: use a key pair (private_key_path) or oauth with a token`,
    );
  const account = need('account', 'the account identifier, e.g. myorg-myaccount');
  const user = need('user', 'the user the worker connects as');
  let auth: SnowflakeConnection['auth'];
  if (authenticator === 'oauth') {
    auth = { kind: 'oauth', token: need('token', 'authenticator: oauth needs a token') };
  } else if (authenticator === 'snowflake' || authenticator === 'snowflake_jwt') {
    const privateKeyPath = field('private_key_path');
    const privateKey = field('private_key');
    const passphrase = field('private_key_passphrase');
    const password = field('password');
    if (privateKeyPath !== undefined || privateKey !== undefined) {
      auth = {
        kind: 'key-pair',
        ...(privateKeyPath !== undefined ? { privateKeyPath } : {}),
        ...(privateKey !== undefined ? { privateKey } : {}),
        ...(passphrase !== undefined ? { passphrase } : {}),
      };
    } else if (password !== undefined) {
      auth = { kind: 'password', password };
    } else {
      throw new ProfileError(
        `target "${target}": a snowflake target needs \`password\` or \`private_key_path\` (or \`private_key\`)`,
      );
    }
  } else {
    throw new ProfileError(
      `target "${target}": authenticator: ${authenticator} is not supported by dbt-deploy (use snowflake, snowflake_jwt or oauth)`,
    );
  }
  const host = field('host');
  const protocol = field('protocol') ?? 'https';
  const port = output['port'] === undefined ? undefined : portOf(output['port'], target);
  const queryTag = field('query_tag');
  return {
    engine: 'snowflake',
    account,
    user,
    auth,
    role: need('role', 'the role that owns prod and staging; SWAP and CLONE need it'),
    warehouse: need('warehouse', 'the virtual warehouse that runs the statements'),
    database: need('database', 'the database dbt builds in'),
    schema: need('schema', 'the schema dbt builds in'),
    ...(queryTag !== undefined ? { queryTag } : {}),
    ...(host !== undefined
      ? { accessUrl: `${protocol}://${host}${port === undefined ? '' : `:${port}`}` }
      : {}),
  };
}

/** A scalar profile value as text; numbers count, since YAML reads `port: 5432` or `user: 123` as one. Blank is unset. */
function profileText(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value;
  if (typeof value === 'number') return String(value);
  return undefined;
}

/** PostgreSQL's NAMEDATALEN - 1: longer names are cut silently, so two schemas could become one. */
const POSTGRES_MAX_NAME_BYTES = 63;

/**
 * Our adapters quote every name, but dbt's own macros paste schema names into string literals
 * (`where table_schema = '...'`): a quote or semicolon there breaks or rewrites dbt's SQL.
 */
function safeName(schema: string, target: string, engine: Engine): string {
  // eslint-disable-next-line no-control-regex
  if (/["';\\\u0000-\u001f\u007f]/.test(schema) || schema.trim() !== schema || schema === '') {
    throw new ProfileError(
      `target "${target}": schema ${JSON.stringify(schema)} has a quote, semicolon, backslash, control character or outer blank, which dbt's SQL does not escape; use letters, digits and _`,
    );
  }
  const bytes = Buffer.byteLength(schema, 'utf8');
  if (engine === 'postgres' && bytes > POSTGRES_MAX_NAME_BYTES) {
    throw new ProfileError(
      `target "${target}": schema "${schema}" is ${bytes} bytes: PostgreSQL keeps only the first ${POSTGRES_MAX_NAME_BYTES}, so two schemas could become one; shorten it`,
    );
  }
  return schema;
}

/** `env_var()` renders to text, so a port may arrive as "5432". */
function portOf(value: unknown, target: string): number {
  if (value === undefined) return 5432;
  const port = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new ProfileError(`target "${target}": port ${String(value)} is not a TCP port`);
  return port;
}

const ENV_VAR =
  /\{\{\s*env_var\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)\s*(?:\|\s*(?:int|as_number|as_text)\s*)?\}\}/g;

/** Renders the one Jinja function profiles use in practice; anything else is refused, not guessed. */
function renderValues(value: unknown, where: string): unknown {
  if (typeof value === 'string') {
    const rendered = value.replace(ENV_VAR, (_match, name: string, fallback: string | undefined) => {
      const found = process.env[name] ?? fallback;
      if (found === undefined)
        throw new ProfileError(`${where}: env var ${name} is not set and has no default`);
      return found;
    });
    if (rendered.includes('{{'))
      throw new ProfileError(`${where}: only env_var() is supported in profiles: ${value}`);
    return rendered;
  }
  if (Array.isArray(value)) return value.map((v) => renderValues(v, where));
  if (isRecord(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderValues(v, where)]));
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
