/**
 * DuckDB, the embedded default. It has no zero-copy clone and no schema rename, but its DDL is
 * transactional: copying every published relation (or restoring every backed-up one) inside one
 * transaction gives readers the same all-or-nothing cut-over a clone or swap gives elsewhere.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { BackupRef, Fingerprint, Location, Relation } from '../../../workflows/types.js';
import type { DuckDbConnection } from '../../profiles.js';
import {
  type BackupLabel,
  type RelationChange,
  type RelationKind,
  UnsupportedOperation,
  type WarehouseAdapter,
} from '../adapter.js';
import { CAPABILITIES } from '../capabilities.js';
import {
  BACKUP_LOCATION_PREFIX,
  BACKUP_MANIFEST_TABLE,
  BackupLocationTaken,
  backupLocationName,
  headerOf,
  manifestHeader,
  type ManifestHeader,
  type ManifestRow,
  manifestStatements,
  manifestTable,
  newestFirst,
  ownedBy,
  parseManifestRows,
  refOf,
} from '../shared/backup-manifest.js';
import { StatementCounter, type StatementLog } from '../shared/statement-log.js';
import { duckDbDialect } from './dialect.js';

const { quoteLiteral, quoteLocation, quoteRelation } = duckDbDialect;

type Row = Record<string, unknown>;

export class DuckDbAdapter implements WarehouseAdapter {
  readonly engine = 'duckdb' as const;
  readonly capabilities = CAPABILITIES.duckdb;
  readonly dialect = duckDbDialect;
  private readonly statements: StatementCounter;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    private readonly database: string,
    log: StatementLog,
  ) {
    this.statements = new StatementCounter('duckdb', log);
  }

  static async open(target: DuckDbConnection, log: StatementLog = () => {}): Promise<DuckDbAdapter> {
    const instance = await DuckDBInstance.create(target.path);
    const connection = await instance.connect();
    return new DuckDbAdapter(instance, connection, target.database, log);
  }

  /** Every statement goes through here: one place that numbers and logs what is sent. */
  private async execute(sql: string): Promise<Row[]> {
    this.statements.record(sql);
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

  /**
   * The kinds of many relations in one catalog query per schema: each catalog query reads every table
   * DuckDB has, so asking once per relation makes a cut-over of n tables cost n² (19 s of lookups for
   * 1,000 tables). Kinds are as of the call; the statements built from them run after it.
   */
  async relationKinds(relations: Relation[]): Promise<(relation: Relation) => RelationKind> {
    const kinds = new Map<string, RelationKind>();
    const schemas = new Map<string, Location>();
    for (const relation of relations)
      schemas.set(this.dialect.relationKey({ ...relation, identifier: '' }), relation);
    for (const location of schemas.values())
      for (const { relation, kind } of await this.listRelations(location))
        kinds.set(this.dialect.relationKey(relation), kind);
    return (relation) => kinds.get(this.dialect.relationKey(relation)) ?? 'absent';
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
    const header = headerOf(deployId, label);
    const statements: string[] = [];
    if (await this.schemaExists(location)) {
      // Only a retried backup of this same deploy may be replaced; anything else there is not ours.
      const existing = await this.readManifest(location);
      if (!ownedBy(existing?.header, deployId)) throw new BackupLocationTaken(location, existing?.header);
      statements.push(`DROP SCHEMA ${quoteLocation(location)} CASCADE`);
    }
    statements.push(`CREATE SCHEMA ${quoteLocation(location)}`);
    const rows: ManifestRow[] = [];
    const kindOf = await this.relationKinds(relations);
    for (const [index, prod] of relations.entries()) {
      const kind = kindOf(prod);
      if (kind === 'table') {
        const copy = { ...location, identifier: `t${index}__${prod.identifier}` };
        statements.push(`CREATE TABLE ${quoteRelation(copy)} AS SELECT * FROM ${quoteRelation(prod)}`);
        rows.push({ entry: { prod, kind, copy }, viewSql: null });
      } else {
        rows.push({
          entry: { prod, kind },
          viewSql: kind === 'view' ? await this.viewDefinition(prod) : null,
        });
      }
    }
    statements.push(...manifestStatements(this.dialect, location, header, rows));
    await this.transaction(statements);
    return refOf(header, location, rows);
  }

  async restore(backup: BackupRef): Promise<void> {
    const recorded = await this.readManifest(backup.location);
    const views = new Map(
      (recorded?.rows ?? []).map((row) => [this.dialect.relationKey(row.entry.prod), row]),
    );
    const statements: string[] = [];
    const kindOf = await this.relationKinds(backup.entries.map((entry) => entry.prod));
    for (const entry of backup.entries) statements.push(...dropStatements(entry.prod, kindOf(entry.prod)));
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
      const sql = views.get(this.dialect.relationKey(entry.prod))?.viewSql;
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
      const manifest = await this.readManifest(location);
      if (manifest?.header) backups.push(refOf(manifest.header, location, manifest.rows));
    }
    return newestFirst(backups);
  }

  async replaceRelations(change: RelationChange): Promise<void> {
    const statements: string[] = [];
    const kindOf = await this.relationKinds([
      ...change.tables.map((t) => t.to),
      ...change.views.map((v) => v.to),
      ...change.drop,
    ]);
    for (const { from, to } of change.tables) {
      statements.push(`CREATE SCHEMA IF NOT EXISTS ${quoteLocation(to)}`);
      // A model that changed from view to table must lose its old view first.
      if (kindOf(to) === 'view') statements.push(`DROP VIEW ${quoteRelation(to)}`);
      statements.push(`CREATE OR REPLACE TABLE ${quoteRelation(to)} AS SELECT * FROM ${quoteRelation(from)}`);
    }
    for (const { to, sql } of change.views) {
      statements.push(`CREATE SCHEMA IF NOT EXISTS ${quoteLocation(to)}`);
      if (kindOf(to) === 'table') statements.push(`DROP TABLE ${quoteRelation(to)}`);
      statements.push(`CREATE OR REPLACE VIEW ${quoteRelation(to)} AS ${sql}`);
    }
    for (const relation of change.drop) statements.push(...dropStatements(relation, kindOf(relation)));
    await this.transaction(statements);
  }

  swapLocations(): Promise<BackupRef> {
    return Promise.reject(
      new UnsupportedOperation(
        'DuckDB cannot rename schemas: blue-green copies every relation in one transaction instead',
      ),
    );
  }

  /** Nothing to undo: DuckDB never swaps (see `swapLocations`). */
  async unswapLocations(): Promise<void> {}

  async fingerprint(relation: Relation): Promise<Fingerprint> {
    // The sum of per-row hashes does not depend on row order and, unlike XOR, counts duplicates.
    const rows = await this.execute(
      `SELECT count(*)::BIGINT AS row_count, coalesce(sum(hash(r)), 0)::HUGEINT::VARCHAR AS checksum ` +
        `FROM ${quoteRelation(relation)} AS r`,
    );
    const row = rows[0] ?? {};
    return { relation, rows: Number(row['row_count'] ?? 0), checksum: String(row['checksum'] ?? '0') };
  }

  query(sql: string): Promise<Row[]> {
    return this.execute(sql);
  }

  async close(): Promise<void> {
    this.connection.closeSync();
    this.instance.closeSync();
  }

  private async schemaExists(location: Location): Promise<boolean> {
    const rows = await this.execute(
      `SELECT 1 FROM information_schema.schemata WHERE catalog_name = ${quoteLiteral(location.database)} ` +
        `AND schema_name = ${quoteLiteral(location.schema)}`,
    );
    return rows.length > 0;
  }

  /** The manifest in `location`: header (comment, or the first row of an older manifest) and rows. */
  private async readManifest(
    location: Location,
  ): Promise<{ header: ManifestHeader | undefined; rows: ManifestRow[] } | undefined> {
    const [table] = await this.execute(
      `SELECT comment FROM duckdb_tables() WHERE database_name = ${quoteLiteral(location.database)} ` +
        `AND schema_name = ${quoteLiteral(location.schema)} AND table_name = ${quoteLiteral(BACKUP_MANIFEST_TABLE)}`,
    );
    if (table === undefined) return undefined;
    const raw = await this.execute(`SELECT * FROM ${manifestTable(this.dialect, location)}`);
    return { header: manifestHeader(table['comment'], raw), rows: parseManifestRows(raw, location) };
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
}

function dropStatements(relation: Relation, kind: RelationKind): string[] {
  if (kind === 'table') return [`DROP TABLE ${quoteRelation(relation)}`];
  if (kind === 'view') return [`DROP VIEW ${quoteRelation(relation)}`];
  return [];
}
