/**
 * Snowflake. Every DDL statement commits on its own, so atomicity comes from single statements: a
 * database `SWAP WITH` for blue-green (one statement flips every relation), `CREATE OR REPLACE TABLE …
 * CLONE … COPY GRANTS` per table elsewhere. Backups are zero-copy clones. The statements themselves are
 * built in `statements.ts`; this file decides which to send, in what order, and makes each step safe
 * to retry.
 */
import type { BackupRef, Fingerprint, Location, Relation } from '../../../workflows/types.js';
import type { SnowflakeConnection } from '../../profiles.js';
import {
  type BackupLabel,
  type DatabaseClone,
  type LocationSwap,
  type RelationChange,
  type RelationKind,
  type StagingOwner,
  UnsupportedOperation,
  type ViewRequest,
  type WarehouseAdapter,
} from '../adapter.js';
import { CAPABILITIES } from '../capabilities.js';
import {
  BACKUP_LOCATION_PREFIX,
  BACKUP_MANIFEST_TABLE,
  BackupLocationTaken,
  backupLocationName,
  headerOf,
  type ManifestHeader,
  manifestHeader,
  type ManifestRow,
  manifestStatements,
  manifestTable,
  newestFirst,
  ownedBy,
  parseManifestRows,
  refOf,
} from '../shared/backup-manifest.js';
import { StatementCounter, type StatementLog } from '../shared/statement-log.js';
import { type SessionTag, SnowflakeSession } from './connection.js';
import { snowflakeDialect } from './dialect.js';
import * as sql from './statements.js';

type Row = Record<string, unknown>;
interface Described {
  kind: 'table' | 'view';
  transient: boolean;
}

const SYSTEM_SCHEMAS = new Set(['INFORMATION_SCHEMA', 'PUBLIC']);

export class SnowflakeAdapter implements WarehouseAdapter {
  readonly engine = 'snowflake' as const;
  readonly capabilities = CAPABILITIES.snowflake;
  readonly dialect = snowflakeDialect;

  private constructor(
    private readonly session: Pick<SnowflakeSession, 'execute' | 'close'>,
    private readonly database: string,
  ) {}

  /** Over any session that runs statements: the driver's, or a test's scripted catalog. */
  static over(session: Pick<SnowflakeSession, 'execute' | 'close'>, database: string): SnowflakeAdapter {
    return new SnowflakeAdapter(session, database);
  }

  static async open(
    target: SnowflakeConnection,
    log: StatementLog = () => {},
    tag?: SessionTag,
  ): Promise<SnowflakeAdapter> {
    const session = await SnowflakeSession.open(target, new StatementCounter('snowflake', log), tag);
    return new SnowflakeAdapter(session, target.database);
  }

  private execute(statement: string): Promise<Row[]> {
    return this.session.execute(statement);
  }

  private async run(statements: string[]): Promise<void> {
    for (const statement of statements) await this.execute(statement);
  }

  async relationKind(relation: Relation): Promise<RelationKind> {
    return (await this.describe(relation))?.kind ?? 'absent';
  }

  async listRelations(location: Location): Promise<Array<{ relation: Relation; kind: 'table' | 'view' }>> {
    const found = await this.describeAll(location);
    return [...found.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([identifier, { kind }]) => ({ relation: { ...location, identifier }, kind }));
  }

