/**
 * An independent look at the warehouse (relations, row counts, checksums, schemas) with plain clients,
 * not the adapter under test. Free of vitest, so the chaos script checks with the same code.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import pg from 'pg';
import type { BigQueryRawTarget, RawTarget } from '../../examples/jaffle_shop/raw-data.js';
import type { ExampleWorkspace } from '../../examples/jaffle_shop/workspace.js';

export interface RelationSnapshot {
  kind: 'table' | 'view';
  rows: number;
  /** md5 over every row's text in sorted order: any changed, added or lost row changes it. */
  md5: string;
}

type Read = (sql: string) => Promise<Record<string, unknown>[]>;

/** Where a test looks: a DuckDB file, a project (DuckDB or PostgreSQL), or a raw-data target. */
export type LookTarget = string | ExampleWorkspace | RawTarget;

/**
 * Opens the warehouse for one look with a plain client (not the adapter under test) and closes it,
 * so the worker's next step can have a DuckDB file.
 */
export async function look<T>(target: LookTarget, work: (read: Read) => Promise<T>): Promise<T> {
  const where = typeof target === 'object' && 'raw' in target ? target.raw : target;
  if (typeof where === 'object' && 'bigquery' in where) return work(bigQueryReader(where.bigquery));
  if (typeof where === 'object' && 'execute' in where) return work(where.execute);
  if (typeof where === 'object') {
    const client = new pg.Client(where.postgres);
    await client.connect();
    try {
      return await work(async (sql) => (await client.query<Record<string, unknown>>(sql)).rows);
    } finally {
      await client.end();
    }
  }
  const instance = await DuckDBInstance.create(where);
  const connection = await instance.connect();
  try {
    return await work(async (sql) => (await connection.runAndReadAll(sql)).getRowObjectsJson());
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** A plain BigQuery client on the emulator (or a live project), reading through jobs so errors surface. */
function bigQueryReader(target: BigQueryRawTarget): Read {
  const client = bigQueryOf(target);
  return async (sql) => {
    const [job] = await client.createQueryJob({ query: sql, location: target.location });
    const [rows] = await job.getQueryResults();
    return rows as Record<string, unknown>[];
  };
}

function bigQueryOf(target: BigQueryRawTarget): BigQuery {
  return new BigQuery({
    projectId: target.projectId,
    location: target.location,
    ...(target.apiEndpoint ? { apiEndpoint: target.apiEndpoint, authClient: new PassThroughClient() } : {}),
  });
}

function bigQueryTarget(target: LookTarget): BigQueryRawTarget | undefined {
  const where = typeof target === 'object' && 'raw' in target ? target.raw : target;
  return typeof where === 'object' && 'bigquery' in where ? where.bigquery : undefined;
}

/** BigQuery's relations have no common SQL catalogue across datasets: they are listed by the API. */
async function snapshotDataset(
  target: BigQueryRawTarget,
  dataset: string,
): Promise<Record<string, RelationSnapshot>> {
  let tables;
  try {
    [tables] = await bigQueryOf(target).dataset(dataset).getTables();
  } catch (error) {
    if ((error as { code?: number }).code === 404) return {};
    throw error;
  }
  const read = bigQueryReader(target);
  const snapshot: Record<string, RelationSnapshot> = {};
  for (const table of [...tables].sort((a, b) => String(a.id).localeCompare(String(b.id)))) {
    const name = String(table.id);
    const [content] = await read(
      `SELECT COUNT(*) AS n, TO_HEX(MD5(COALESCE(STRING_AGG(TO_JSON_STRING(r), '|' ORDER BY TO_JSON_STRING(r)), ''))) AS md5 FROM \`${target.projectId}.${dataset}.${name}\` AS r`,
    );
    snapshot[name] = {
      kind: table.metadata?.type === 'VIEW' ? 'view' : 'table',
      rows: Number(content?.['n']),
      md5: String(content?.['md5']),
    };
  }
  return snapshot;
}

/** Every relation of `schema` with its content. */
export async function snapshotSchema(
  target: LookTarget,
  schema: string,
): Promise<Record<string, RelationSnapshot>> {
  const bigquery = bigQueryTarget(target);
  if (bigquery) return snapshotDataset(bigquery, schema);
  return look(target, async (read) => {
    const relations = await read(
      `SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = '${schema}' ORDER BY table_name`,
    );
    const snapshot: Record<string, RelationSnapshot> = {};
    for (const relation of relations) {
      const name = String(relation['table_name']);
      const [content] = await read(
        `SELECT count(*) AS n, md5(coalesce(string_agg(r::VARCHAR, '|' ORDER BY r::VARCHAR), '')) AS md5 FROM "${schema}"."${name}" AS r`,
      );
      snapshot[name] = {
        kind: relation['table_type'] === 'VIEW' ? 'view' : 'table',
        rows: Number(content?.['n']),
        md5: String(content?.['md5']),
      };
    }
    return snapshot;
  });
}

export async function listSchemas(target: LookTarget): Promise<string[]> {
  const bigquery = bigQueryTarget(target);
  if (bigquery) {
    const [datasets] = await bigQueryOf(bigquery).getDatasets();
    return datasets.map((d) => String(d.id)).sort();
  }
  const rows = await look(target, (read) =>
    read(
      "SELECT DISTINCT schema_name FROM information_schema.schemata WHERE schema_name NOT LIKE 'pg_%' AND schema_name <> 'information_schema' ORDER BY 1",
    ),
  );
  return rows.map((r) => String(r['schema_name']));
}
