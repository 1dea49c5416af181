/**
 * Every statement and job the BigQuery adapter sends, built as data before anything runs, so unit
 * tests compare them with Google's documentation and `plan` can print them. No I/O here.
 *
 * BigQuery has no transactional DDL and no dataset rename: each step is atomic for one table at
 * most. Where the emulator (bqemulator 1.4.0) does something differently, the plan for `emulator`
 * says so and why; every difference is asserted in test/unit/bigquery-plans.test.ts.
 */
import type { Location, Relation } from '../../../workflows/types.js';
import { BACKUP_MANIFEST_TABLE, type ManifestHeader, type ManifestRow } from '../shared/backup-manifest.js';
import { bigQueryDialect } from './dialect.js';

/** `bigquery` for Google's service; `emulator` for bqemulator, which parses and copies differently. */
export type BigQueryTarget = 'bigquery' | 'emulator';

export interface TableRef {
  projectId: string;
  datasetId: string;
  tableId: string;
}

/** One job: a query (DDL, DML or SELECT) or a copy job (copy, snapshot, restore, clone). */
export type BigQueryJob =
  | { kind: 'query'; sql: string }
  | {
      kind: 'copy';
      operationType: 'COPY' | 'SNAPSHOT' | 'RESTORE' | 'CLONE';
      source: TableRef;
      destination: TableRef;
      writeDisposition: 'WRITE_TRUNCATE' | 'WRITE_EMPTY';
      createDisposition: 'CREATE_IF_NEEDED';
    };

/** How one table is published: what readers see while it happens is part of the choice. */
export type PublishMethod =
  /** A copy job with WRITE_TRUNCATE: atomic for the table, a full copy (free within a region). */
  | 'copy'
  /** DROP then CREATE TABLE … CLONE: zero-copy, but the table is missing between the two jobs. */
  | 'clone';

/**
 * Tables below this size are published by copy job (atomic), larger ones by clone (zero-copy). A copy
 * job costs no query bytes within one region but stores a full copy and takes longer the larger the
 * table (bench/bigquery.ts measures both); above 10 GiB the stored copy and the wait outweigh a brief
 * window in which readers of that one table find it missing.
 */
export const CLONE_ABOVE_BYTES = 10 * 1024 ** 3;

/** How long a backup snapshot lives before BigQuery drops it by itself (retention normally drops it sooner). */
export const SNAPSHOT_EXPIRATION_DAYS = 90;

export function tableRef(relation: Relation): TableRef {
  return { projectId: relation.database, datasetId: relation.schema, tableId: relation.identifier };
}

/** Backquoted `project`.`dataset`.`table`: nothing from a manifest goes into SQL unquoted. */
export const quoteTable = bigQueryDialect.quoteRelation;
export const quoteDataset = bigQueryDialect.quoteLocation;
export const quoteString = bigQueryDialect.quoteLiteral;

const query = (sql: string): BigQueryJob => ({ kind: 'query', sql });

export function chooseMethod(sizeBytes: number, cloneAboveBytes = CLONE_ABOVE_BYTES): PublishMethod {
  return sizeBytes >= cloneAboveBytes ? 'clone' : 'copy';
}

/** What is at the destination before a table is published there. */
export interface Destination {
  kind: 'table' | 'view' | 'absent';
  /** The destination's columns equal the source's (only asked when both are tables). */
  sameSchema: boolean;
  /** The destination is partitioned and clustered as the source is (only asked when both are tables). */
  sameLayout: boolean;
}

/**
 * The part of a table's metadata (tables.get) that a publish or restore keeps: the table's own
 * description and labels, and the partitioning and clustering that decide whether one table can
 * overwrite another. Column descriptions and policy tags live in the schema and travel with it.
 * https://cloud.google.com/bigquery/docs/reference/rest/v2/tables#Table
 */
export interface TableProperties {
  description?: string | null;
  labels?: Record<string, string> | null;
  timePartitioning?: { type?: string; field?: string } | null;
  rangePartitioning?: {
    field?: string;
    range?: { start?: string | number; end?: string | number; interval?: string | number };
  } | null;
  clustering?: { fields?: string[] } | null;
}

/**
 * Partitioning and clustering in one comparable value, compared as dbt-bigquery's `is_replaceable`
 * compares them (partition column and granularity, or range; clustering columns in order).
 */