  async backup(deployId: string, relations: Relation[], label: BackupLabel): Promise<BackupRef> {
    const location = { database: this.database, schema: backupLocationName(deployId) };
    const header = headerOf(deployId, label);
    if (await this.schemaExists(location)) {
      // Only a retried backup of this same deploy may be replaced; anything else there is not ours.
      const holder = (await this.readManifest(location))?.header;
      if (!ownedBy(holder, deployId)) throw new BackupLocationTaken(location, holder);
      await this.run(sql.dropBackup(location));
    }
    await this.execute(sql.createSchema(location));
    try {
      const rows: ManifestRow[] = [];
      for (const [index, prod] of relations.entries()) {
        const found = await this.describe(prod);
        if (found?.kind === 'table') {
          const copy = { ...location, identifier: `t${index}__${prod.identifier}` };
          await this.execute(sql.cloneIntoBackup(prod, copy));
          rows.push({ entry: { prod, kind: 'table', copy }, viewSql: null });
        } else if (found?.kind === 'view') {
          rows.push({ entry: { prod, kind: 'view' }, viewSql: await this.viewDefinition(prod) });
        } else {
          rows.push({ entry: { prod, kind: 'absent' }, viewSql: null });
        }
      }
      // The manifest last: a backup without one is never listed, so a half-made backup is never restored.
      await this.run(manifestStatements(this.dialect, location, header, rows));
      return refOf(header, location, rows);
    } catch (error) {
      // No transaction to roll back: drop what this call created, and only that.
      await this.run(sql.dropBackup(location)).catch(() => undefined);
      throw error;
    }
  }

  async restore(backup: BackupRef): Promise<void> {
    const recorded = await this.readManifest(backup.location);
    const views = new Map(
      (recorded?.rows ?? []).map((row) => [this.dialect.relationKey(row.entry.prod), row]),
    );
    // One relation at a time, tables before views (views read them); each statement is atomic.
    for (const entry of backup.entries) {
      if (entry.kind !== 'table') continue;
      if (!entry.copy) throw new Error(`backup entry ${entry.prod.identifier} has no copy to restore`);
      const current = await this.describe(entry.prod);
      const source = await this.describe(entry.copy);
      await this.execute(`CREATE SCHEMA IF NOT EXISTS ${this.dialect.quoteLocation(entry.prod)}`);
      await this.run(
        sql.replaceTable(entry.copy, entry.prod, {
          to: current?.kind ?? 'absent',
          fromTransient: source?.transient ?? false,
          toTransient: current?.transient,
        }),
      );
    }
    for (const entry of backup.entries) {
      const current = await this.describe(entry.prod);
      if (entry.kind === 'absent') {
        await this.run(sql.dropRelation(entry.prod, current?.kind ?? 'absent'));
      } else if (entry.kind === 'view') {
        const viewSql = views.get(this.dialect.relationKey(entry.prod))?.viewSql;
        if (!viewSql) throw new Error(`backup has no definition for view ${entry.prod.identifier}`);
        if (current?.kind === 'table') await this.run(sql.dropRelation(entry.prod, 'table'));
        await this.execute(viewSql);
      }
    }
  }

  async dropBackup(backup: BackupRef): Promise<void> {
    const database = backup.swapped?.find((swap) => swap.unit === 'database')?.backup;
    await this.run(sql.dropBackup(backup.location, database));
  }

  /** Backups can be in any database of the account: a database swap carries prod's backups along. */
  async listBackups(): Promise<BackupRef[]> {
    const schemas = await this.execute(sql.SHOW_SCHEMAS_LIKE_BACKUP);
    const backups: BackupRef[] = [];
    for (const row of schemas) {
      const name = String(row['name'] ?? row['schema_name'] ?? '');
      if (!name.toLowerCase().startsWith(BACKUP_LOCATION_PREFIX)) continue;
      const location = { database: String(row['database_name'] ?? this.database), schema: name };
      const manifest = await this.readManifest(location).catch(() => undefined);
      if (manifest?.header) backups.push(refOf(manifest.header, location, manifest.rows));
    }
    return newestFirst(backups);
  }

