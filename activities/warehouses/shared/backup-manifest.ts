/**
 * The backup manifest every engine keeps beside a backup's copies: a table `_dbt_deploy_backup` with one
 * row per relation, and the backup-wide header (deploy id, env, operation, time, swapped schemas) as
 * the table's comment, so an empty backup is still listed. One format for every engine; the reader
 * also accepts the older DuckDB manifests (no comment, no `position` column) and the older location
 * names (no hash suffix), so backups taken before this format can still be listed and restored.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { BackupEntry, BackupRef, Location } from '../../../workflows/types.js';
import type { Dialect } from './dialect.js';

/** Backup locations are named after the deploy id so a person can tell them apart. */
export const BACKUP_LOCATION_PREFIX = 'dbt_deploy_backup__';
export const BACKUP_MANIFEST_TABLE = '_dbt_deploy_backup';

/** PostgreSQL's identifier limit, the shortest of the engines. */
const MAX_NAME_BYTES = 63;
const HASH_CHARS = 10;

/**
 * `dbt_deploy_backup__<readable deploy id>_<hash>`, `__<n>` added for a swap's second and later
 * schemas. The readable part is lossy (lower case, other characters as `_`, cut to fit 63 bytes), so
 * two deploy ids could read alike: the hash of the exact deploy id keeps their locations apart.
 */
export function backupLocationName(deployId: string, index = 0): string {
  const hash = createHash('sha256').update(deployId).digest('hex').slice(0, HASH_CHARS);
  const suffix = index === 0 ? '' : `__${index}`;
  const room = MAX_NAME_BYTES - BACKUP_LOCATION_PREFIX.length - 1 - HASH_CHARS - '__99'.length;
  const readable = deployId
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, room);
  return `${BACKUP_LOCATION_PREFIX}${readable}_${hash}${suffix}`;
}

/** The backup-wide part of a manifest, kept as the manifest table's comment. */
export const ManifestHeader = z.object({
  deployId: z.string(),
  env: z.string(),
  operation: z.enum(['deploy', 'mirror', 'rollback']),
  createdAt: z.string(),
  swapped: z
    .array(
      z.object({
        prod: z.string(),
        staging: z.string(),
        backup: z.string(),
        unit: z.enum(['schema', 'database']).optional(),
      }),
    )
    .optional(),
});
export type ManifestHeader = z.infer<typeof ManifestHeader>;

export interface ManifestRow {
  entry: BackupEntry;
  /** For views: the statement that re-creates the view as it was. */
  viewSql: string | null;
}

export interface BackupLabelLike {
  env: string;
  operation?: ManifestHeader['operation'];
  createdAt: string;
}

export function headerOf(deployId: string, label: BackupLabelLike): ManifestHeader {
  return { deployId, env: label.env, operation: label.operation ?? 'deploy', createdAt: label.createdAt };
}

export function parseHeader(value: unknown): ManifestHeader | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const parsed = ManifestHeader.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function manifestTable(dialect: Dialect, location: Location): string {
  return dialect.quoteRelation({ ...location, identifier: BACKUP_MANIFEST_TABLE });
}

/** The statements that write a manifest into `location` (which exists and holds no manifest yet). */
export function manifestStatements(
  dialect: Dialect,
  location: Location,
  header: ManifestHeader,
  rows: ManifestRow[],
): string[] {
  const table = manifestTable(dialect, location);
  const text = dialect.textType;
  const statements = [
    `CREATE TABLE ${table} (deploy_id ${text} NOT NULL, env ${text} NOT NULL, operation ${text} NOT NULL, ` +
      `created_at ${text} NOT NULL, prod_database ${text} NOT NULL, prod_schema ${text} NOT NULL, ` +
      `prod_identifier ${text} NOT NULL, kind ${text} NOT NULL, copy_schema ${text}, copy_identifier ${text}, ` +
      `view_sql ${text}, position INTEGER NOT NULL)`,
    `COMMENT ON TABLE ${table} IS ${dialect.quoteLiteral(JSON.stringify(header))}`,
  ];
  if (rows.length === 0) return statements;
  const values = rows.map(({ entry, viewSql }, position) => {
    const required = [header.deployId, header.env, header.operation, header.createdAt]
      .concat([entry.prod.database, entry.prod.schema, entry.prod.identifier, entry.kind])
      .map(dialect.quoteLiteral);
    const optional = [entry.copy?.schema, entry.copy?.identifier, viewSql ?? undefined].map((value) =>
      value === undefined ? 'NULL' : dialect.quoteLiteral(value),
    );
    return `(${[...required, ...optional, String(position)].join(', ')})`;
  });
  statements.push(`INSERT INTO ${table} VALUES ${values.join(', ')}`);
  return statements;
}

