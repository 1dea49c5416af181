/**
 * PostgreSQL. DDL is transactional and `ALTER SCHEMA ... RENAME` does not wait for readers, so a whole
 * cut-over (copies, a blue/green swap of schemas, a restore) commits at once or not at all. The catch is
 * that views bind to what they read by OID, not by name: a view that reads a relation we replace blocks
 * dropping it, and one that reads a schema we rename away follows the rename. Such views are captured,
 * dropped and re-created by name in the same transaction (see `withDependentViews`).
 */
import pg from 'pg';
import type { BackupRef, Fingerprint, Location, Relation } from '../../../workflows/types.js';
import type { PostgresConnection } from '../../profiles.js';
import {
  type BackupLabel,
  type LocationSwap,
  relationName,
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
  type ManifestHeader,
  type ManifestRow,
  manifestStatements,
  manifestTable as manifestTableIn,
  newestFirst,
  ownedBy,
  parseHeader,
  parseManifestRows,
  refOf,
} from '../shared/backup-manifest.js';
import { StatementCounter, type StatementLog } from '../shared/statement-log.js';
import { MAX_IDENTIFIER_BYTES, postgresDialect, truncateBytes } from './dialect.js';

const { quoteIdentifier, quoteLiteral, quoteRelation } = postgresDialect;

type Row = Record<string, unknown>;
type Parameter = string | string[];

/** The `pg_class.relkind` values this adapter manages: tables (plain, partitioned) and views (plain, materialized). */
const MANAGED_KINDS = ['r', 'p', 'v', 'm'] as const;
type PgKind = (typeof MANAGED_KINDS)[number];

interface CatalogRelation {
  oid: string;
  relation: Relation;
  pgKind: PgKind;
}

/** A relation found while walking from the replaced ones to the views that read them. */
interface DependencyNode extends CatalogRelation {
  /** The longest chain of views from a replaced relation: drop deepest first, create shallowest first. */
  depth: number;
  replaced: boolean;
  /** For views: the CREATE statement as the view is now, every name schema-qualified. */
  definition: string | null;
  /** For views: what re-creation would otherwise lose (indexes, grants, owner, comment). */
  aftercare: string[];
}

export class PostgresAdapter implements WarehouseAdapter {
  readonly engine = 'postgres' as const;
  readonly capabilities = CAPABILITIES.postgres;
  readonly dialect = postgresDialect;
  private readonly statements: StatementCounter;

  private constructor(
    private readonly client: pg.Client,
    private readonly database: string,
    log: StatementLog,
  ) {
    this.statements = new StatementCounter('postgres', log);
  }

  static async open(connection: PostgresConnection, log: StatementLog = () => {}): Promise<PostgresAdapter> {
    const client = new pg.Client({
      host: connection.host,
      port: connection.port,
      user: connection.user,
      password: connection.password,
      database: connection.dbname,
      application_name: 'dbt-temporal-deploy',
    });
    // Without a listener a dropped connection is an uncaught 'error' event that ends the worker;
    // the statement that was running fails on its own.
    client.on('error', (error) => log(`[postgres] connection error: ${error.message}`));
    await client.connect();
    return new PostgresAdapter(client, connection.dbname, log);
  }

  /** Every statement goes through here: one place that numbers and logs what is sent (values stay out). */
  private async execute(sql: string, parameters: Parameter[] = []): Promise<Row[]> {
    this.statements.record(sql);
    const result = await this.client.query<Row>(sql, parameters);
    return result.rows;
  }