  async replaceRelations(change: RelationChange): Promise<void> {
    // Per relation: Snowflake has no transactional DDL. Each statement below is atomic on its own.
    // A database swap renamed the last staging database away: the next sync creates it again.
    const databases = new Set([
      ...change.tables.map((t) => t.to.database),
      ...change.views.map((v) => v.to.database),
    ]);
    for (const database of databases)
      await this.execute(`CREATE DATABASE IF NOT EXISTS ${this.dialect.quoteIdentifier(database)}`);
    for (const { from, to } of change.tables) {
      const [source, current] = [await this.describe(from), await this.describe(to)];
      if (source?.kind !== 'table') throw new Error(`${this.dialect.quoteRelation(from)} is not a table`);
      await this.execute(`CREATE SCHEMA IF NOT EXISTS ${this.dialect.quoteLocation(to)}`);
      await this.run(
        sql.replaceTable(from, to, {
          to: current?.kind ?? 'absent',
          fromTransient: source.transient,
          toTransient: current?.transient,
        }),
      );
    }
    for (const view of change.views) {
      await this.execute(`CREATE SCHEMA IF NOT EXISTS ${this.dialect.quoteLocation(view.to)}`);
      await this.run(sql.replaceView(view.to, view.sql, await this.relationKind(view.to)));
    }
    for (const relation of change.drop)
      await this.run(sql.dropRelation(relation, await this.relationKind(relation)));
  }

  async swapLocations(
    deployId: string,
    swaps: LocationSwap[],
    label: BackupLabel,
    views: ViewRequest[] = [],
  ): Promise<BackupRef> {
    if (swaps.length === 0) throw new Error('swapLocations needs at least one prod and staging location');
    const plan = swapPlan(swaps);
    return plan.unit === 'database'
      ? this.swapDatabase(deployId, plan.prod, plan.staging, swaps, label, views)
      : this.swapSchemaPairs(deployId, plan.database, swaps, label, views);
  }

  async unswapLocations(backup: BackupRef): Promise<void> {
    const swapped = backup.swapped ?? [];
    const database = swapped.find((swap) => swap.unit === 'database');
    if (database) return this.unswapDatabase(backup, database);
    const location = backup.location;
    const pending = [];
    for (const swap of swapped)
      if (await this.schemaExists({ database: location.database, schema: swap.backup })) pending.push(swap);
    await this.run(sql.unswapSchemas(location.database, pending));
  }

  /**
   * Staging made from prod in one zero-copy statement (statements.ts `cloneStaging`), then given
   * prod's database, schema and future grants, so the objects dbt creates there get them too.
   */
  async cloneBuildDatabase(
    pairs: LocationSwap[],
    owner: StagingOwner,
    options: { wholeDatabase: boolean },
  ): Promise<DatabaseClone | undefined> {
    const layout = databaseLayout(pairs);
    if (!layout) return undefined;
    const { prod, staging } = layout;
    const prodSchemas = [...(await this.schemasOf(prod))];
    if (options.wholeDatabase) requireOnlyProjectSchemas(prod, staging, prodSchemas, pairs);
    const [found] = await this.execute(sql.findDatabase(prod, staging));
    const holder = sql.stagingHolder(found, owner);
    await this.run(sql.cloneStaging(prod, staging, holder, owner, prodSchemas.filter(isBackupSchema)));
    await this.run(
      await this.grantsFor(
        prod,
        staging,
        prodSchemas.filter((s) => !SYSTEM_SCHEMAS.has(s) && !isBackupSchema(s)),
      ),
    );
    const how = { absent: 'cloned', 'this-deploy': 'kept', 'ended-deploy': 'replaced' } as const;
    return { prod, staging, how: how[holder.kind as keyof typeof how] };
  }

  async fingerprint(relation: Relation): Promise<Fingerprint> {
    const [row] = await this.execute(sql.fingerprint(relation));
    return { relation, rows: Number(row?.['row_count'] ?? 0), checksum: String(row?.['checksum'] ?? '0') };
  }

  query(statement: string): Promise<Row[]> {
    return this.execute(statement);
  }

  async close(): Promise<void> {
    await this.session.close();
  }