type Row = Record<string, unknown>;

/** Rows of `SELECT * FROM <manifest>` in the order they were written; column names in any case. */
export function parseManifestRows(rows: Row[], location: Location): ManifestRow[] {
  const lowered = rows.map(lowerKeys);
  const ordered = lowered.every((row) => row['position'] !== undefined && row['position'] !== null)
    ? [...lowered].sort((a, b) => Number(a['position']) - Number(b['position']))
    : lowered;
  return ordered.map((row) => {
    const prod = {
      database: String(row['prod_database']),
      schema: String(row['prod_schema']),
      identifier: String(row['prod_identifier']),
    };
    const kind = row['kind'] === 'table' || row['kind'] === 'view' ? row['kind'] : 'absent';
    const copyIdentifier = row['copy_identifier'];
    const copy =
      typeof copyIdentifier === 'string'
        ? { database: location.database, schema: String(row['copy_schema']), identifier: copyIdentifier }
        : undefined;
    const viewSql = typeof row['view_sql'] === 'string' ? row['view_sql'] : null;
    return { entry: { prod, kind, ...(copy ? { copy } : {}) }, viewSql };
  });
}

/**
 * The header from the table comment, or, for manifests written before the comment existed, from the
 * columns of the first row (such a manifest with no rows is not a backup anyone can restore).
 */
export function manifestHeader(comment: unknown, rows: Row[]): ManifestHeader | undefined {
  const fromComment = parseHeader(comment);
  if (fromComment) return fromComment;
  const first = rows[0] === undefined ? undefined : lowerKeys(rows[0]);
  if (first === undefined) return undefined;
  const operation = first['operation'];
  return {
    deployId: String(first['deploy_id']),
    env: String(first['env']),
    operation: operation === 'mirror' || operation === 'rollback' ? operation : 'deploy',
    createdAt: String(first['created_at']),
  };
}

export function refOf(header: ManifestHeader, location: Location, rows: ManifestRow[]): BackupRef {
  return {
    deployId: header.deployId,
    env: header.env,
    operation: header.operation,
    createdAt: header.createdAt,
    location,
    entries: rows.map((row) => row.entry),
    ...(header.swapped ? { swapped: header.swapped } : {}),
  };
}

/** Newest first; ties broken by deploy id so the order is stable. */
export function newestFirst(backups: BackupRef[]): BackupRef[] {
  return [...backups].sort(
    (a, b) => b.createdAt.localeCompare(a.createdAt) || a.deployId.localeCompare(b.deployId),
  );
}

/**
 * Whether a backup step may replace what stands at its location: only a backup of the same deploy
 * (a retried step whose first attempt committed). Anything else there belongs to someone else.
 */
export function ownedBy(existing: ManifestHeader | undefined, deployId: string): boolean {
  return existing?.deployId === deployId;
}

export class BackupLocationTaken extends Error {
  override readonly name = 'BackupLocationTaken';
  constructor(location: Location, holder: ManifestHeader | undefined) {
    super(
      `backup location ${location.database}.${location.schema} already exists and holds ` +
        (holder ? `the backup of deploy ${holder.deployId}` : 'no manifest of ours') +
        ': it is left untouched; drop it by hand or deploy with another id',
    );
  }
}

function lowerKeys(row: Row): Row {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k.toLowerCase(), v]));
}