  private async transaction<T>(work: () => Promise<T>): Promise<T> {
    await this.execute('BEGIN');
    try {
      const result = await work();
      await this.execute('COMMIT');
      return result;
    } catch (error) {
      // A broken connection cannot roll back, but the server discards the transaction anyway.
      await this.execute('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /**
   * With an empty search_path `pg_get_viewdef` qualifies every name, so a recorded definition reads
   * the same relations wherever and whenever it runs. Not reset on failure: the transaction is over.
   */
  private async withEmptySearchPath<T>(work: () => Promise<T>): Promise<T> {
    await this.execute(`SET LOCAL search_path = ''`);
    const result = await work();
    await this.execute('SET LOCAL search_path TO DEFAULT');
    return result;
  }

  async relationKind(relation: Relation): Promise<RelationKind> {
    const found = await this.lookup([relation]);
    const pgKind = found.get(key(relation))?.pgKind;
    return pgKind === undefined ? 'absent' : kindOf(pgKind);
  }

  async listRelations(location: Location): Promise<Array<{ relation: Relation; kind: 'table' | 'view' }>> {
    this.assertLocal(location);
    const relations = await this.relationsIn([location.schema]);
    return relations.map(({ relation, pgKind }) => ({ relation, kind: kindOf(pgKind) }));
  }

  async backup(deployId: string, relations: Relation[], label: BackupLabel): Promise<BackupRef> {
    const location = this.backupLocation(deployId, 0);
    const header = headerOf(deployId, label);
    return this.transaction(async () => {
      if ((await this.existingSchemas([location.schema])).has(location.schema)) {
        // Only a retried backup of this same deploy may be replaced; anything else there is not ours.
        const holder = await this.manifestHeaderIn(location);
        if (!ownedBy(holder, deployId)) throw new BackupLocationTaken(location, holder);
        await this.execute(`DROP SCHEMA ${quoteIdentifier(location.schema)} CASCADE`);
      }
      await this.execute(`CREATE SCHEMA ${quoteIdentifier(location.schema)}`);
      const found = await this.lookup(relations);
      const definitions = await this.viewDefinitions([...found.values()]);
      const rows: ManifestRow[] = [];
      for (const [index, prod] of relations.entries()) {
        const current = found.get(key(prod));
        if (current === undefined) {
          rows.push({ entry: { prod, kind: 'absent' }, viewSql: null });
        } else if (kindOf(current.pgKind) === 'table') {
          const copy = { ...location, identifier: truncateBytes(`t${index}__${prod.identifier}`) };
          await this.copyTable(prod, copy);
          rows.push({ entry: { prod, kind: 'table', copy }, viewSql: null });
        } else {
          rows.push({ entry: { prod, kind: 'view' }, viewSql: definitions.get(current.oid) ?? null });
        }
      }
      await this.writeManifest(location, header, rows);
      return refOf(header, location, rows);
    });
  }

  async restore(backup: BackupRef): Promise<void> {
    this.assertLocal(backup.location);
    await this.transaction(async () => {
      const recorded = await this.readManifestRows(backup.location);
      const wanted = new Set(backup.entries.map((entry) => key(entry.prod)));
      const current = await this.lookup(backup.entries.map((entry) => entry.prod));
      await this.withDependentViews(await this.dependencyClosure([...current.values()]), true, async () => {
        for (const entry of backup.entries) {
          if (entry.kind !== 'table') continue;
          if (!entry.copy) throw new Error(`backup entry ${relationName(entry.prod)} has no copy to restore`);
          await this.execute(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(entry.prod.schema)}`);
          await this.copyTable(entry.copy, entry.prod);
        }
        // Views last and in the order recorded: they read the tables above, and earlier views.
        await this.withEmptySearchPath(async () => {
          for (const { entry, viewSql } of recorded) {
            if (entry.kind !== 'view' || !wanted.has(key(entry.prod))) continue;
            if (viewSql === null)
              throw new Error(`backup has no definition for view ${relationName(entry.prod)}`);
            await this.execute(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(entry.prod.schema)}`);
            await this.execute(viewSql);
          }
        });
      });
    });
  }

  async dropBackup(backup: BackupRef): Promise<void> {
    this.assertLocal(backup.location);
    const schemas = new Set([backup.location.schema, ...(backup.swapped ?? []).map((swap) => swap.backup)]);
    // A backup listed without `swapped` still names its other renamed schemas through its copies.
    for (const entry of backup.entries) {
      const schema = entry.copy?.schema;
      if (schema?.startsWith(`${backup.location.schema}__`)) schemas.add(schema);
    }
    await this.execute(`DROP SCHEMA IF EXISTS ${[...schemas].map(quoteIdentifier).join(', ')} CASCADE`);
  }

  async listBackups(): Promise<BackupRef[]> {
    const database = this.database;
    const manifests = await this.execute(
      'SELECT n.nspname AS schema, obj_description(c.oid, $3) AS header FROM pg_namespace n ' +
        'JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = $2 ' +
        `WHERE starts_with(n.nspname, $1) AND c.relkind = 'r'`,
      [BACKUP_LOCATION_PREFIX, BACKUP_MANIFEST_TABLE, 'pg_class'],
    );
    const backups: BackupRef[] = [];
    for (const manifest of manifests) {
      const location = { database, schema: String(manifest['schema']) };
      const header = parseHeader(manifest['header']);
      if (header === undefined) continue;
      backups.push(refOf(header, location, await this.readManifestRows(location)));
    }
    return newestFirst(backups);
  }

