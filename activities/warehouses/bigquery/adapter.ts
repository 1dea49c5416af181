/**
 * BigQuery. No dataset rename and no DDL inside transactions, so every cut-over is per table: a copy
 * job (atomic, full copy) or a clone (zero-copy, drop then create), chosen by size. Backups are
 * read-only table snapshots that expire by themselves; restore is a copy job. Every statement is a
 * job with labels naming the deploy and step and an id derived from them, built first as data by
 * plans.ts and run here by one `run()`.
 */
import type { BigQuery, Job, TableMetadata } from '@google-cloud/bigquery';
import type { BackupRef, Fingerprint, Location, Relation } from '../../../workflows/types.js';
import {
  type BackupLabel,
  type RelationChange,
  type RelationKind,
  type StatementLog,
  UnsupportedOperation,
  type WarehouseAdapter,
} from '../adapter.js';
import {
  BACKUP_LOCATION_PREFIX,
  BACKUP_MANIFEST_TABLE,
  BackupLocationTaken,
  backupLocationName,
  headerOf,
  manifestHeader,
  type ManifestHeader,
  type ManifestRow,
  newestFirst,
  ownedBy,
  parseManifestRows,
  refOf,
} from '../shared/backup-manifest.js';
import { StatementCounter } from '../shared/statement-log.js';
import { CAPABILITIES } from '../capabilities.js';
import { type BigQueryConnection, bigQueryClient, isEmulator } from './connection.js';
import {
  type BigQueryJob,
  type BigQueryTarget,
  chooseMethod,
  CLONE_ABOVE_BYTES,
  createDatasetSql,
  describeJob,
  type Destination,
  manifestJobs,
  dropDatasetSql,
  propertiesPatch,
  dropJobs,
  fingerprintSql,
  jobId,
  jobLabels,
  publishTableJobs,
  quoteTable,
  restoreTableJobs,
  sameLayout,
  SNAPSHOT_EXPIRATION_DAYS,
  snapshotJobs,
  type TableProperties,
  timeTravelRestoreSql,
  viewDefinitionSql,
  viewJobs,
} from './plans.js';
import { bigQueryDialect } from './dialect.js';

/** Names the deploy, step and attempt every job belongs to (labels and job ids). */
export interface JobTag {
  deployId: string;
  step: string;
  /** Unique per execution of the step: a new attempt runs its statements afresh. */
  attempt: string;
}

export interface BigQueryAdapterOptions {
  /** Tables at least this large are published by clone instead of copy job (default 10 GiB). */
  cloneAboveBytes?: number;
  /** A client to use instead of one built from the connection (a test injecting a transport fault). */
  client?: BigQuery;
}

type Row = Record<string, unknown>;

export class BigQueryAdapter implements WarehouseAdapter {
  readonly engine = 'bigquery' as const;
  readonly capabilities = CAPABILITIES.bigquery;
  readonly dialect = bigQueryDialect;
  readonly target: BigQueryTarget;
  private readonly statements: StatementCounter;
  private sequence = 0;

  private constructor(
    private readonly client: BigQuery,
    private readonly connection: BigQueryConnection,
    log: StatementLog,
    private readonly tag: JobTag,
    private readonly options: BigQueryAdapterOptions,
  ) {
    this.target = isEmulator(connection) ? 'emulator' : 'bigquery';
    this.statements = new StatementCounter('bigquery', log);
  }

  static async open(
    connection: BigQueryConnection,
    log: StatementLog = () => {},
    tag?: JobTag,
    options: BigQueryAdapterOptions = {},
  ): Promise<BigQueryAdapter> {
    const client = options.client ?? (await bigQueryClient(connection));
    // Outside a deploy step (tests, tools) the jobs still get unique ids.
    const session = tag ?? {
      deployId: 'session',
      step: 'adhoc',
      attempt: `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`,
    };
    return new BigQueryAdapter(client, connection, log, session, options);
  }

