/**
 * DuckDB, the embedded default. It has no zero-copy clone and no schema rename, but its DDL is
 * transactional: copying every published table (or restoring every backed-up one) inside one
 * transaction gives readers the same all-or-nothing cut-over a clone or swap gives elsewhere.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { BackupEntry, BackupRef, Fingerprint, Relation } from '../../workflows/types.js';
import type { DuckDbConnection } from '../profiles.js';
import {
  BACKUP_MANIFEST_TABLE,
  backupLocationName,
  type CopyRequest,
  quoteIdentifier,
  quoteLiteral,
  quoteRelation,
  type RelationKind,
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

  async backup(deployId: string, relations: Relation[]): Promise<BackupRef> {
    const location = { database: this.database, schema: backupLocationName(deployId) };
    const entries: BackupEntry[] = [];
    const statements = [
      `DROP SCHEMA IF EXISTS ${this.quoteLocation(location)} CASCADE`,
      `CREATE SCHEMA ${this.quoteLocation(location)}`,
      `CREATE TABLE ${this.manifestTable(location)} (prod_database VARCHAR, prod_schema VARCHAR, ` +
        `prod_identifier VARCHAR, kind VARCHAR, copy_identifier VARCHAR, view_sql VARCHAR)`,
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
      statements.push(
        `INSERT INTO ${this.manifestTable(location)} VALUES (${[
          prod.database,
          prod.schema,
          prod.identifier,
          kind,
        ]
          .map(quoteLiteral)
          .join(
            ', ',
          )}, ${copy ? quoteLiteral(copy.identifier) : 'NULL'}, ${viewSql === null ? 'NULL' : quoteLiteral(viewSql)})`,
      );
    }
    await this.transaction(statements);
    return { deployId, location, entries };
  }

  async restore(backup: BackupRef): Promise<void> {
    const views = await this.storedViewDefinitions(backup);
    const statements: string[] = [];
    for (const entry of backup.entries) statements.push(...(await this.dropStatements(entry.prod)));
    for (const entry of backup.entries) {
      if (entry.kind === 'table' && entry.copy) {
        statements.push(`CREATE SCHEMA IF NOT EXISTS ${this.quoteLocation(entry.prod)}`);
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
    await this.execute(`DROP SCHEMA IF EXISTS ${this.quoteLocation(backup.location)} CASCADE`);
  }

  async publishTables(copies: CopyRequest[]): Promise<void> {
    const statements: string[] = [];
    for (const { from, to } of copies) {
      statements.push(`CREATE SCHEMA IF NOT EXISTS ${this.quoteLocation(to)}`);
      // A model that changed from view to table must lose its old view first.
      if ((await this.relationKind(to)) === 'view') statements.push(`DROP VIEW ${quoteRelation(to)}`);
      statements.push(`CREATE OR REPLACE TABLE ${quoteRelation(to)} AS SELECT * FROM ${quoteRelation(from)}`);
    }
    await this.transaction(statements);
  }

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
      `SELECT prod_database, prod_schema, prod_identifier, view_sql FROM ${this.manifestTable(backup.location)} ` +
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

  private quoteLocation(location: { database: string; schema: string }): string {
    return `${quoteIdentifier(location.database)}.${quoteIdentifier(location.schema)}`;
  }

  private manifestTable(location: { database: string; schema: string }): string {
    return quoteRelation({ ...location, identifier: BACKUP_MANIFEST_TABLE });
  }
}

function key(relation: Relation): string {
  return `${relation.database}\u0000${relation.schema}\u0000${relation.identifier}`;
}