  async replaceRelations(change: RelationChange): Promise<void> {
    const targets = [...change.tables.map((t) => t.to), ...change.views.map((v) => v.to), ...change.drop];
    await this.transaction(async () => {
      const current = await this.lookup(targets);
      await this.withDependentViews(await this.dependencyClosure([...current.values()]), true, async () => {
        for (const { from, to } of change.tables) {
          await this.execute(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(to.schema)}`);
          await this.copyTable(from, to);
        }
        // dbt compiled these for the target's own search_path; only captured definitions need it empty.
        for (const { to, sql } of change.views) {
          await this.execute(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(to.schema)}`);
          await this.execute(`CREATE VIEW ${quoteRelation(to)} AS ${sql}`);
        }
      });
    });
  }

  async swapLocations(deployId: string, swaps: LocationSwap[], label: BackupLabel): Promise<BackupRef> {
    for (const swap of swaps) {
      this.assertLocal(swap.prod);
      this.assertLocal(swap.staging);
    }
    const location = this.backupLocation(deployId, 0);
    const swapped = swaps.map((swap, index) => ({
      prod: swap.prod.schema,
      staging: swap.staging.schema,
      backup: this.backupLocation(deployId, index).schema,
    }));
    const header: ManifestHeader = { ...headerOf(deployId, label), swapped };
    if (swaps.length === 0) throw new Error('swapLocations needs at least one prod and staging schema');
    return this.transaction(async () => {
      const existing = await this.existingSchemas(swapped.flatMap((s) => [s.prod, s.staging, s.backup]));
      if (existing.has(location.schema)) return this.alreadySwapped(location, swapped, existing);
      const missing = swapped.find((swap) => !existing.has(swap.staging));
      if (missing) throw new Error(`staging schema "${missing.staging}" does not exist`);
      const clash = swapped.find((swap) => existing.has(swap.backup));
      if (clash)
        throw new Error(`backup schema "${clash.backup}" already exists: drop it or use another deploy id`);
      const prodRelations = await this.relationsIn(swapped.map((s) => s.prod).filter((s) => existing.has(s)));
      const stagingRelations = await this.relationsIn(swapped.map((swap) => swap.staging));
      const closure = await this.dependencyClosure(prodRelations);
      this.refuseStagingReadingProd(closure, swaps);
      const rows = swapped.flatMap((swap) => swapManifestRows(swap, closure, stagingRelations));
      await this.withDependentViews(closure, false, async () => {
        for (const swap of swapped) {
          // A first deploy has no prod yet: an empty backup schema stands in for it, so unswapping
          // still has something to rename back.
          await this.execute(
            existing.has(swap.prod)
              ? `ALTER SCHEMA ${quoteIdentifier(swap.prod)} RENAME TO ${quoteIdentifier(swap.backup)}`
              : `CREATE SCHEMA ${quoteIdentifier(swap.backup)}`,
          );
          await this.execute(
            `ALTER SCHEMA ${quoteIdentifier(swap.staging)} RENAME TO ${quoteIdentifier(swap.prod)}`,
          );
        }
        await this.writeManifest(location, header, rows);
      });
      return refOf(header, location, rows);
    });
  }

  async unswapLocations(backup: BackupRef): Promise<void> {
    this.assertLocal(backup.location);
    const swapped = backup.swapped ?? [];
    if (swapped.length === 0) return;
    await this.transaction(async () => {
      const existing = await this.existingSchemas(swapped.flatMap((s) => [s.prod, s.staging, s.backup]));
      // A backup schema that is gone was renamed back already (or dropped): nothing left to undo.
      const pending = swapped.filter((swap) => existing.has(swap.backup));
      if (pending.length === 0) return;
      const occupied = pending.find((swap) => existing.has(swap.staging));
      if (occupied)
        throw new Error(`cannot unswap: schema "${occupied.staging}" exists again; drop or rename it first`);
      const prodRelations = await this.relationsIn(
        pending.map((swap) => swap.prod).filter((s) => existing.has(s)),
      );
      await this.withDependentViews(await this.dependencyClosure(prodRelations), false, async () => {
        for (const swap of pending) {
          // The manifest must not end up inside prod; without it the backup is no longer listed.
          if (swap.backup === backup.location.schema)
            await this.execute(`DROP TABLE IF EXISTS ${manifestTable(backup.location)}`);
          if (existing.has(swap.prod))
            await this.execute(
              `ALTER SCHEMA ${quoteIdentifier(swap.prod)} RENAME TO ${quoteIdentifier(swap.staging)}`,
            );
          await this.execute(
            `ALTER SCHEMA ${quoteIdentifier(swap.backup)} RENAME TO ${quoteIdentifier(swap.prod)}`,
          );
        }
      });
    });
  }

  async fingerprint(relation: Relation): Promise<Fingerprint> {
    this.assertLocal(relation);
    // A sum of per-row hashes does not depend on row order and, unlike XOR, counts duplicates; 60 bits
    // per row keep the sum exact in numeric. ROW(r.*) cannot be shadowed by a column named like the alias.
    const [row] = await this.execute(
      'SELECT count(*) AS row_count, ' +
        `coalesce(sum(('x' || substr(md5(ROW(r.*)::text), 1, 15))::bit(60)::bigint), 0)::text AS checksum ` +
        `FROM ${quoteRelation(relation)} AS r`,
    );
    return { relation, rows: Number(row?.['row_count'] ?? 0), checksum: String(row?.['checksum'] ?? '0') };
  }

  query(sql: string): Promise<Row[]> {
    return this.execute(sql);
  }

  async close(): Promise<void> {
    await this.client.end();
  }

  /**
   * PostgreSQL refuses to drop a relation that views read, and a view keeps reading the relation it was
   * bound to even after a rename. So every view of `closure` outside the replaced relations (it reads one
   * of them, directly or through other views) is dropped before `change` and re-created by name after
   * it, reading whatever `change` put in place. With `dropReplaced` the replaced relations are dropped
   * as well, dependents first. Nothing is ever dropped with CASCADE: a view that cannot be re-created
   * fails the whole transaction instead of disappearing.
   */
  private async withDependentViews(
    closure: DependencyNode[],
    dropReplaced: boolean,
    change: () => Promise<void>,
  ): Promise<void> {
    const outside = closure.filter((node) => !node.replaced);
    for (const node of [...closure].reverse()) {
      if (dropReplaced || !node.replaced) await this.execute(dropStatement(node));
    }
    await change();
    await this.withEmptySearchPath(async () => {
      for (const node of outside) {
        try {
          if (node.definition === null) throw new Error('no definition recorded');
          await this.execute(node.definition);
          for (const statement of node.aftercare) await this.execute(statement);
        } catch (error) {
          throw new Error(
            `view ${relationName(node.relation)} reads relations this change replaces and could not be ` +
              `re-created: ${error instanceof Error ? error.message : String(error)}`,
            { cause: error },
          );
        }
      }
    });
  }

  /** `replaced` and every view reading them, transitively, shallowest first. */
  private async dependencyClosure(replaced: CatalogRelation[]): Promise<DependencyNode[]> {
    if (replaced.length === 0) return [];
    const rows = await this.withEmptySearchPath(() =>
      this.execute(DEPENDENCY_CLOSURE_SQL, [replaced.map((relation) => relation.oid)]),
    );
    return rows.map((row) => {
      const relation = {
        database: this.database,
        schema: String(row['schema']),
        identifier: String(row['identifier']),
      };
      const pgKind = pgKindOf(row['relkind']);
      const select = row['definition'];
      const view = typeof select === 'string';
      const owner = row['foreign_owner'];
      const comment = row['comment'];
      return {
        oid: String(row['oid']),
        relation,
        pgKind,
        depth: Number(row['depth']),
        replaced: row['replaced'] === true,
        definition: view
          ? createViewStatement(relation, pgKind, select, row['reloptions'], row['populated'] === true)
          : null,
        aftercare: view
          ? [
              ...(typeof owner === 'string'
                ? [
                    `ALTER ${viewKeyword(pgKind)} ${quoteRelation(relation)} OWNER TO ${quoteIdentifier(owner)}`,
                  ]
                : []),
              ...stringArray(row['indexes']),
              ...stringArray(row['grants']),
              ...(typeof comment === 'string'
                ? [`COMMENT ON ${viewKeyword(pgKind)} ${quoteRelation(relation)} IS ${quoteLiteral(comment)}`]
                : []),
            ]
          : [],
      };
    });
  }

  /** Each view's CREATE statement as it stands now, keyed by oid. */
  private async viewDefinitions(relations: CatalogRelation[]): Promise<Map<string, string>> {
    const views = relations.filter((relation) => kindOf(relation.pgKind) === 'view');
    if (views.length === 0) return new Map();
    const rows = await this.withEmptySearchPath(() =>
      this.execute(
        'SELECT c.oid::text AS oid, pg_get_viewdef(c.oid) AS definition, c.reloptions, ' +
          'c.relispopulated AS populated FROM pg_class c WHERE c.oid = ANY($1::oid[])',
        [views.map((view) => view.oid)],
      ),
    );
    const byOid = new Map(views.map((view) => [view.oid, view]));
    const definitions = new Map<string, string>();
    for (const row of rows) {
      const view = byOid.get(String(row['oid']));
      if (view === undefined) continue;
      definitions.set(
        view.oid,
        createViewStatement(
          view.relation,
          view.pgKind,
          String(row['definition']),
          row['reloptions'],
          row['populated'] === true,
        ),
      );
    }
    return definitions;
  }

  /**
   * `to` becomes a table shaped like `from` (LIKE ... INCLUDING ALL: defaults, constraints, indexes)
   * holding its rows. Generated columns are computed again rather than inserted.
   */
  private async copyTable(from: Relation, to: Relation): Promise<void> {
    this.assertLocal(from);
    this.assertLocal(to);
    await this.execute(`CREATE TABLE ${quoteRelation(to)} (LIKE ${quoteRelation(from)} INCLUDING ALL)`);
    const columns = await this.execute(COLUMNS_SQL, [to.schema, to.identifier]);
    const insertable = columns
      .filter((c) => c['generated'] !== true)
      .map((c) => quoteIdentifier(String(c['name'])));
    await this.execute(
      `INSERT INTO ${quoteRelation(to)} (${insertable.join(', ')}) OVERRIDING SYSTEM VALUE ` +
        `SELECT ${insertable.join(', ')} FROM ${quoteRelation(from)}`,
    );
    // A serial column's default calls the sequence owned by `from`: keeping it would tie the copy to
    // that sequence, and PostgreSQL would then refuse to drop `from` (restore and publish drop prod).
    for (const column of columns) {
      if (column['sequence_default'] === true)
        await this.execute(
          `ALTER TABLE ${quoteRelation(to)} ALTER COLUMN ${quoteIdentifier(String(column['name']))} DROP DEFAULT`,
        );
    }
  }

  /** Refuses a swap whose staging views read prod: after the swap they would read the backup instead. */
  private refuseStagingReadingProd(closure: DependencyNode[], swaps: LocationSwap[]): void {
    const staging = new Set(swaps.map((swap) => swap.staging.schema));
    const reader = closure.find((node) => !node.replaced && staging.has(node.relation.schema));
    if (reader)
      throw new Error(
        `view ${relationName(reader.relation)} reads the prod schema it is about to replace ` +
          '(built with --defer?): build staging without references to prod before swapping',
      );
  }

  /**
   * The swap of this deploy id committed before (an activity retried after a lost reply): the same
   * backup again, or an error when the schemas do not look swapped.
   */
  private async alreadySwapped(
    location: Location,
    swapped: NonNullable<ManifestHeader['swapped']>,
    existing: Set<string>,
  ): Promise<BackupRef> {
    const header = await this.manifestHeaderIn(location);
    const recorded = header?.swapped ?? [];
    const same =
      recorded.length === swapped.length &&
      swapped.every(
        (swap, index) =>
          recorded[index]?.prod === swap.prod &&
          recorded[index]?.staging === swap.staging &&
          recorded[index]?.backup === swap.backup &&
          !existing.has(swap.staging) &&
          existing.has(swap.prod),
      );
    if (header === undefined || !same)
      throw new Error(`backup schema "${location.schema}" already exists: drop it or use another deploy id`);
    return refOf(header, location, await this.readManifestRows(location));
  }

  private async writeManifest(
    location: Location,
    header: ManifestHeader,
    rows: ManifestRow[],
  ): Promise<void> {
    for (const statement of manifestStatements(this.dialect, location, header, rows))
      await this.execute(statement);
  }

  private async readManifestRows(location: Location): Promise<ManifestRow[]> {
    return parseManifestRows(await this.execute(`SELECT * FROM ${manifestTable(location)}`), location);
  }

  /** The header of the manifest in `location`, if there is one of ours. */
  private async manifestHeaderIn(location: Location): Promise<ManifestHeader | undefined> {
    const [manifest] = await this.execute(
      'SELECT obj_description(c.oid, $3) AS header FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace ' +
        'WHERE n.nspname = $1 AND c.relname = $2',
      [location.schema, BACKUP_MANIFEST_TABLE, 'pg_class'],
    );
    return parseHeader(manifest?.['header']);
  }

  /** The managed relations among `relations` that exist, by `key`. */
  private async lookup(relations: Relation[]): Promise<Map<string, CatalogRelation>> {
    for (const relation of relations) this.assertLocal(relation);
    if (relations.length === 0) return new Map();
    const rows = await this.execute(
      'SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS identifier, c.relkind::text AS relkind ' +
        'FROM unnest($1::text[], $2::text[]) AS wanted(schema, identifier) ' +
        'JOIN pg_namespace n ON n.nspname = wanted.schema ' +
        'JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = wanted.identifier ' +
        'WHERE c.relkind::text = ANY($3::text[])',
      [relations.map((r) => r.schema), relations.map((r) => r.identifier), [...MANAGED_KINDS]],
    );
    return new Map(
      rows.map((row) => {
        const found = this.catalogRelation(row);
        return [key(found.relation), found];
      }),
    );
  }

  /** Managed relations in `schemas`, sorted by schema and name. */
  private async relationsIn(schemas: string[]): Promise<CatalogRelation[]> {
    if (schemas.length === 0) return [];
    const rows = await this.execute(
      'SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS identifier, c.relkind::text AS relkind ' +
        'FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace ' +
        'WHERE n.nspname = ANY($1::text[]) AND c.relkind::text = ANY($2::text[]) ORDER BY n.nspname, c.relname',
      [schemas, [...MANAGED_KINDS]],
    );
    return rows.map((row) => this.catalogRelation(row));
  }

  private async existingSchemas(names: string[]): Promise<Set<string>> {
    const rows = await this.execute('SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])', [
      names,
    ]);
    return new Set(rows.map((row) => String(row['nspname'])));
  }

  private catalogRelation(row: Row): CatalogRelation {
    return {
      oid: String(row['oid']),
      relation: {
        database: this.database,
        schema: String(row['schema']),
        identifier: String(row['identifier']),
      },
      pgKind: pgKindOf(row['relkind']),
    };
  }

  private backupLocation(deployId: string, index: number): Location {
    const schema = backupLocationName(deployId, index);
    if (Buffer.byteLength(schema) > MAX_IDENTIFIER_BYTES)
      throw new Error(
        `backup schema name "${schema}" is longer than PostgreSQL's 63 bytes: use a shorter deploy id`,
      );
    return { database: this.database, schema };
  }

  /** One connection reaches one database; a name from elsewhere would be resolved here by mistake. */
  private assertLocal(location: Location): void {
    if (location.database !== this.database)
      throw new UnsupportedOperation(
        `PostgreSQL cannot reach database "${location.database}" from a connection to "${this.database}": ` +
          'deploy each database with a dbt target whose dbname names it',
      );
  }
}