function layoutKey(table: TableProperties): string {
  const time = table.timePartitioning;
  const range = table.rangePartitioning;
  const partitioning = time
    ? `time:${time.type ?? 'DAY'}:${(time.field ?? '_PARTITIONTIME').toLowerCase()}`
    : range
      ? `range:${(range.field ?? '').toLowerCase()}:${range.range?.start}:${range.range?.end}:${range.range?.interval}`
      : 'none';
  const clustering = (table.clustering?.fields ?? []).map((f) => f.toLowerCase()).join(',');
  return `${partitioning}|${clustering}`;
}

export function sameLayout(a: TableProperties, b: TableProperties): boolean {
  return layoutKey(a) === layoutKey(b);
}

/** A tables.patch body: the fields set, and `null` for what is removed. */
export interface PropertiesPatch {
  description?: string | null;
  labels?: Record<string, string | null>;
}

/**
 * Makes a published (or restored) table's description and labels those of `source`: a copy job onto
 * an existing table keeps the destination's own, and a new table from a copy job or a clone is not
 * certain to get the source's, so they are set explicitly after every publish and restore, as dbt's
 * `CREATE OR REPLACE TABLE … OPTIONS (description, labels)` would have set them.
 * https://cloud.google.com/bigquery/docs/reference/rest/v2/tables/patch (only the fields sent change);
 * https://cloud.google.com/bigquery/docs/deleting-labels#deleting_table_labels (in tables.patch a
 * label whose value is null is deleted; the others are added or kept).
 * The emulator replaces the whole label map on a patch and fails with HTTP 500 on a null value, so
 * its patch sends exactly the source's labels. `before` is the destination before the publish
 * (undefined when nothing stood there): what it had beyond the source is removed. Undefined when
 * there is nothing to set or remove.
 */
export function propertiesPatch(
  source: TableProperties,
  before: TableProperties | undefined,
  target: BigQueryTarget,
): PropertiesPatch | undefined {
  const labels = source.labels ?? {};
  const stale = Object.keys(before?.labels ?? {}).filter((key) => !(key in labels));
  const description = source.description ?? null;
  const patch: PropertiesPatch = {};
  if (description !== null || (before?.description ?? null) !== null) patch.description = description;
  if (Object.keys(labels).length > 0 || stale.length > 0) {
    patch.labels =
      target === 'emulator'
        ? { ...labels }
        : { ...Object.fromEntries(stale.map((key) => [key, null])), ...labels };
  }
  return Object.keys(patch).length === 0 ? undefined : patch;
}

/** Puts the rows of `from` into the table `to`, by the chosen method. */
export function publishTableJobs(
  from: Relation,
  to: Relation,
  destination: Destination,
  method: PublishMethod,
  target: BigQueryTarget,
): BigQueryJob[] {
  const jobs: BigQueryJob[] = [];
  // A view cannot be overwritten by a table; a model that changed from view to table loses it first.
  if (destination.kind === 'view') jobs.push(query(`DROP VIEW IF EXISTS ${quoteTable(to)}`));
  if (method === 'clone') {
    // https://cloud.google.com/bigquery/docs/table-clones-create: CREATE OR REPLACE is not allowed
    // with CLONE, so an existing table is dropped first.
    if (destination.kind === 'table') jobs.push(query(`DROP TABLE IF EXISTS ${quoteTable(to)}`));
    jobs.push(query(`CREATE TABLE ${quoteTable(to)} CLONE ${quoteTable(from)}`));
    return jobs;
  }
  if (mustDropBeforeCopy(destination, target)) jobs.push(query(`DROP TABLE IF EXISTS ${quoteTable(to)}`));
  // https://cloud.google.com/bigquery/docs/managing-tables#copy-table: writeDisposition WRITE_TRUNCATE
  // overwrites the destination's data and schema atomically when the job succeeds. The schema carries
  // the column descriptions and policy tags; WRITE_TRUNCATE_DATA would keep the destination's instead
  // (https://cloud.google.com/bigquery/docs/reference/auditlogs/rest/Shared.Types/BigQueryAuditMetadata.WriteDisposition).
  jobs.push(copyJob('COPY', from, to));
  return jobs;
}

/**
 * An existing table that a copy job cannot overwrite as the source is. Partitioning: a copy job onto a
 * table partitioned otherwise fails, and onto an unpartitioned one leaves it unpartitioned
 * (https://cloud.google.com/bigquery/docs/managing-partitioned-tables, "Copy partitioned tables"), so a
 * table whose partitioning or clustering changed is dropped first and created by the copy, as
 * dbt-bigquery drops a table that `is_replaceable` refuses; that one table is missing for the moment
 * between the two jobs. The emulator's WRITE_TRUNCATE deletes and inserts, keeping the old schema (and
 * fails with HTTP 500 on a different one), so there a changed schema is dropped first too.
 */
