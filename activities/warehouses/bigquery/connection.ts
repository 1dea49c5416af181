/**
 * A BigQuery target read the way dbt-bigquery reads it, and the Node client built from it. The
 * credentials stay in this object on the worker: nothing here is returned from an activity, so none
 * of it reaches Temporal history, logs or reports.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
// Types only: the SDKs load when a client is built, so reading a profile (`dbt-deploy plan`, every
// CLI command, DuckDB and PostgreSQL workers) does not pay their second of imports.
import type { BigQuery, BigQueryOptions } from '@google-cloud/bigquery';
import type { AuthClient, OAuth2Client } from 'google-auth-library';

/** dbt-bigquery's `method`s, with the keys each one reads. */
export type BigQueryCredentials =
  | { method: 'oauth' }
  | { method: 'service-account'; keyfile: string }
  | { method: 'service-account-json'; keyfileJson: Record<string, unknown> }
  | { method: 'oauth-secrets'; token: string }
  | {
      method: 'oauth-secrets';
      refreshToken: string;
      clientId: string;
      clientSecret: string;
      tokenUri?: string;
    };

export interface BigQueryConnection {
  engine: 'bigquery';
  /** Where the target's datasets live (dbt's `project`, alias `database`). */
  project: string;
  /** Which project runs and pays for the jobs (dbt's `execution_project`, default `project`). */
  executionProject: string;
  /** dbt's `dataset` (alias `schema`). */
  schema: string;
  /** Where jobs run and datasets are created; unset lets BigQuery pick the dataset's location. */
  location?: string;
  /** An endpoint other than Google's, such as an emulator on loopback (dbt's `api_endpoint`). */
  apiEndpoint?: string;
  impersonateServiceAccount?: string;
  /** dbt's `job_execution_timeout_seconds`: a job still running after it is cancelled. */
  jobTimeoutSeconds?: number;
  credentials: BigQueryCredentials;
}

const METHODS = ['oauth', 'service-account', 'service-account-json', 'oauth-secrets'] as const;

const SCOPES = [
  'https://www.googleapis.com/auth/bigquery',
  'https://www.googleapis.com/auth/cloud-platform',
  'https://www.googleapis.com/auth/drive',
];

/** Thrown with one line naming the profile key that is missing or wrong. */
export class BigQueryProfileError extends Error {
  override readonly name = 'ProfileError';
}

/** The connection of a `type: bigquery` output (env_var() already rendered). */
export function bigQueryConnection(
  output: Record<string, unknown>,
  target: string,
  projectDir: string,
): BigQueryConnection {
  const text = (key: string): string | undefined => {
    const value = output[key];
    if (typeof value === 'string' && value.trim() !== '') return value;
    if (typeof value === 'number') return String(value);
    return undefined;
  };
  const fail = (message: string): never => {
    throw new BigQueryProfileError(`target "${target}": ${message}`);
  };
  const project = text('project') ?? text('database') ?? fail('a bigquery target needs `project`');
  const schema = text('dataset') ?? text('schema') ?? fail('a bigquery target needs `dataset` (or `schema`)');
  const method = text('method') ?? fail(`a bigquery target needs \`method\` (${METHODS.join(', ')})`);
  let credentials: BigQueryCredentials;
  switch (method) {
    case 'oauth':
      credentials = { method };
      break;
    case 'service-account': {
      const raw = text('keyfile') ?? fail('method service-account needs `keyfile`');
      // dbt runs in the project directory, so a relative keyfile is relative to it.
      const keyfile = isAbsolute(raw) ? raw : resolve(projectDir, raw);
      if (!existsSync(keyfile)) fail(`\`keyfile\` ${keyfile} does not exist`);
      credentials = { method, keyfile };
      break;
    }
    case 'service-account-json': {
      const json = output['keyfile_json'];
      if (typeof json !== 'object' || json === null || Array.isArray(json))
        return fail('method service-account-json needs `keyfile_json` (a mapping)');
      credentials = { method, keyfileJson: json as Record<string, unknown> };
      break;
    }
    case 'oauth-secrets': {
      const token = text('token');
      if (token !== undefined) {
        credentials = { method, token };
        break;
      }
      const refreshToken =
        text('refresh_token') ?? fail('method oauth-secrets needs `token` or `refresh_token`');
      const clientId =
        text('client_id') ?? fail('method oauth-secrets with `refresh_token` needs `client_id`');
      const clientSecret =
        text('client_secret') ?? fail('method oauth-secrets with `refresh_token` needs `client_secret`');
      const tokenUri = text('token_uri');
      credentials = { method, refreshToken, clientId, clientSecret, ...(tokenUri ? { tokenUri } : {}) };
      break;
    }
    default:
      return fail(`\`method\` "${method}" is not one of ${METHODS.join(', ')}`);
  }
  const timeout = text('job_execution_timeout_seconds') ?? text('timeout_seconds');
  const jobTimeoutSeconds = timeout === undefined ? undefined : Number(timeout);
  if (jobTimeoutSeconds !== undefined && !(jobTimeoutSeconds > 0))
    fail(`\`job_execution_timeout_seconds\` ${timeout} is not a positive number`);
  const location = text('location');
  const apiEndpoint = text('api_endpoint');
  const impersonate = text('impersonate_service_account');
  return {
    engine: 'bigquery',
    project,
    executionProject: text('execution_project') ?? project,
    schema,
    ...(location ? { location } : {}),
    ...(apiEndpoint ? { apiEndpoint } : {}),
    ...(impersonate ? { impersonateServiceAccount: impersonate } : {}),
    ...(jobTimeoutSeconds ? { jobTimeoutSeconds } : {}),
    credentials,
  };
}

