/**
 * The contract shared by workflows, activities, the worker and the client. Everything here travels
 * through Temporal history, so it stays small: artifacts are referenced, never embedded.
 */
import type { Engine } from '../activities/warehouses/capabilities.js';

export const STRATEGIES = ['wac'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

export type DeployStatus = 'published' | 'rolled_back' | 'aborted' | 'failed';

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
  };
  /** Models carrying any of these tags are published (`mart`, `utils` by default). */
  publishTags: string[];
  /** Passed to every dbt invocation as `--vars`, as YAML/JSON text. */
  vars?: string;
  gitSha?: string;
}

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
  materialized: 'table' | 'incremental' | 'view';
  staging: Relation;
  prod: Relation;
}

export interface PublishSet {
  tables: PublishedModel[];
  views: PublishedModel[];
}

export interface BackupEntry {
  prod: Relation;
  kind: 'table' | 'view' | 'absent';
  /** Where a table's previous rows are kept. */
  copy?: Relation;
}

export interface BackupRef {
  deployId: string;
  /** The location (schema) holding the copies and the backup's own manifest. */
  location: { database: string; schema: string };
  entries: BackupEntry[];
}

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
  strategy: StrategyName;
  status: DeployStatus;
  /** Why the deploy did not publish, in one sentence. */
  reason?: string;
  published: string[];
  audit: AuditSummary | null;
  backup: BackupRef | null;
  steps: StepRecord[];
  artifactsDir: string;
  startedAt: string;
  finishedAt: string;
}