  /**
   * blue-green on Snowflake: the staging database takes prod's name in one statement. Before it,
   * staging gets prod's database, schema and future grants, and its views are re-created from the SQL
   * dbt compiled for prod (they would otherwise name staging). The manifest is written into prod just
   * before the swap, so it travels with the old prod into the backup database: finding it there (and
   * not in prod) is how a retried step knows the swap committed.
   */
  private async swapDatabase(
    deployId: string,
    prod: string,
    staging: string,
    swaps: LocationSwap[],
    label: BackupLabel,
    views: ViewRequest[],
  ): Promise<BackupRef> {
    const backupDatabase = backupLocationName(deployId).toUpperCase();
    const schema = backupLocationName(deployId);
    const header: ManifestHeader = {
      ...headerOf(deployId, label),
      swapped: [{ prod, staging, backup: backupDatabase, unit: 'database' }],
    };
    for (const database of [backupDatabase, staging]) {
      const location = { database, schema };
      const done = await this.readManifest(location).catch(() => undefined);
      if (done?.header && ownedBy(done.header, deployId)) {
        if (database === staging)
          await this.execute(sql.swapDatabases(prod, staging, backupDatabase)[1] as string);
        return refOf(done.header, { database: backupDatabase, schema }, done.rows);
      }
    }
    const [prodSchemas, stagingSchemas] = [await this.schemasOf(prod), await this.schemasOf(staging)];
    requireOnlyProjectSchemas(prod, staging, [...prodSchemas], swaps);
    await this.run(
      await this.grantsFor(
        prod,
        staging,
        [...stagingSchemas].filter((s) => !SYSTEM_SCHEMAS.has(s)),
      ),
    );
    for (const view of views) await this.execute(sql.repointView(view.to, view.sql));
    const rows: ManifestRow[] = [];
    for (const name of prodSchemas) {
      if (SYSTEM_SCHEMAS.has(name) || name.toLowerCase().startsWith(BACKUP_LOCATION_PREFIX)) continue;
      for (const [identifier, found] of await this.describeAll({ database: prod, schema: name })) {
        const relation = { database: prod, schema: name, identifier };
        rows.push(
          found.kind === 'table'
            ? {
                entry: {
                  prod: relation,
                  kind: 'table',
                  copy: { database: backupDatabase, schema: name, identifier },
                },
                viewSql: null,
              }
            : { entry: { prod: relation, kind: 'view' }, viewSql: await this.viewDefinition(relation) },
        );
      }
    }
    const manifestIn = { database: prod, schema };
    await this.execute(sql.createSchema(manifestIn));
    await this.run(manifestStatements(this.dialect, manifestIn, header, rows));
    await this.run(sql.swapDatabases(prod, staging, backupDatabase));
    return refOf(header, { database: backupDatabase, schema }, rows);
  }

  private async unswapDatabase(
    backup: BackupRef,
    swap: { prod: string; staging: string; backup: string },
  ): Promise<void> {
    const schema = backup.location.schema;
    // The manifest still in prod: the swap never ran, only the manifest has to go.
    if (await this.schemaExists({ database: swap.prod, schema })) {
      await this.run(sql.dropBackup({ database: swap.prod, schema }));
      return;
    }
    const swappedDatabase = (await this.schemaExists({ database: swap.backup, schema }))
      ? swap.backup
      : (await this.schemaExists({ database: swap.staging, schema }))
        ? swap.staging
        : undefined;
    if (swappedDatabase === undefined) return;
    if (swappedDatabase === swap.staging)
      await this.execute(sql.swapDatabases(swap.prod, swap.staging, swap.backup)[1] as string);
    await this.run(sql.unswapDatabases(swap.prod, swap.staging, swap.backup));
    // The old prod is prod again: its manifest went back with it and no longer describes a backup.
    await this.run(sql.dropBackup({ database: swap.prod, schema }));
  }