/**
 * An endpoint on loopback or over plain HTTP is an emulator: it gets no credentials at all, whatever
 * the profile holds, and the statement plans allow for what it does differently.
 */
export function isEmulator(connection: Pick<BigQueryConnection, 'apiEndpoint'>): boolean {
  if (!connection.apiEndpoint) return false;
  try {
    const url = new URL(connection.apiEndpoint);
    return url.protocol === 'http:' || ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  } catch {
    return false;
  }
}

/**
 * What dbt needs in its environment for this target. Google's libraries probe the metadata server
 * when they look for default credentials; only `method: oauth` (application default credentials)
 * can need it, so every other method turns the probe off and no run waits on its timeout.
 */
export function dbtEnvironment(connection: BigQueryConnection): Record<string, string> {
  return connection.credentials.method === 'oauth' ? {} : { METADATA_SERVER_DETECTION: 'none' };
}

/** The Node client for the target, authenticated as dbt would be (never for an emulator). */
export async function bigQueryClient(connection: BigQueryConnection): Promise<BigQuery> {
  const options: BigQueryOptions = {
    projectId: connection.executionProject,
    ...(connection.location ? { location: connection.location } : {}),
    ...(connection.apiEndpoint ? { apiEndpoint: connection.apiEndpoint } : {}),
  };
  const [{ BigQuery }, { Impersonated, PassThroughClient }] = await Promise.all([
    import('@google-cloud/bigquery'),
    import('google-auth-library'),
  ]);
  if (isEmulator(connection)) return new BigQuery({ ...options, authClient: new PassThroughClient() });
  let client = await sourceClient(connection.credentials);
  if (connection.impersonateServiceAccount) {
    client = new Impersonated({
      sourceClient: client as OAuth2Client,
      targetPrincipal: connection.impersonateServiceAccount,
      targetScopes: SCOPES,
      lifetime: 3600,
    });
  }
  return new BigQuery({ ...options, authClient: client });
}

async function sourceClient(credentials: BigQueryCredentials): Promise<AuthClient> {
  const { GoogleAuth, OAuth2Client, UserRefreshClient } = await import('google-auth-library');
  switch (credentials.method) {
    case 'oauth':
      return new GoogleAuth({ scopes: SCOPES }).getClient();
    case 'service-account':
      return new GoogleAuth({ keyFilename: credentials.keyfile, scopes: SCOPES }).getClient();
    case 'service-account-json':
      return new GoogleAuth({ credentials: credentials.keyfileJson, scopes: SCOPES }).getClient();
    case 'oauth-secrets': {
      if ('token' in credentials) {
        const client = new OAuth2Client();
        client.setCredentials({ access_token: credentials.token });
        return client;
      }
      return new UserRefreshClient({
        clientId: credentials.clientId,
        clientSecret: credentials.clientSecret,
        refreshToken: credentials.refreshToken,
      });
    }
  }
}
