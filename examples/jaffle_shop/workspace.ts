/**
 * A working copy of this example with its raw sources loaded: what the demo and the tests deploy.
 * Build output and database files of the original are left behind, so every copy starts clean.
 */
import { cp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { type BigQueryRawTarget, loadRawData, type RawTarget } from './raw-data.js';

export const EXAMPLE_DIR = fileURLToPath(new URL('.', import.meta.url));

/** A PostgreSQL database to deploy the example to instead of the DuckDB file. */
export interface PostgresSettings {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/**
 * A BigQuery project to deploy the example to: an emulator's (`apiEndpoint`, no credentials) or a real
 * one, reached with the service account key named by GOOGLE_APPLICATION_CREDENTIALS.
 */
export interface BigQuerySettings extends BigQueryRawTarget {
  /** Appended to every dataset name, so runs against one real project never meet. */
  datasetSuffix?: string;
}

export interface ExampleWorkspace {
  dir: string;
  engine: 'duckdb' | 'postgres' | 'bigquery';
  /** The DuckDB file the example's profiles.yml points at (unused on PostgreSQL). */
  database: string;
  /** Where the raw sources are: pass to `loadRawData` / `appendRawOrders` for more source data. */
  raw: RawTarget;
}

/** The example's three targets; only the schema differs, so staging and prod share one warehouse. */
const SCHEMAS = { prod: 'analytics', staging: 'analytics_staging', audit: 'analytics_audit' };

/** Replaces `dir` with a fresh copy of the example and loads its raw sources. */
export async function createExampleWorkspace(
  dir: string,
  options: { postgres?: PostgresSettings; bigquery?: BigQuerySettings } = {},
): Promise<ExampleWorkspace> {
  await rm(dir, { recursive: true, force: true });
  await cp(EXAMPLE_DIR, dir, {
    recursive: true,
    filter: (source) => !/(\/target|\/logs|\.duckdb(\.wal)?)$/.test(source),
  });
  const database = join(dir, 'jaffle_shop.duckdb');
  const { postgres, bigquery } = options;
  if (bigquery) return bigQueryWorkspace(dir, database, bigquery);
  if (!postgres) {
    await loadRawData(database);
    return { dir, engine: 'duckdb', database, raw: database };
  }
  const outputs = Object.fromEntries(
    Object.entries(SCHEMAS).map(([target, schema]) => [
      target,
      {
        type: 'postgres',
        host: postgres.host,
        port: postgres.port,
        user: postgres.user,
        password: postgres.password,
        dbname: postgres.database,
        schema,
        threads: 4,
      },
    ]),
  );
  await writeFile(
    join(dir, 'profiles.yml'),
    `# Written by createExampleWorkspace for a PostgreSQL test database.\n${stringify({ jaffle_shop: { target: 'staging', outputs } })}`,
  );
  const raw: RawTarget = {
    postgres: {
      host: postgres.host,
      port: postgres.port,
      user: postgres.user,
      password: postgres.password,
      database: postgres.database,
    },
  };
  await loadRawData(raw);
  return { dir, engine: 'postgres', database, raw };
}

async function bigQueryWorkspace(
  dir: string,
  database: string,
  settings: BigQuerySettings,
): Promise<ExampleWorkspace> {
  const suffix = settings.datasetSuffix ?? '';
  // dbt-bigquery's own keys: the emulator takes any token and must not see real credentials.
  const auth = settings.apiEndpoint
    ? { method: 'oauth-secrets', token: 'no-credentials-for-an-emulator', api_endpoint: settings.apiEndpoint }
    : { method: 'service-account', keyfile: "{{ env_var('GOOGLE_APPLICATION_CREDENTIALS') }}" };
  const outputs = Object.fromEntries(
    Object.entries(SCHEMAS).map(([target, schema]) => [
      target,
      {
        type: 'bigquery',
        ...auth,
        project: settings.projectId,
        dataset: `${schema}${suffix}`,
        location: settings.location,
        threads: 4,
        job_execution_timeout_seconds: 300,
      },
    ]),
  );
  await writeFile(
    join(dir, 'profiles.yml'),
    `# Written by createExampleWorkspace for a BigQuery project.\n${stringify({ jaffle_shop: { target: 'staging', outputs } })}`,
  );
  // The sources' dataset follows the suffix too: models/staging/_sources.yml reads JAFFLE_RAW_SCHEMA.
  const raw: RawTarget = { bigquery: { ...settings, ...(suffix ? { rawDataset: `raw${suffix}` } : {}) } };
  await loadRawData(raw);
  return { dir, engine: 'bigquery', database, raw };
}