  /** Staging schemas in prod's own database: one `ALTER SCHEMA … SWAP WITH` per pair (per-location). */
  private async swapSchemaPairs(
    deployId: string,
    database: string,
    swaps: LocationSwap[],
    label: BackupLabel,
    views: ViewRequest[],
  ): Promise<BackupRef> {
    const location = { database, schema: backupLocationName(deployId) };
    const pairs = swaps.map((swap, index) => ({
      prod: this.dialect.storedName(swap.prod.schema),
      staging: this.dialect.storedName(swap.staging.schema),
      backup: this.dialect.storedName(backupLocationName(deployId, index + 1)),
    }));
    const done = await this.readManifest(location).catch(() => undefined);
    if (done?.header) {
      if (!ownedBy(done.header, deployId)) throw new BackupLocationTaken(location, done.header);
      return refOf(done.header, location, done.rows);
    }
    for (const pair of pairs) await this.run(await this.grantsForSchema(database, pair.prod, pair.staging));
    for (const view of views) await this.execute(sql.repointView(view.to, view.sql));
    const rows: ManifestRow[] = [];
    for (const pair of pairs)
      for (const [identifier, found] of await this.describeAll({ database, schema: pair.prod })) {
        const relation = { database, schema: pair.prod, identifier };
        rows.push(
          found.kind === 'table'
            ? {
                entry: { prod: relation, kind: 'table', copy: { database, schema: pair.backup, identifier } },
                viewSql: null,
              }
            : { entry: { prod: relation, kind: 'view' }, viewSql: await this.viewDefinition(relation) },
        );
      }
    const header: ManifestHeader = {
      ...headerOf(deployId, label),
      swapped: pairs.map((p) => ({ ...p, unit: 'schema' as const })),
    };
    await this.execute(sql.createSchema(location));
    await this.run(manifestStatements(this.dialect, location, header, rows));
    await this.run(sql.swapSchemas(database, pairs));
    return refOf(header, location, rows);
  }

  private async grantsFor(prod: string, staging: string, schemas: string[]): Promise<string[]> {
    const q = this.dialect.quoteIdentifier;
    const statements = [
      ...sql.copyGrants(await this.grants(sql.showGrants('DATABASE', q(prod))), 'DATABASE', q(staging)),
      ...sql.copyFutureGrants(
        await this.grants(sql.showFutureGrants('DATABASE', q(prod))),
        'DATABASE',
        q(staging),
      ),
    ];
    for (const schema of schemas)
      statements.push(...(await this.grantsForSchema(prod, schema, schema, staging)));
    return statements;
  }

  private async grantsForSchema(
    database: string,
    prodSchema: string,
    stagingSchema: string,
    stagingDatabase = database,
  ): Promise<string[]> {
    const from = this.dialect.quoteLocation({ database, schema: prodSchema });
    const to = this.dialect.quoteLocation({ database: stagingDatabase, schema: stagingSchema });
    if (!(await this.schemaExists({ database, schema: prodSchema }))) return [];
    return [
      ...sql.copyGrants(await this.grants(sql.showGrants('SCHEMA', from)), 'SCHEMA', to),
      ...sql.copyFutureGrants(await this.grants(sql.showFutureGrants('SCHEMA', from)), 'SCHEMA', to),
    ];
  }

  private async grants<T>(statement: string): Promise<T[]> {
    return (await this.execute(statement)) as T[];
  }

  private async describe(relation: Relation): Promise<Described | undefined> {
    const found = await this.describeAll(relation, relation.identifier);
    return found.get(this.dialect.storedName(relation.identifier));
  }

  private async describeAll(location: Location, identifier?: string): Promise<Map<string, Described>> {
    const rows = await this.execute(sql.describeRelations(location, identifier));
    const found = new Map<string, Described>();
    for (const row of rows) {
      const name = String(row['table_name']);
      const view = String(row['table_type']).toUpperCase() === 'VIEW';
      // A view listed in both `tables` and `views` stays a view.
      if (found.get(name)?.kind === 'view') continue;
      found.set(name, { kind: view ? 'view' : 'table', transient: String(row['is_transient']) === 'YES' });
    }
    return found;
  }

  private async viewDefinition(relation: Relation): Promise<string> {
    const [row] = await this.execute(sql.viewDefinition(relation));
    const text = row?.['view_definition'];
    if (typeof text !== 'string')
      throw new Error(`no definition found for view ${this.dialect.quoteRelation(relation)}`);
    return text;
  }