/** Catalog queries read better over several lines and log better as one; they hold no multi-space literals. */
function oneLine(sql: string): string {
  return sql.replace(/\s+/g, ' ');
}

/**
 * Walks pg_depend from the given relations to the views whose `_RETURN` rule reads them, transitively.
 * UNION keeps one row per (view, depth); the depth bound stops a (pathological) cycle of views.
 * Definitions, owners (when not us: re-creating makes us the owner), grants, comments and a
 * materialized view's indexes are read in the same pass.
 */
const DEPENDENCY_CLOSURE_SQL = oneLine(`WITH RECURSIVE walk(oid, depth) AS (
  SELECT root, 0 FROM unnest($1::oid[]) AS root
  UNION
  SELECT rule.ev_class, walk.depth + 1 FROM walk
  JOIN pg_depend dep ON dep.refclassid = 'pg_class'::regclass AND dep.refobjid = walk.oid
    AND dep.classid = 'pg_rewrite'::regclass AND dep.deptype = 'n'
  JOIN pg_rewrite rule ON rule.oid = dep.objid AND rule.rulename = '_RETURN'
  WHERE rule.ev_class <> walk.oid AND walk.depth < 64
), deepest AS (SELECT oid, max(depth) AS depth FROM walk GROUP BY oid)
SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS identifier, c.relkind::text AS relkind,
  deepest.depth, c.oid = ANY($1::oid[]) AS replaced,
  CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS definition,
  c.reloptions, c.relispopulated AS populated, obj_description(c.oid, 'pg_class') AS comment,
  CASE WHEN c.relowner <> me.oid THEN pg_get_userbyid(c.relowner) END AS foreign_owner,
  ARRAY(SELECT format('GRANT %s ON TABLE %I.%I TO %s%s', acl.privilege_type, n.nspname, c.relname,
      CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(acl.grantee)) END,
      CASE WHEN acl.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
    FROM aclexplode(c.relacl) AS acl WHERE acl.grantee <> me.oid
  ) AS grants,
  ARRAY(SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = c.oid ORDER BY i.indexrelid)
    AS indexes
FROM deepest JOIN pg_class c ON c.oid = deepest.oid JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN (SELECT oid FROM pg_roles WHERE rolname = current_user) AS me
ORDER BY deepest.depth, n.nspname, c.relname`);