function mustDropBeforeCopy(destination: Destination, target: BigQueryTarget): boolean {
  if (destination.kind !== 'table') return false;
  return !destination.sameLayout || (target === 'emulator' && !destination.sameSchema);
}

/** A view created (or replaced) from the SELECT dbt compiled for where it lands. */
export function viewJobs(to: Relation, sql: string, current: 'table' | 'view' | 'absent'): BigQueryJob[] {
  // https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language#create_view_statement
  return [
    ...(current === 'table' ? [query(`DROP TABLE IF EXISTS ${quoteTable(to)}`)] : []),
    query(`CREATE OR REPLACE VIEW ${quoteTable(to)} AS ${sql}`),
  ];
}

export function dropJobs(relation: Relation, kind: 'table' | 'view' | 'absent'): BigQueryJob[] {
  // https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language#drop_table_statement
  if (kind === 'table') return [query(`DROP TABLE IF EXISTS ${quoteTable(relation)}`)];
  if (kind === 'view') return [query(`DROP VIEW IF EXISTS ${quoteTable(relation)}`)];
  return [];
}

/**
 * A read-only, zero-copy snapshot of a prod table that BigQuery drops by itself at `expiresAt`.
 * https://cloud.google.com/bigquery/docs/table-snapshots-create#create_a_table_snapshot
 */
export function snapshotJobs(
  prod: Relation,
  snapshot: Relation,
  expiresAt: string,
  target: BigQueryTarget,
): BigQueryJob[] {
  const create = `CREATE SNAPSHOT TABLE ${quoteTable(snapshot)} CLONE ${quoteTable(prod)}`;
  // The emulator does not parse OPTIONS on a snapshot (and ignores expiration anyway).
  if (target === 'emulator') return [query(create)];
  return [query(`${create} OPTIONS (expiration_timestamp = TIMESTAMP ${quoteString(expiresAt)})`)];
}

/**
 * Puts a prod table back from its snapshot. https://cloud.google.com/bigquery/docs/table-snapshots-restore:
 * a copy job with operationType RESTORE; WRITE_TRUNCATE overwrites an existing table.
 */
export function restoreTableJobs(
  snapshot: Relation,
  prod: Relation,
  destination: Destination,
  target: BigQueryTarget,
): BigQueryJob[] {
  const jobs: BigQueryJob[] = [];
  if (destination.kind === 'view') jobs.push(query(`DROP VIEW IF EXISTS ${quoteTable(prod)}`));
  // As for a copy: a table partitioned or clustered otherwise (and on the emulator, one with other
  // columns) is dropped first, so the restored table has the snapshot's layout and schema.
  if (mustDropBeforeCopy(destination, target)) jobs.push(query(`DROP TABLE IF EXISTS ${quoteTable(prod)}`));
  jobs.push(copyJob('RESTORE', snapshot, prod));
  return jobs;
}

/**
 * Within the time-travel window (2 to 7 days) a table can be read as it was, even without a snapshot:
 * the fallback named when a snapshot has expired or was dropped by hand.
 * https://cloud.google.com/bigquery/docs/access-historical-data. The emulator reads the live table
 * after a CREATE OR REPLACE, so this is never run against it.
 */
export function timeTravelRestoreSql(prod: Relation, asOf: string): string {
  return (
    `CREATE OR REPLACE TABLE ${quoteTable(prod)} AS SELECT * FROM ${quoteTable(prod)} ` +
    `FOR SYSTEM_TIME AS OF TIMESTAMP ${quoteString(asOf)}`
  );
}

/** Row count and an order-independent checksum that counts duplicates (a sum, not a XOR, of row hashes). */
export function fingerprintSql(relation: Relation): string {
  // BIGNUMERIC: a sum of INT64 fingerprints overflows INT64 after a few rows.
  return (
    `SELECT COUNT(*) AS row_count, CAST(COALESCE(SUM(CAST(FARM_FINGERPRINT(TO_JSON_STRING(r)) AS BIGNUMERIC)), 0) AS STRING) AS checksum ` +
    `FROM ${quoteTable(relation)} AS r`
  );
}