  private async schemasOf(database: string): Promise<Set<string>> {
    const rows = await this.execute(sql.listSchemas(database));
    return new Set(rows.map((row) => String(row['schema_name'])));
  }

  private async schemaExists(location: Location): Promise<boolean> {
    const rows = await this.execute(
      `${sql.listSchemas(location.database)} WHERE schema_name = ${this.dialect.quoteLiteral(this.dialect.storedName(location.schema))}`,
    ).catch(() => []);
    return rows.length > 0;
  }

  private async readManifest(
    location: Location,
  ): Promise<{ header: ManifestHeader | undefined; rows: ManifestRow[] } | undefined> {
    const table = this.dialect.storedName(BACKUP_MANIFEST_TABLE);
    const [found] = await this.execute(
      `SELECT comment FROM ${this.dialect.quoteIdentifier(location.database)}.information_schema.tables ` +
        `WHERE table_schema = ${this.dialect.quoteLiteral(this.dialect.storedName(location.schema))} ` +
        `AND table_name = ${this.dialect.quoteLiteral(table)}`,
    );
    if (found === undefined) return undefined;
    const raw = await this.execute(`SELECT * FROM ${manifestTable(this.dialect, location)}`);
    return { header: manifestHeader(found['comment'], raw), rows: parseManifestRows(raw, location) };
  }
}

function isBackupSchema(schema: string): boolean {
  return schema.toLowerCase().startsWith(BACKUP_LOCATION_PREFIX);
}

/**
 * A database swap (and the clone it starts from) takes every schema of prod's database along: one the
 * project does not build there (sources, another project) would be replaced by its copy from the
 * deploy's start, losing what was loaded since. Refused before anything is built.
 */
function requireOnlyProjectSchemas(
  prod: string,
  staging: string,
  prodSchemas: string[],
  pairs: LocationSwap[],
): void {
  const project = new Set(pairs.map((p) => snowflakeDialect.storedName(p.prod.schema)));
  const outside = prodSchemas.filter((s) => !SYSTEM_SCHEMAS.has(s) && !isBackupSchema(s) && !project.has(s));
  if (outside.length > 0)
    throw new UnsupportedOperation(
      `a database swap would take schemas ${outside.join(', ')} out of prod database ${prod}: the project does not build them in ${staging}. ` +
        'Keep sources and other projects in another database, or give staging schemas in the prod database (schema swap)',
    );
}

/** The database layout of `pairs` (staging a database of its own), or undefined for any other. */
function databaseLayout(pairs: LocationSwap[]): { prod: string; staging: string } | undefined {
  try {
    const plan = swapPlan(pairs);
    return plan.unit === 'database' ? plan : undefined;
  } catch (error) {
    if (error instanceof UnsupportedOperation) return undefined;
    throw error;
  }
}

/** Which swap `swaps` asks for: every prod schema in one database and staging's namesakes in another. */
export function swapPlan(
  swaps: LocationSwap[],
): { unit: 'database'; prod: string; staging: string } | { unit: 'schema'; database: string } {
  const fold = snowflakeDialect.storedName;
  const prodDatabases = new Set(swaps.map((s) => fold(s.prod.database)));
  const stagingDatabases = new Set(swaps.map((s) => fold(s.staging.database)));
  const [prod] = [...prodDatabases];
  const [staging] = [...stagingDatabases];
  if (prodDatabases.size !== 1 || stagingDatabases.size !== 1 || prod === undefined || staging === undefined)
    throw new UnsupportedOperation(
      'blue-green on Snowflake swaps one prod database with one staging database, or schemas inside one database: the targets span several',
    );
  if (prod === staging) return { unit: 'schema', database: prod };
  const renamed = swaps.find((s) => fold(s.prod.schema) !== fold(s.staging.schema));
  if (renamed)
    throw new UnsupportedOperation(
      `a database swap keeps schema names, but prod schema ${renamed.prod.schema} is built as ${renamed.staging.schema} in ${staging}: give the staging target the same schema`,
    );
  return { unit: 'database', prod, staging };
}
