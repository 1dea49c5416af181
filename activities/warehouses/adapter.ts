/**
 * The one interface every warehouse implements. Operations work on locations (schema, dataset,
 * database) and relations; capabilities say how (zero-copy or copy, atomic or one by one).
 */
import type { BackupRef, Fingerprint, Relation } from '../../workflows/types.js';
import type { Capabilities, Engine } from './capabilities.js';

export type RelationKind = 'table' | 'view' | 'absent';

export interface CopyRequest {
  from: Relation;
  to: Relation;
}

export interface WarehouseAdapter {
  readonly engine: Engine;
  readonly capabilities: Capabilities;
  relationKind(relation: Relation): Promise<RelationKind>;
  /** Keeps the current state of `relations` (tables copied, view definitions recorded) under `deployId`. */
  backup(deployId: string, relations: Relation[]): Promise<BackupRef>;
  /** Puts every relation of the backup back as it was, dropping those that did not exist. Idempotent. */
  restore(backup: BackupRef): Promise<void>;
  dropBackup(backup: BackupRef): Promise<void>;
  /** Replaces each `to` with the rows of `from`; all together when the engine has transactional DDL. */
  publishTables(copies: CopyRequest[]): Promise<void>;
  fingerprint(relation: Relation): Promise<Fingerprint>;
  close(): Promise<void>;
}

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

export function backupLocationName(deployId: string): string {
  return `${BACKUP_LOCATION_PREFIX}${deployId.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
}
