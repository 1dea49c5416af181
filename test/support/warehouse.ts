/**
 * An independent look at the warehouse (relations, row counts, checksums, schemas) with plain clients,
 * not the adapter under test. Free of vitest, so the chaos script checks with the same code.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import type { RawTarget } from '../../examples/jaffle_shop/raw-data.js';
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

/** Every relation of `schema` with its content. */
export async function snapshotSchema(
  target: LookTarget,
  schema: string,
): Promise<Record<string, RelationSnapshot>> {
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
  const rows = await look(target, (read) =>
    read(
      "SELECT DISTINCT schema_name FROM information_schema.schemata WHERE schema_name NOT LIKE 'pg_%' AND schema_name <> 'information_schema' ORDER BY 1",
    ),
  );
  return rows.map((r) => String(r['schema_name']));
}
