/**
 * DuckDB, the embedded default. It has no zero-copy clone and no schema rename, but its DDL is
 * transactional: copying every published relation (or restoring every backed-up one) inside one
 * transaction gives readers the same all-or-nothing cut-over a clone or swap gives elsewhere.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type {
  BackupEntry,
  BackupOperation,
  BackupRef,
  Fingerprint,
  Location,
  Relation,
} from '../../workflows/types.js';
import type { DuckDbConnection } from '../profiles.js';
import {
  BACKUP_LOCATION_PREFIX,
  BACKUP_MANIFEST_TABLE,
  type BackupLabel,
  backupLocationName,
  quoteIdentifier,
  quoteLiteral,
  quoteRelation,
  type RelationChange,
  type RelationKind,
  UnsupportedOperation,
  type WarehouseAdapter,
} from './adapter.js';
import { CAPABILITIES } from './capabilities.js';

export type StatementLog = (statement: string) => void;

type Row = Record<string, unknown>;

export class DuckDbAdapter implements WarehouseAdapter {
  readonly engine = 'duckdb' as const;
  readonly capabilities = CAPABILITIES.duckdb;
  private statementCount = 0;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    private readonly database: string,
    private readonly log: StatementLog,
  ) {}

  static async open(target: DuckDbConnection, log: StatementLog = () => {}): Promise<DuckDbAdapter> {
    const instance = await DuckDBInstance.create(target.path);
    const connection = await instance.connect();
    return new DuckDbAdapter(instance, connection, target.database, log);
  }

  /** Every statement goes through here: one place that numbers and logs what is sent. */
  private async execute(sql: string): Promise<Row[]> {
    this.statementCount += 1;
    this.log(`[duckdb #${this.statementCount}] ${sql}`);
    const reader = await this.connection.runAndReadAll(sql);
    return reader.getRowObjectsJson() as Row[];
  }

  private async transaction(statements: string[]): Promise<void> {
    await this.execute('BEGIN TRANSACTION');
    try {
      for (const statement of statements) await this.execute(statement);
      await this.execute('COMMIT');
    } catch (error) {
      await this.execute('ROLLBACK');
      throw error;
    }
  }

  async relationKind(relation: Relation): Promise<RelationKind> {
    const rows = await this.execute(
      `SELECT table_type FROM information_schema.tables WHERE table_catalog = ${quoteLiteral(relation.database)} ` +
        `AND table_schema = ${quoteLiteral(relation.schema)} AND table_name = ${quoteLiteral(relation.identifier)}`,
    );
    const type = rows[0]?.['table_type'];
    if (type === undefined) return 'absent';
    return type === 'VIEW' ? 'view' : 'table';
  }

  async listRelations(location: Location): Promise<Array<{ relation: Relation; kind: 'table' | 'view' }>> {
    const rows = await this.execute(
      `SELECT table_name, table_type FROM information_schema.tables WHERE table_catalog = ${quoteLiteral(location.database)} ` +
        `AND table_schema = ${quoteLiteral(location.schema)} ORDER BY table_name`,
    );
    return rows.map((row) => ({
      relation: { ...location, identifier: String(row['table_name']) },
      kind: row['table_type'] === 'VIEW' ? 'view' : 'table',
    }));
  }

  async backup(deployId: string, relations: Relation[], label: BackupLabel): Promise<BackupRef> {
    const location = { database: this.database, schema: backupLocationName(deployId) };
    const operation = label.operation ?? 'deploy';
    const entries: BackupEntry[] = [];
    const statements = [
      `DROP SCHEMA IF EXISTS ${quoteLocation(location)} CASCADE`,
      `CREATE SCHEMA ${quoteLocation(location)}`,
      `CREATE TABLE ${manifestTable(location)} (deploy_id VARCHAR, env VARCHAR, operation VARCHAR, created_at VARCHAR, ` +
        `prod_database VARCHAR, prod_schema VARCHAR, prod_identifier VARCHAR, kind VARCHAR, copy_schema VARCHAR, ` +
        `copy_identifier VARCHAR, view_sql VARCHAR)`,
    ];
    for (const [index, prod] of relations.entries()) {
      const kind = await this.relationKind(prod);
      let copy: Relation | undefined;
      let viewSql: string | null = null;
      if (kind === 'table') {
        copy = { ...location, identifier: `t${index}__${prod.identifier}` };
        statements.push(`CREATE TABLE ${quoteRelation(copy)} AS SELECT * FROM ${quoteRelation(prod)}`);
      } else if (kind === 'view') {
        viewSql = await this.viewDefinition(prod);
      }
      entries.push({ prod, kind, ...(copy ? { copy } : {}) });
      const values = [
        deployId,
        label.env,
        operation,
        label.createdAt,
        prod.database,
        prod.schema,
        prod.identifier,
        kind,
      ]
        .map(quoteLiteral)
        .concat([
          copy ? quoteLiteral(copy.schema) : 'NULL',
          copy ? quoteLiteral(copy.identifier) : 'NULL',
          viewSql === null ? 'NULL' : quoteLiteral(viewSql),
        ]);
      statements.push(`INSERT INTO ${manifestTable(location)} VALUES (${values.join(', ')})`);
    }
    await this.transaction(statements);
    return { deployId, env: label.env, operation, createdAt: label.createdAt, location, entries };
  }

  async restore(backup: BackupRef): Promise<void> {
    const views = await this.storedViewDefinitions(backup);
    const statements: string[] = [];
    for (const entry of backup.entries) statements.push(...(await this.dropStatements(entry.prod)));
    for (const entry of backup.entries) {
      if (entry.kind === 'table' && entry.copy) {
        statements.push(`CREATE SCHEMA IF NOT EXISTS ${quoteLocation(entry.prod)}`);
        statements.push(
          `CREATE TABLE ${quoteRelation(entry.prod)} AS SELECT * FROM ${quoteRelation(entry.copy)}`,
        );
      }
    }
    // Views last: they read the tables restored just above.
    for (const entry of backup.entries) {
      const sql = views.get(key(entry.prod));
      if (entry.kind === 'view' && sql) statements.push(sql);
    }
    await this.transaction(statements);
  }

  async dropBackup(backup: BackupRef): Promise<void> {
    await this.execute(`DROP SCHEMA IF EXISTS ${quoteLocation(backup.location)} CASCADE`);
  }

  async listBackups(): Promise<BackupRef[]> {
    const database = this.database;
    const schemas = await this.execute(
      `SELECT schema_name FROM information_schema.schemata WHERE catalog_name = ${quoteLiteral(database)} ` +
        `AND starts_with(schema_name, ${quoteLiteral(BACKUP_LOCATION_PREFIX)})`,
    );
    const backups: BackupRef[] = [];
    for (const row of schemas) {
      const location = { database, schema: String(row['schema_name']) };
      if ((await this.relationKind({ ...location, identifier: BACKUP_MANIFEST_TABLE })) !== 'table') continue;
      const rows = await this.execute(`SELECT * FROM ${manifestTable(location)}`);
      const first = rows[0];
      if (!first) continue;
      backups.push({
        deployId: String(first['deploy_id']),
        env: String(first['env']),
        operation: parseOperation(first['operation']),
        createdAt: String(first['created_at']),
        location,
        entries: rows.map((r) => {
          const prod = {
            database: String(r['prod_database']),
            schema: String(r['prod_schema']),
            identifier: String(r['prod_identifier']),
          };
          const kind = String(r['kind']) as BackupEntry['kind'];
          const copy =
            r['copy_identifier'] === null
              ? undefined
              : { database, schema: String(r['copy_schema']), identifier: String(r['copy_identifier']) };
          return { prod, kind, ...(copy ? { copy } : {}) };
        }),
      });
    }
    return backups.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async replaceRelations(change: RelationChange): Promise<void> {
    const statements: string[] = [];
    for (const { from, to } of change.tables) {
      statements.push(`CREATE SCHEMA IF NOT EXISTS ${quoteLocation(to)}`);
      // A model that changed from view to table must lose its old view first.
      if ((await this.relationKind(to)) === 'view') statements.push(`DROP VIEW ${quoteRelation(to)}`);
      statements.push(`CREATE OR REPLACE TABLE ${quoteRelation(to)} AS SELECT * FROM ${quoteRelation(from)}`);
    }
    for (const { to, sql } of change.views) {
      statements.push(`CREATE SCHEMA IF NOT EXISTS ${quoteLocation(to)}`);
      if ((await this.relationKind(to)) === 'table') statements.push(`DROP TABLE ${quoteRelation(to)}`);
      statements.push(`CREATE OR REPLACE VIEW ${quoteRelation(to)} AS ${sql}`);
    }
    for (const relation of change.drop) statements.push(...(await this.dropStatements(relation)));
    await this.transaction(statements);
  }

  swapSchemas(): Promise<BackupRef> {
    return Promise.reject(
      new UnsupportedOperation(
        'DuckDB cannot rename schemas: blue-green copies every relation in one transaction instead',
      ),
    );
  }

  /** Nothing to undo: DuckDB never swaps (see `swapSchemas`). */
  async unswapSchemas(): Promise<void> {}

  async fingerprint(relation: Relation): Promise<Fingerprint> {
    // The sum of per-row hashes does not depend on row order and, unlike XOR, counts duplicates.
    const rows = await this.execute(
      `SELECT count(*)::BIGINT AS row_count, coalesce(sum(hash(r)), 0)::HUGEINT::VARCHAR AS checksum ` +
        `FROM ${quoteRelation(relation)} AS r`,
    );
    const row = rows[0] ?? {};
    return { relation, rows: Number(row['row_count'] ?? 0), checksum: String(row['checksum'] ?? '0') };
  }

  async close(): Promise<void> {
    this.connection.closeSync();
    this.instance.closeSync();
  }

  private async viewDefinition(relation: Relation): Promise<string> {
    const rows = await this.execute(
      `SELECT sql FROM duckdb_views() WHERE database_name = ${quoteLiteral(relation.database)} ` +
        `AND schema_name = ${quoteLiteral(relation.schema)} AND view_name = ${quoteLiteral(relation.identifier)}`,
    );
    const sql = rows[0]?.['sql'];
    if (typeof sql !== 'string') throw new Error(`no definition found for view ${quoteRelation(relation)}`);
    return sql;
  }

  private async storedViewDefinitions(backup: BackupRef): Promise<Map<string, string>> {
    const rows = await this.execute(
      `SELECT prod_database, prod_schema, prod_identifier, view_sql FROM ${manifestTable(backup.location)} ` +
        `WHERE kind = 'view'`,
    );
    const views = new Map<string, string>();
    for (const row of rows) {
      const relation = {
        database: String(row['prod_database']),
        schema: String(row['prod_schema']),
        identifier: String(row['prod_identifier']),
      };
      views.set(key(relation), String(row['view_sql']));
    }
    return views;
  }

  private async dropStatements(relation: Relation): Promise<string[]> {
    const kind = await this.relationKind(relation);
    if (kind === 'table') return [`DROP TABLE ${quoteRelation(relation)}`];
    if (kind === 'view') return [`DROP VIEW ${quoteRelation(relation)}`];
    return [];
  }
}

function quoteLocation(location: Location): string {
  return `${quoteIdentifier(location.database)}.${quoteIdentifier(location.schema)}`;
}

function manifestTable(location: Location): string {
  return quoteRelation({ ...location, identifier: BACKUP_MANIFEST_TABLE });
}

function parseOperation(value: unknown): BackupOperation {
  return value === 'mirror' || value === 'rollback' ? value : 'deploy';
}

function key(relation: Relation): string {
  return `${relation.database}\u0000${relation.schema}\u0000${relation.identifier}`;
}