/** The columns of a table, which of them are generated, and which default to a sequence. */
const COLUMNS_SQL = oneLine(`SELECT a.attname AS name, a.attgenerated <> '' AS generated,
  EXISTS (SELECT 1 FROM pg_attrdef def JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass
      AND dep.objid = def.oid AND dep.refclassid = 'pg_class'::regclass
    JOIN pg_class seq ON seq.oid = dep.refobjid AND seq.relkind = 'S'
    WHERE def.adrelid = a.attrelid AND def.adnum = a.attnum) AS sequence_default
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`);

/**
 * What a swap's manifest records for one prod schema: each relation it held, now in the backup schema
 * (tables restorable by copy, views by their recorded definition), and each relation only the new prod
 * has, as absent, so a restore drops it.
 */
function swapManifestRows(
  swap: { prod: string; staging: string; backup: string },
  closure: DependencyNode[],
  stagingRelations: CatalogRelation[],
): ManifestRow[] {
  const rows: ManifestRow[] = [];
  const before = new Set<string>();
  for (const node of closure) {
    if (!node.replaced || node.relation.schema !== swap.prod) continue;
    before.add(node.relation.identifier);
    const copy = { ...node.relation, schema: swap.backup };
    rows.push(
      kindOf(node.pgKind) === 'table'
        ? { entry: { prod: node.relation, kind: 'table', copy }, viewSql: null }
        : { entry: { prod: node.relation, kind: 'view' }, viewSql: node.definition },
    );
  }
  for (const { relation } of stagingRelations) {
    if (relation.schema !== swap.staging || before.has(relation.identifier)) continue;
    rows.push({ entry: { prod: { ...relation, schema: swap.prod }, kind: 'absent' }, viewSql: null });
  }
  return rows;
}

