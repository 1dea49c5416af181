/**
 * The one interface every warehouse implements. Operations work on locations (schema, dataset,
 * database) and relations; capabilities say how (zero-copy or copy, atomic or one by one).
 */
import type { BackupOperation, BackupRef, Fingerprint, Location, Relation } from '../../workflows/types.js';
import type { Capabilities, Engine } from './capabilities.js';
import { quoteIdentifier } from './shared/dialect.js';
import type { Dialect } from './shared/dialect.js';

export type RelationKind = 'table' | 'view' | 'absent';

export interface CopyRequest {
  from: Relation;
  to: Relation;
}

/** A view to (re)create from the SELECT dbt compiled for the location it lands in. */
export interface ViewRequest {
  to: Relation;
  sql: string;
}

/** Everything one cut-over changes; an adapter with transactional DDL applies it all or nothing. */
export interface RelationChange {
  /** Each `to` becomes a table holding the rows of `from` (whatever `to` was before). */
  tables: CopyRequest[];
  /** Created after the tables, in the order given, so a view may read a table of the same change. */
  views: ViewRequest[];
  /** Dropped when present (a model removed from the project, or absent in the source of a sync). */
  drop: Relation[];
}

/** A prod location (schema, or a whole database) and the staging location that takes its place. */
export interface LocationSwap {
  prod: Location;
  staging: Location;
}

/** Who a clone made for a deploy's build belongs to (one deploy per project and environment runs at a time). */
export interface StagingOwner {
  project: string;
  env: string;
  deployId: string;
}

/** What `cloneBuildDatabase` did. */
export interface DatabaseClone {
  prod: string;
  staging: string;
  /** `cloned` now, `kept` (a retried step found its own clone), or `replaced` an ended deploy's. */
  how: 'cloned' | 'kept' | 'replaced';
}

/** What a backup records about why it exists, so retention and rollback can pick the right one. */
export interface BackupLabel {
  env: string;
  /** Stored in the manifest's `operation` column (absent in older backups: read as `deploy`). */
  operation?: BackupOperation;
  /** When the backup was taken (ISO 8601); retention keeps the newest. */
  createdAt: string;
}

export interface WarehouseAdapter {
  readonly engine: Engine;
  readonly capabilities: Capabilities;
  /** How this engine spells and compares names (Snowflake folds unquoted names to upper case). */
  readonly dialect: Dialect;
  relationKind(relation: Relation): Promise<RelationKind>;
  /**
   * The kinds of many relations at once, where the engine's catalog makes asking one at a time cost
   * more than reading it whole (DuckDB). Absent elsewhere: see `kindsOf`.
   */
  relationKinds?(relations: Relation[]): Promise<(relation: Relation) => RelationKind>;
  /** Tables and views in one location, sorted by name. */
  listRelations(location: Location): Promise<Array<{ relation: Relation; kind: 'table' | 'view' }>>;
  /**
   * Keeps the current state of `relations` (tables copied, view definitions recorded, absent ones
   * noted) in the location `backupLocationName(deployId)`, with a manifest table describing it. Never
   * replaces a location that holds another deploy's backup (throws `BackupLocationTaken`).
   */
  backup(deployId: string, relations: Relation[], label: BackupLabel): Promise<BackupRef>;
  /**
   * Puts every relation of the backup back as it was, dropping those that did not exist. The backup
   * itself stays, so restoring twice gives the same prod. Idempotent.
   */
  restore(backup: BackupRef): Promise<void>;
  /** Idempotent: dropping a backup that is gone changes nothing. */
  dropBackup(backup: BackupRef): Promise<void>;
  /** Every backup in the adapter's own database, read back from the manifests, newest first. */
  listBackups(): Promise<BackupRef[]>;
  /** Applies a change; in one transaction when `capabilities.transactionalDdl`. */
  replaceRelations(change: RelationChange): Promise<void>;
  /**
   * blue-green's cut-over when `capabilities.cutOver.kind` is a swap: each staging location takes its
   * prod location's name and the old prod is kept as the backup of `deployId` (zero-copy, by rename),
   * as atomic as `capabilities.cutOver.atomicity` says. Returns the backup, restorable like any.
   * Idempotent for the same deploy id: a swap that committed returns its backup again.
   */
  swapLocations(
    deployId: string,
    swaps: LocationSwap[],
    label: BackupLabel,
    /**
     * Staging's views with the SELECT dbt compiled for prod: an engine whose views keep the database
     * name in their text (Snowflake) re-creates them with it before the swap; others ignore it.
     */
    views?: ViewRequest[],
  ): Promise<BackupRef>;
  /** Undoes `swapLocations` (prod becomes staging again, the old prod prod). Idempotent. */
  unswapLocations(backup: BackupRef): Promise<void>;
  fingerprint(relation: Relation): Promise<Fingerprint>;
  /**
   * The sync before a build, where the engine clones whole databases (Snowflake): when every prod
   * location of `pairs` is in one database and every build location in another under the same schema
   * names, the build database becomes a zero-copy clone of prod's, with prod's grants. Otherwise
   * (staging schemas in prod's database) it returns undefined and the sync copies table by table.
   * Idempotent for the same deploy; never drops a database another project or environment holds,
   * nor one it did not make. `wholeDatabase` (blue-green) also refuses a prod database holding
   * schemas the project does not build: a database swap would take them out of prod.
   */
  cloneBuildDatabase?(
    pairs: LocationSwap[],
    owner: StagingOwner,
    options: { wholeDatabase: boolean },
  ): Promise<DatabaseClone | undefined>;
  /** Runs one statement that only reads (the diff against prod, audit assertions) and returns its rows. */
  query(sql: string): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

/** Thrown when an engine cannot do what was asked; names what works instead. */
export class UnsupportedOperation extends Error {
  override readonly name = 'UnsupportedOperation';
}

export function relationName(relation: Relation): string {
  return `${relation.database}.${relation.schema}.${relation.identifier}`;
}

export type { StatementLog } from './shared/statement-log.js';
export { quoteIdentifier, quoteLiteral } from './shared/dialect.js';
export {
  BACKUP_LOCATION_PREFIX,
  BACKUP_MANIFEST_TABLE,
  backupLocationName,
} from './shared/backup-manifest.js';

/** `"database"."schema"."identifier"` as written (DuckDB, PostgreSQL); engines that fold use their dialect. */
export function quoteRelation(relation: Relation): string {
  return [relation.database, relation.schema, relation.identifier].map(quoteIdentifier).join('.');
}

/** The kinds of `relations` as of now, read at once where the engine can, else one at a time. */
export async function kindsOf(
  w: WarehouseAdapter,
  relations: Relation[],
): Promise<(relation: Relation) => RelationKind> {
  if (w.relationKinds) return w.relationKinds(relations);
  const kinds = new Map<string, RelationKind>();
  for (const relation of relations)
    kinds.set(w.dialect.relationKey(relation), await w.relationKind(relation));
  return (relation) => kinds.get(w.dialect.relationKey(relation)) ?? 'absent';
}