/**
 * A view's SQL as BigQuery stores it. https://cloud.google.com/bigquery/docs/information-schema-views
 * INFORMATION_SCHEMA stays unquoted: the emulator does not resolve it quoted.
 */
export function viewDefinitionSql(view: Relation): string {
  return (
    `SELECT view_definition FROM ${quoteDataset(view)}.INFORMATION_SCHEMA.VIEWS ` +
    `WHERE table_name = ${quoteString(view.identifier)}`
  );
}

/** https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language#create_schema_statement */
export function createDatasetSql(location: Location, where: string | undefined): string {
  const options = where ? ` OPTIONS (location = ${quoteString(where)})` : '';
  return `CREATE SCHEMA IF NOT EXISTS ${quoteDataset(location)}${options}`;
}

/** https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language#drop_schema_statement */
export function dropDatasetSql(location: Location): string {
  return `DROP SCHEMA IF EXISTS ${quoteDataset(location)} CASCADE`;
}

/**
 * The shared backup manifest (activities/warehouses/shared/backup-manifest.ts) in BigQuery's terms:
 * the backup-wide header is the table's description, set as it is created (BigQuery has no COMMENT
 * ON, and the emulator ignores ALTER TABLE … SET OPTIONS).
 * https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language#create_table_statement
 */
export function manifestJobs(location: Location, header: ManifestHeader, rows: ManifestRow[]): BigQueryJob[] {
  const table = quoteTable({ ...location, identifier: BACKUP_MANIFEST_TABLE });
  const jobs = [
    query(
      `CREATE TABLE ${table} (deploy_id STRING NOT NULL, env STRING NOT NULL, operation STRING NOT NULL, ` +
        `created_at STRING NOT NULL, prod_database STRING NOT NULL, prod_schema STRING NOT NULL, ` +
        `prod_identifier STRING NOT NULL, kind STRING NOT NULL, copy_schema STRING, copy_identifier STRING, ` +
        `view_sql STRING, position INT64 NOT NULL) OPTIONS (description = ${quoteString(JSON.stringify(header))})`,
    ),
  ];
  if (rows.length === 0) return jobs;
  const values = rows.map(({ entry, viewSql }, position) => {
    const required = [header.deployId, header.env, header.operation, header.createdAt]
      .concat([entry.prod.database, entry.prod.schema, entry.prod.identifier, entry.kind])
      .map(quoteString);
    const optional = [entry.copy?.schema, entry.copy?.identifier, viewSql ?? undefined].map((value) =>
      value === undefined ? 'NULL' : quoteString(value),
    );
    return `(${[...required, ...optional, String(position)].join(', ')})`;
  });
  jobs.push(query(`INSERT INTO ${table} VALUES ${values.join(', ')}`));
  return jobs;
}

function copyJob(operationType: 'COPY' | 'RESTORE', from: Relation, to: Relation): BigQueryJob {
  return {
    kind: 'copy',
    operationType,
    source: tableRef(from),
    destination: tableRef(to),
    writeDisposition: 'WRITE_TRUNCATE',
    createDisposition: 'CREATE_IF_NEEDED',
  };
}

/** Labels that name the deploy and step in INFORMATION_SCHEMA.JOBS (lowercase, at most 63 characters). */
export function jobLabels(tag: { deployId: string; step: string }): Record<string, string> {
  const step = tag.step.replace(/([a-z0-9])([A-Z])/g, '$1_$2');
  return { dbt_deploy: labelValue(tag.deployId), dbt_deploy_step: labelValue(step) };
}

function labelValue(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '_')
    .slice(0, 63);
}

/**
 * A job id from the deploy, step, attempt and the statement's place in it: a retried insert of the
 * same statement finds the job it may already have started instead of running it twice.
 * https://cloud.google.com/bigquery/docs/running-jobs#generate-jobid
 */
export function jobId(tag: { deployId: string; step: string; attempt: string }, sequence: number): string {
  const safe = (value: string) => value.replace(/[^A-Za-z0-9_-]/g, '_');
  return `dbt_deploy_${safe(tag.deployId)}_${safe(tag.step)}_${safe(tag.attempt)}_${sequence}`.slice(0, 1024);
}

/** A statement or job as one line, for the statement log and `plan`. */
export function describeJob(job: BigQueryJob): string {
  if (job.kind === 'query') return job.sql;
  const name = (t: TableRef) => `${t.projectId}.${t.datasetId}.${t.tableId}`;
  return `copy job ${job.operationType} ${name(job.source)} -> ${name(job.destination)} (${job.writeDisposition})`;
}