  /**
   * Every job goes through here: numbered, logged, labelled, with an id derived from the deploy, step
   * and attempt. A submission that failed on the way is looked up by that id before it is sent again,
   * so a job that did start is awaited instead of run twice.
   */
  async run(job: BigQueryJob): Promise<Row[]> {
    this.sequence += 1;
    const id = jobId(this.tag, this.sequence);
    this.statements.record(describeJob(job), id);
    let started: Job | undefined;
    for (let attempt = 1; started === undefined; attempt += 1) {
      try {
        started = await this.submit(job, id);
      } catch (error) {
        const found = await this.lookUp(id);
        if (found) started = found;
        else if (attempt >= 3 || !mayHaveFailedInTransit(error)) throw error;
      }
    }
    // A job refused when it was inserted says why there; polling it later would only find no job.
    const refused = started.metadata?.status?.errorResult;
    if (refused) throw new Error(`${String(refused.message ?? refused.reason)} (job ${id})`);
    if (job.kind === 'copy') {
      await started.promise();
      return [];
    }
    const [rows] = await started.getQueryResults();
    return rows as Row[];
  }

  private async submit(job: BigQueryJob, id: string): Promise<Job> {
    const labels = jobLabels(this.tag);
    const location = this.connection.location;
    const timeoutMs = this.connection.jobTimeoutSeconds
      ? this.connection.jobTimeoutSeconds * 1000
      : undefined;
    if (job.kind === 'query') {
      // Jobs, never the fast query path: the emulator hides errors there, and jobs carry ids and labels.
      const [started] = await this.client.createQueryJob({
        query: job.sql,
        jobId: id,
        labels,
        useLegacySql: false,
        ...(location ? { location } : {}),
        ...(timeoutMs ? { jobTimeoutMs: timeoutMs } : {}),
      });
      return started;
    }
    const [started] = await this.client.createJob({
      jobId: id,
      ...(location ? { location } : {}),
      configuration: {
        labels,
        ...(timeoutMs ? { jobTimeoutMs: String(timeoutMs) } : {}),
        copy: {
          sourceTables: [job.source],
          destinationTable: job.destination,
          operationType: job.operationType,
          writeDisposition: job.writeDisposition,
          createDisposition: job.createDisposition,
        },
      },
    });
    return started;
  }

  private async lookUp(id: string): Promise<Job | undefined> {
    try {
      const location = this.connection.location;
      const [job] = await this.client.job(id, location ? { location } : {}).get();
      return job;
    } catch {
      return undefined;
    }
  }

  private async runAll(jobs: BigQueryJob[]): Promise<void> {
    for (const job of jobs) await this.run(job);
  }

