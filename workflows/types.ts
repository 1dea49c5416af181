/**
 * The contract shared by workflows, activities, the worker and the client. Everything here travels
 * through Temporal history, so it stays small: artifacts are referenced, never embedded.
 */
import type { Engine } from '../activities/warehouses/capabilities.js';
import type { AuditRule, DiffSettings, DiffSummary } from './diff.js';
import type { Decision } from './queries.js';

/** The strategies a deploy can name. `auto` is resolved by the plan from the warehouse's capabilities. */
export const STRATEGIES = ['auto', 'blue-green', 'clone-back', 'wap', 'wac', 'mirror'] as const;
export type StrategyName = (typeof STRATEGIES)[number];
/** What a plan actually runs: a concrete strategy, or a rollback to an earlier backup. */
export type PlanKind = Exclude<StrategyName, 'auto'> | 'rollback';

/** The workflows that change an environment; they share one workflow id, so only one runs at a time. */
export type Operation = 'deploy' | 'rollback' | 'mirror-refresh';

export type DeployStatus = 'published' | 'rolled_back' | 'aborted' | 'failed';

/** What the webhook is told about (deploy.yml `notify.on`): every ending, and the wait at the approval gate. */
export const NOTIFY_EVENTS = ['published', 'failed', 'rolled_back', 'aborted', 'awaiting_approval'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** A table or view in the warehouse. `schema` is the location (schema, dataset) inside `database`. */
export interface Relation {
  database: string;
  schema: string;
  identifier: string;
}

/** What the CLI resolved before starting the workflow: only names and paths, never credentials. */
export interface DeployInput {
  deployId: string;
  project: string;
  /**
   * Set when the client encrypts payloads: what workflow ids and search attributes call the project
   * instead of its name, which they would hold in clear (see `projectAlias` in client/codec.ts).
   */
  projectAlias?: string;
  projectDir: string;
  profilesDir: string;
  /** The dbt profile (from dbt_project.yml) whose targets are named below. */
  profile: string;
  /** Environment name from deploy.yml, e.g. `prod`. */
  env: string;
  strategy: StrategyName;
  engine: Engine;
  targets: {
    /** The dbt target readers use. */
    prod: string;
    /** Where the candidate is built and audited before publish. */
    staging: string;
    /** Where `wap` builds and tests everything (deploy.yml `audit_target`; staging when unset). */
    audit?: string;
  };
  /**
   * Models carrying any of these tags are published (`mart`, `utils` by default). Empty when
   * `publish` selects them otherwise (`publish.select`).
   */
  publishTags: string[];
  /**
   * What `wac` and `wap` publish, as deploy.yml says it. Every deploy the CLI starts sets it, and its
   * plan then checks the selection before anything is built. Inputs without it (recorded histories,
   * schedules created before it existed) publish `publishTags` and plan as they always did.
   */
  publish?: PublishSelection;
  /** Passed to every dbt invocation as `--vars`, as YAML/JSON text. */
  vars?: string;
  gitSha?: string;
  /**
   * dbt selectors for what `clone-back` rebuilds (deploy.yml `select`). Unset: the models changed
   * since the last published deploy (`state:modified+`) and the models carrying the publish tags.
   */
  select?: string[];
  /** Set when the project has a raw layer (deploy.yml `mirror`): deploys build from it, never from sources. */
  mirror?: { select: string[] };
  /** How many backups stay in the warehouse for this environment (deploy.yml `backups.keep`). */
  backupsKeep?: number;
  /** Rollback only: the deploy whose previous prod comes back; unset means the latest deploy. */
  rollbackTo?: string;
  /**
   * deploy.yml `notify`: a webhook told when the operation ends or waits for approval. `webhook` is the
   * URL as written, `{{ env_var('NAME') }}` unresolved: the worker resolves it, so a secret URL never
   * reaches history.
   */
  notify?: { webhook: string; on: NotifyEvent[] };
  /** deploy.yml `approval` (or `--require-approval`): wait for a person after a passing audit. */
  approval?: {
    required: boolean;
    /** A duration such as `24h` or `30 minutes`. */
    timeout: string;
    onTimeout: 'abort' | 'approve';
  };
  /** deploy.yml `audits`: rules run on the diff of prod against the candidate before the cut-over. */
  audits?: AuditRule[];
  /** deploy.yml `diff`: sample rows shown, and the size past which keys are compared on a sample. */
  diff?: DiffSettings;
  /**
   * deploy.yml `heartbeat_timeout`: how long a step may go without a heartbeat before its worker counts
   * as lost and the step is retried. Unset: 20 s (`ACTIVITY_DEFAULTS` in workflows/deploy.ts).
   */
  heartbeatTimeout?: string;
}

/**
 * deploy.yml `publish`: tags (`publish.tags`), dbt selectors (`publish.select: [...]`, as `dbt
 * --select` takes them), or the name of a YAML selector in the project's selectors.yml
 * (`publish.select: <name>`, as `dbt --selector` takes it).
 */
export type PublishSelection = { tags: string[] } | { select: string[] } | { selector: string };

/** A file kept in the artifact folder; only this reference goes through history. */
export interface ArtifactRef {
  uri: string;
  sha256: string;
  bytes: number;
}

export interface NodeOutcome {
  uniqueId: string;
  name: string;
  status: string;
  message?: string;
  failures?: number;
}

export interface AuditSummary {
  passed: boolean;
  models: Record<string, number>;
  tests: Record<string, number>;
  /** Models and tests that block publish, with dbt's status and message. */
  blocking: NodeOutcome[];
}

export interface PublishedModel {
  uniqueId: string;
  name: string;
  /** Seeds and snapshots are tables dbt fills itself; they are copied like tables. */
  materialized: 'table' | 'incremental' | 'view' | 'seed' | 'snapshot';
  staging: Relation;
  prod: Relation;
}

export interface PublishSet {
  tables: PublishedModel[];
  views: PublishedModel[];
  /** Prod relations with nothing left in staging (models removed from the project); dropped on publish. */
  drop?: Relation[];
}

/** A schema (PostgreSQL, DuckDB, Snowflake) or dataset (BigQuery) inside a database or project. */
export interface Location {
  database: string;
  schema: string;
}

export interface BackupEntry {
  prod: Relation;
  kind: 'table' | 'view' | 'absent';
  /** Where a table's previous rows are kept (a copy, or the table itself after a schema swap). */
  copy?: Relation;
}

/** Which kind of workflow took a backup; a plain `rollback` undoes the latest `deploy`. */
export type BackupOperation = 'deploy' | 'mirror' | 'rollback';

export interface BackupRef {
  deployId: string;
  env: string;
  operation?: BackupOperation;
  /** When the backup was taken (ISO 8601); retention keeps the newest `backups.keep`. */
  createdAt: string;
  /** The location holding the copies and the backup's own manifest table. */
  location: Location;
  entries: BackupEntry[];
  /** Set when the backup is prod's own schemas, renamed away by a blue/green swap (zero-copy). */
  swapped?: Array<{
    prod: string;
    staging: string;
    backup: string;
    /** What the names are: schemas (unset: PostgreSQL, Snowflake schema swap) or databases (Snowflake). */
    unit?: 'schema' | 'database';
  }>;
}

/**
 * A backup as history carries it: what and where it is, not what it holds. A backup of a few thousand
 * relations would make every payload that carries it grow with the project, so its entries are read
 * back from the backup's own manifest in the warehouse where they are needed. Results recorded before
 * handles carried the entries themselves; they are still read when such a deploy resumes.
 */
export type BackupHandle = Omit<BackupRef, 'entries'> & {
  /** How many relations the backup holds (unset in results recorded before handles). */
  relations?: number;
  /** Only in results recorded before handles. */
  entries?: BackupEntry[];
};

/** How many published relations a result names; `publishedCount` says how many there were in all. */
export const PUBLISHED_LISTED = 50;

export interface Fingerprint {
  relation: Relation;
  rows: number;
  checksum: string;
}

export interface StepRecord {
  id: string;
  title: string;
  status: 'pending' | 'running' | 'completed' | 'failed' | 'compensated' | 'skipped';
  summary?: string;
}

export interface DeployResult {
  deployId: string;
  workflowId: string;
  env: string;
  strategy: PlanKind;
  status: DeployStatus;
  /** Why the deploy did not publish, in one sentence. */
  reason?: string;
  /** The first `PUBLISHED_LISTED` relations published (`database.schema.identifier`); the rest are counted. */
  published: string[];
  /** How many relations were published (unset in results recorded before it: then `published` has them all). */
  publishedCount?: number;
  audit: AuditSummary | null;
  backup: BackupHandle | null;
  steps: StepRecord[];
  artifactsDir: string;
  startedAt: string;
  finishedAt: string;
  /** Who approved or aborted at the approval gate (or who aborted at any time), when, and their note. */
  decision?: Decision | null;
  /** The diff of prod against what the deploy published (or would have): counts, rules, the file's reference. */
  diff?: DiffSummary | null;
  /** The deploy's report (markdown; a `.json` twin beside it), written on the worker at the end. */
  report?: string;
  gitSha?: string;
}
