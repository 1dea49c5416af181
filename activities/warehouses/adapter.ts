/**
 * The one interface every warehouse implements. Operations work on locations (schema, dataset,
 * database) and relations; capabilities say how (zero-copy or copy, atomic or one by one).
 */
import type { BackupOperation, BackupRef, Fingerprint, Location, Relation } from '../../workflows/types.js';
import type { Capabilities, Engine } from './capabilities.js';

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

/** One schema of prod and the staging schema that replaces it; both in the warehouse's database. */
export interface SchemaSwap {
  prod: string;
  staging: string;
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
  relationKind(relation: Relation): Promise<RelationKind>;
  /** Tables and views in one location, sorted by name. */
  listRelations(location: Location): Promise<Array<{ relation: Relation; kind: 'table' | 'view' }>>;
  /**
   * Keeps the current state of `relations` (tables copied, view definitions recorded, absent ones
   * noted) in the location `backupLocationName(deployId)`, with a manifest table describing it.
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
   * Only when `capabilities.atomicSwap === 'schema'`: in one transaction each prod schema becomes the
   * backup of `deployId` (zero-copy, by rename) and each staging schema becomes prod; views elsewhere
   * that read prod are re-created so they read the new prod. Returns the backup, restorable like any.
   */
  swapSchemas(deployId: string, swaps: SchemaSwap[], label: BackupLabel): Promise<BackupRef>;
  /** Undoes `swapSchemas` by renaming back (prod becomes staging again). Idempotent. */
  unswapSchemas(backup: BackupRef): Promise<void>;
  fingerprint(relation: Relation): Promise<Fingerprint>;
  close(): Promise<void>;
}

/** Receives every statement an adapter sends, already tagged with the engine and a sequence number. */
export type StatementLog = (statement: string) => void;

/** Thrown when an engine cannot do what was asked; names what works instead. */
export class UnsupportedOperation extends Error {
  override readonly name = 'UnsupportedOperation';
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteRelation(relation: Relation): string {
  return [relation.database, relation.schema, relation.identifier].map(quoteIdentifier).join('.');
}

export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export function relationName(relation: Relation): string {
  return `${relation.database}.${relation.schema}.${relation.identifier}`;
}

/** Backup locations are named by deploy id so retention and rollback can find them. */
export const BACKUP_LOCATION_PREFIX = 'dbt_deploy_backup__';
export const BACKUP_MANIFEST_TABLE = '_dbt_deploy_backup';

/**
 * `dbt_deploy_backup__<deployId>`; a swap that backs up several prod schemas adds `__<n>` for the
 * second and later ones. Stays under PostgreSQL's 63-byte identifier limit for generated deploy ids.
 */
export function backupLocationName(deployId: string, index = 0): string {
  const base = `${BACKUP_LOCATION_PREFIX}${deployId.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
  return index === 0 ? base : `${base}__${index}`;
}

/** The deploy id a backup location was named after, or undefined for other schemas. */
export function deployIdOfLocation(schema: string): string | undefined {
  if (!schema.startsWith(BACKUP_LOCATION_PREFIX) || /__\d+$/.test(schema)) return undefined;
  return schema.slice(BACKUP_LOCATION_PREFIX.length);
}