  private async metadata(relation: Relation): Promise<TableMetadata | undefined> {
    try {
      const [metadata] = await this.client
        .dataset(relation.schema, { projectId: relation.database })
        .table(relation.identifier)
        .getMetadata();
      return metadata as TableMetadata;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async relationKind(relation: Relation): Promise<RelationKind> {
    return kindOf(await this.metadata(relation));
  }

  async listRelations(location: Location): Promise<Array<{ relation: Relation; kind: 'table' | 'view' }>> {
    let tables;
    try {
      [tables] = await this.client.dataset(location.schema, { projectId: location.database }).getTables();
    } catch (error) {
      if (statusOf(error) === 404) return [];
      throw error;
    }
    return tables
      .map((table) => ({
        relation: { ...location, identifier: String(table.id) },
        kind: table.metadata?.type === 'VIEW' ? ('view' as const) : ('table' as const),
      }))
      .sort((a, b) => a.relation.identifier.localeCompare(b.relation.identifier));
  }

  async backup(deployId: string, relations: Relation[], label: BackupLabel): Promise<BackupRef> {
    const location = { database: this.connection.project, schema: backupLocationName(deployId) };
    const header = headerOf(deployId, label);
    const expiresAt = new Date(
      Date.parse(label.createdAt) + SNAPSHOT_EXPIRATION_DAYS * 86_400_000,
    ).toISOString();
    if (await this.datasetExists(location)) {
      // Only a retried backup of this same deploy may be replaced; anything else there is not ours.
      const existing = await this.readManifest(location);
      if (!ownedBy(existing?.header, deployId)) throw new BackupLocationTaken(location, existing?.header);
      await this.run({ kind: 'query', sql: dropDatasetSql(location) });
    }
    await this.run({ kind: 'query', sql: createDatasetSql(location, this.connection.location) });
    const rows: ManifestRow[] = [];
    for (const [index, prod] of relations.entries()) {
      const metadata = await this.metadata(prod);
      const kind = kindOf(metadata);
      if (kind === 'table') {
        const copy = { ...location, identifier: `t${index}__${prod.identifier}` };
        await this.runAll(snapshotJobs(prod, copy, expiresAt, this.target));
        // The snapshot holds prod's description and labels as its own, for the restore to put back.
        await this.keepTableProperties(metadata as TableMetadata, copy, undefined);
        rows.push({ entry: { prod, kind, copy }, viewSql: null });
      } else {
        rows.push({
          entry: { prod, kind },
          viewSql: kind === 'view' ? await this.viewDefinition(prod) : null,
        });
      }
    }
    // The manifest is written last: a backup without one is not listed, so never restored half-made.
    await this.runAll(manifestJobs(location, header, rows));
    return refOf(header, location, rows);
  }

  async restore(backup: BackupRef): Promise<void> {
    const recorded = await this.readManifest(backup.location);
    const views = new Map(
      (recorded?.rows ?? []).map((row) => [this.dialect.relationKey(row.entry.prod), row.viewSql]),
    );
    const tables = backup.entries.filter((e) => e.kind === 'table' && e.copy);
    for (const entry of tables) {
      const snapshot = entry.copy as Relation;
      const source = await this.metadata(snapshot);
      if (!source) {
        throw new Error(
          `the snapshot ${quoteTable(snapshot)} of ${quoteTable(entry.prod)} is gone (expired or dropped); ` +
            `within the time-travel window this reads it back instead: ${timeTravelRestoreSql(entry.prod, backup.createdAt)}`,
        );
      }
      await this.ensureDataset(entry.prod);
      const { destination, before } = await this.destination(entry.prod, source);
      await this.runAll(restoreTableJobs(snapshot, entry.prod, destination, this.target));
      await this.keepTableProperties(source, entry.prod, before);
    }
    // Views after the tables they read.
    for (const entry of backup.entries.filter((e) => e.kind === 'view')) {
      const sql = views.get(this.dialect.relationKey(entry.prod));
      if (!sql) continue;
      const current = await this.relationKind(entry.prod);
      // A view that already reads as it did needs no job (and readers see no churn).
      if (current === 'view' && (await this.viewDefinition(entry.prod)) === sql) continue;
      await this.ensureDataset(entry.prod);
      await this.runAll(viewJobs(entry.prod, sql, current));
    }
    for (const entry of backup.entries.filter((e) => e.kind === 'absent'))
      await this.runAll(dropJobs(entry.prod, await this.relationKind(entry.prod)));
  }

  async dropBackup(backup: BackupRef): Promise<void> {
    await this.run({ kind: 'query', sql: dropDatasetSql(backup.location) });
  }

  async listBackups(): Promise<BackupRef[]> {
    const project = this.connection.project;
    const [datasets] = await this.client.getDatasets({ projectId: project });
    const backups: BackupRef[] = [];
    for (const dataset of datasets) {
      const location = { database: project, schema: String(dataset.id) };
      if (!location.schema.startsWith(BACKUP_LOCATION_PREFIX)) continue;
      const manifest = await this.readManifest(location);
      if (manifest?.header) backups.push(refOf(manifest.header, location, manifest.rows));
    }
    return newestFirst(backups);
  }

  /** Per table, never all at once: BigQuery has no transactional DDL (see `capabilities`). */
  async replaceRelations(change: RelationChange): Promise<void> {
    for (const { from, to } of change.tables) {
      const source = await this.metadata(from);
      if (!source) throw new Error(`${quoteTable(from)} does not exist: nothing to publish from`);
      await this.ensureDataset(to);
      const { destination, before } = await this.destination(to, source);
      const method = chooseMethod(
        Number(source.numBytes ?? 0),
        this.options.cloneAboveBytes ?? CLONE_ABOVE_BYTES,
      );
      await this.runAll(publishTableJobs(from, to, destination, method, this.target));
      await this.keepTableProperties(source, to, before);
    }
    for (const { to, sql } of change.views) {
      await this.ensureDataset(to);
      await this.runAll(viewJobs(to, sql, await this.relationKind(to)));
    }
    for (const relation of change.drop)
      await this.runAll(dropJobs(relation, await this.relationKind(relation)));
  }

  swapLocations(): Promise<BackupRef> {
    return Promise.reject(
      new UnsupportedOperation(
        'BigQuery cannot rename datasets or run DDL in a transaction: use wac, wap, clone-back or mirror',
      ),
    );
  }

  /** Nothing to undo: BigQuery never swaps (see `swapLocations`). */
  async unswapLocations(): Promise<void> {}

  async fingerprint(relation: Relation): Promise<Fingerprint> {
    const [row = {}] = await this.run({ kind: 'query', sql: fingerprintSql(relation) });
    return { relation, rows: Number(row['row_count'] ?? 0), checksum: String(row['checksum'] ?? '0') };
  }

  query(sql: string): Promise<Row[]> {
    return this.run({ kind: 'query', sql });
  }

  async close(): Promise<void> {}

  /** What sits where a table is about to land, and whether its columns and layout match the source's. */
  private async destination(
    to: Relation,
    source: TableMetadata,
  ): Promise<{ destination: Destination; before: TableMetadata | undefined }> {
    const before = await this.metadata(to);
    const kind = kindOf(before);
    const table = kind === 'table' && before !== undefined;
    const sameSchema =
      table && JSON.stringify(before.schema?.fields ?? []) === JSON.stringify(source.schema?.fields ?? []);
    return {
      destination: {
        kind,
        sameSchema,
        sameLayout: table && sameLayout(before as TableProperties, source as TableProperties),
      },
      before,
    };
  }

  /**
   * A copy job and a clone carry the source's schema (column descriptions, policy tags), partitioning
   * and clustering (plans.ts drops a table laid out otherwise first); the table's own description and
   * labels are set from the source explicitly (see `propertiesPatch`).
   */
  private async keepTableProperties(
    source: TableMetadata,
    to: Relation,
    before: TableMetadata | undefined,
  ): Promise<void> {
    const patch = propertiesPatch(
      source as TableProperties,
      before as TableProperties | undefined,
      this.target,
    );
    if (!patch) return;
    this.statements.event(`tables.patch ${quoteTable(to)} ${JSON.stringify(patch)}`);
    await this.client
      .dataset(to.schema, { projectId: to.database })
      .table(to.identifier)
      .setMetadata(patch as TableMetadata);
  }

  private async ensureDataset(relation: Relation): Promise<void> {
    const location = { database: relation.database, schema: relation.schema };
    if (!(await this.datasetExists(location)))
      await this.run({ kind: 'query', sql: createDatasetSql(location, this.connection.location) });
  }

  /**
   * The view's SQL: BigQuery's own `view.query`, or, where that is missing (the emulator), what
   * INFORMATION_SCHEMA.VIEWS says.
   */
  private async viewDefinition(relation: Relation): Promise<string> {
    const query = (await this.metadata(relation))?.view?.query;
    if (typeof query === 'string') return query;
    const rows = await this.run({ kind: 'query', sql: viewDefinitionSql(relation) });
    const sql = rows[0]?.['view_definition'];
    if (typeof sql !== 'string') throw new Error(`no definition found for view ${quoteTable(relation)}`);
    return sql;
  }

  /** The manifest of a backup location: its header (the table's description) and its rows. */
  private async readManifest(
    location: Location,
  ): Promise<{ header: ManifestHeader | undefined; rows: ManifestRow[] } | undefined> {
    const table = { ...location, identifier: BACKUP_MANIFEST_TABLE };
    const metadata = await this.metadata(table);
    if (!metadata) return undefined;
    const raw = await this.run({ kind: 'query', sql: `SELECT * FROM ${quoteTable(table)}` });
    return { header: manifestHeader(metadata.description, raw), rows: parseManifestRows(raw, location) };
  }

  private async datasetExists(location: Location): Promise<boolean> {
    try {
      await this.client.dataset(location.schema, { projectId: location.database }).getMetadata();
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }
}

function kindOf(metadata: TableMetadata | undefined): RelationKind {
  if (!metadata) return 'absent';
  return metadata.type === 'VIEW' ? 'view' : 'table';
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** Errors after which the job may or may not have reached BigQuery: look it up, then send it again. */
function mayHaveFailedInTransit(error: unknown): boolean {
  const code = statusOf(error);
  if (code === 409) return true;
  if (code !== undefined) return code >= 500;
  const name = (error as { code?: unknown; name?: unknown }).name;
  return (
    name === 'FetchError' ||
    name === 'AbortError' ||
    /ECONNRESET|ETIMEDOUT|socket hang up/i.test(String(error))
  );
}