function kindOf(pgKind: PgKind): 'table' | 'view' {
  return pgKind === 'r' || pgKind === 'p' ? 'table' : 'view';
}

function pgKindOf(value: unknown): PgKind {
  const found = MANAGED_KINDS.find((kind) => kind === value);
  if (found === undefined) throw new Error(`unexpected relation kind ${String(value)}`);
  return found;
}

function viewKeyword(pgKind: PgKind): string {
  return pgKind === 'm' ? 'MATERIALIZED VIEW' : 'VIEW';
}

function dropStatement(node: CatalogRelation): string {
  return `DROP ${kindOf(node.pgKind) === 'table' ? 'TABLE' : viewKeyword(node.pgKind)} ${quoteRelation(node.relation)}`;
}

/** A view as it stands, options (security_barrier, check_option) included; the SELECT comes qualified. */
function createViewStatement(
  relation: Relation,
  pgKind: PgKind,
  select: string,
  reloptions: unknown,
  populated: boolean,
): string {
  const options = stringArray(reloptions);
  const withOptions = options.length > 0 ? ` WITH (${options.join(', ')})` : '';
  const body = select.trim().replace(/;$/, '');
  const data = pgKind === 'm' && !populated ? ' WITH NO DATA' : '';
  return `CREATE ${viewKeyword(pgKind)} ${quoteRelation(relation)}${withOptions} AS ${body}${data}`;
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function manifestTable(location: Location): string {
  return manifestTableIn(postgresDialect, location);
}

function key(relation: Relation): string {
  return `${relation.database}\u0000${relation.schema}\u0000${relation.identifier}`;
}
