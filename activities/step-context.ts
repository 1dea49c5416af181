/**
 * What every step activity shares: the state a deploy carries from step to step, where its files go,
 * and the ways a step reaches dbt and the warehouse (on its turn, heartbeating, so a cancel reaches it).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { DiffSummary } from '../workflows/diff.js';
import type {
  ArtifactRef,
  AuditSummary,
  BackupHandle,
  BackupRef,
  DeployInput,
  Fingerprint,
  PublishSet,
  Relation,
} from '../workflows/types.js';
import { PUBLISHED_LISTED } from '../workflows/types.js';
import { readArtifact } from './artifacts.js';
import { DbtInvocationError, type DbtOutcome, type DbtProgress, DbtTransientError, runDbt } from './dbt.js';
import { connectionFor, ProfileError, type WarehouseConnection } from './profiles.js';
import { UnsupportedOperation, type WarehouseAdapter } from './warehouses/adapter.js';
import { dbtEnvironment } from './warehouses/bigquery/connection.js';
import { CAPABILITIES } from './warehouses/capabilities.js';
import { turnKey, withWarehouse } from './warehouses/index.js';
import { staleBackups } from './warehouses/shared/retention.js';
import { takeTurn } from './turns.js';

export interface StepArtifacts {
  dir: string;
  runResults?: ArtifactRef;
  manifest?: ArtifactRef;
  /**
   * A manifest compiled for prod before the build (wac's check step, `dbt compile --target prod` of
   * what `publish` selects): every node's prod relation, and the selected views' SQL for prod.
   */
  prodManifest?: ArtifactRef;
  /** The snapshots the build runs, listed for its target before it (wac's check step). */
  buildSnapshots?: ArtifactRef;
  /**
   * The table models prod lacks, which the sync therefore left out of the build location (names, a
   * JSON list): a build that rebuilds only what changed must build them too (the sync step).
   */
  notInProd?: ArtifactRef;
}

/**
 * What the steps of one deploy have learned so far; merged by the workflow after every step. It goes
 * through history with every step, so whatever grows with the project is a file in the deploy's
 * artifact folder (on the host its steps are pinned to, or the shared folder) or stays in the
 * warehouse, and only a reference travels. The inline fields marked "before references" are only
 * read: results recorded before references still carry them when such a deploy resumes.
 */
export interface DeployState {
  artifactsDir?: string;
  artifacts: Record<string, StepArtifacts>;
  audit?: AuditSummary;
  /** The publish set (`PublishSet` as JSON), a file in the folder of the step that selected it. */
  publishSetRef?: ArtifactRef;
  /** Before references: the publish set itself. */
  publishSet?: PublishSet;
  /** This operation's backup; its entries are in its manifest in the warehouse. */
  backup?: BackupHandle;
  /** The first `PUBLISHED_LISTED` relations published; `publishedCount` counts them all. */
  published?: string[];
  publishedCount?: number;
  /** Where every model lives in prod and in the build location (the `resolve` step's file). */
  relations?: ArtifactRef;
  /** The build target a full `sync` brought up to prod, snapshots included: its build needs no sync of its own. */
  syncedFromProd?: string;
  /**
   * Staging's fingerprints (`Fingerprint[]` as JSON) taken just before a swap, for verifying prod
   * after it (staging is gone then): a file in the swap step's folder.
   */
  expectedRef?: ArtifactRef;
  /** Before references: the fingerprints themselves. */
  expected?: Fingerprint[];
  /** What `publish` selects, with every seed and snapshot: `dbt ls` lines listed before the build. */
  publishListing?: ArtifactRef;
  /** Rollback only: the earlier deploy's backup being restored. */
  restoreFrom?: BackupHandle;
  /** The diff of prod against the candidate: counts and rule outcomes, the full diff by reference. */
  diff?: DiffSummary;
}

/** What a step is sent of the state: only the fields its activity reads (workflows/state.ts). */
export type StepState = Partial<DeployState>;

export interface StepRequest<Args> {
  input: DeployInput;
  state: StepState;
  stepId: string;
  args: Args;
}

export interface StepOutcome {
  summary: string;
  state?: Partial<DeployState>;
  /** Set when publish must not go ahead (failed audit, prod differs from staging): the saga takes over. */
  blocked?: string;
}

export interface ActivitiesOptions {
  /** Where each deploy's artifact folder goes; default `<project>/target/dbt-deploy`. */
  artifactsRoot?: (input: DeployInput) => string;
}

/** Where a deploy's files go, from the activities' options. */
export interface StepPaths {
  /** `<artifacts root>/<deployId>`: one folder per step below it. */
  artifactsDirOf(input: DeployInput): string;
  /** The manifest of the environment's last published deploy: what `state:modified` compares against. */
  prodStateDirOf(input: DeployInput): string;
  /** The prod-state record as it was before operation `deployId` changed prod, kept with its backup. */
  prodStateBeforeDirOf(input: DeployInput, deployId: string): string;
  /** dbt's parse cache, shared by the deploys of a project. */
  parseCacheOf(input: DeployInput): string;
}

export function stepPaths(options: ActivitiesOptions = {}): StepPaths {
  const artifactsRoot =
    options.artifactsRoot ?? ((input: DeployInput) => join(input.projectDir, 'target', 'dbt-deploy'));
  return {
    artifactsDirOf: (input) => join(artifactsRoot(input), input.deployId),
    prodStateDirOf: (input) => join(artifactsRoot(input), 'state', input.env),
    prodStateBeforeDirOf: (input, deployId) =>
      join(artifactsRoot(input), 'state', input.env, 'before', deployId),
    parseCacheOf: (input) => join(artifactsRoot(input), '.partial-parse'),
  };
}

export function connection(input: DeployInput, target: string): WarehouseConnection {
  try {
    return connectionFor(input.projectDir, input.profilesDir, input.profile, target);
  } catch (error) {
    if (error instanceof ProfileError) throw ApplicationFailure.nonRetryable(error.message, 'ConfigError');
    throw error;
  }
}

export async function warehouse<T>(
  input: DeployInput,
  target: string,
  work: Parameters<typeof withWarehouse<T>>[2],
): Promise<T> {
  const context = Context.current();
  const { activityType, activityId, attempt, workflowExecution } = context.info;
  // Engines that label their jobs (BigQuery) or tag their queries (Snowflake, seen in QUERY_HISTORY)
  // name the deploy, the step and this attempt of it.
  const tag = {
    deployId: input.deployId,
    step: activityType,
    attempt: `${workflowExecution?.runId.slice(0, 8) ?? 'direct'}_${activityId}_${attempt}`,
  };
  return heartbeating(() =>
    withWarehouse(connection(input, target), (sql) => context.log.debug(sql), work, tag),
  );
}

/** Runs dbt on its turn with the warehouse, heartbeating its progress so a cancel reaches it. */
export async function dbt(
  parseCache: string,
  input: DeployInput,
  target: string,
  args: string[],
  dir: string,
): Promise<DbtOutcome> {
  // dbt's parse depends on the target and the vars; anything else it checks itself.
  const parseKey = createHash('sha256')
    .update(`${target}\u0000${input.vars ?? ''}`)
    .digest('hex')
    .slice(0, 16);
  const partialParseFile = join(parseCache, `${parseKey}.msgpack`);
  const context = Context.current();
  let latest: DbtProgress = { done: 0, total: 0, failed: 0 };
  try {
    const outcome = await heartbeating(
      () =>
        withTurn(args[0] === 'ls' ? undefined : turnKey(connection(input, target)), () =>
          runDbt({
            projectDir: input.projectDir,
            profilesDir: input.profilesDir,
            args,
            targetPath: dir,
            ...(input.vars ? { vars: input.vars } : {}),
            partialParseFile,
            ...dbtEnvironmentOf(input, target),
            engine: connection(input, target).engine,
            signal: context.cancellationSignal,
            onProgress: (progress) => {
              latest = progress;
              context.heartbeat(progress);
            },
          }),
        ),
      () => latest,
    );
    context.log.info(`dbt ${args[0]} finished`, {
      exitCode: outcome.exitCode,
      ...outcome.progress,
      dir: relative(input.projectDir, dir),
    });
    return outcome;
  } catch (error) {
    if (error instanceof DbtInvocationError) throw ApplicationFailure.nonRetryable(error.message, error.name);
    // Retried as often as the step's plan allows (a prod build runs once: the saga restores instead).
    if (error instanceof DbtTransientError) throw ApplicationFailure.retryable(error.message, error.name);
    // Reported as a cancellation, not a failure: the workflow then knows the step was stopped on purpose.
    if (context.cancellationSignal.aborted)
      throw new CancelledFailure(`dbt ${args[0]} was stopped: the step was cancelled`);
    throw error;
  }
}

/** What the target's engine needs in dbt's environment (none of it a credential). */
function dbtEnvironmentOf(input: DeployInput, target: string): { env?: Record<string, string> } {
  const found = connection(input, target);
  return found.engine === 'bigquery' ? { env: dbtEnvironment(found) } : {};
}

/** `dbt ls` only parses the project: it needs no turn with the warehouse. */
async function withTurn<T>(key: string | undefined, work: () => Promise<T>): Promise<T> {
  return key === undefined ? work() : takeTurn(key, work);
}

/** Heartbeats on a timer while `work` runs, so long silent statements still count as alive. */
async function heartbeating<T>(work: () => Promise<T>, details: () => unknown = () => undefined): Promise<T> {
  const context = Context.current();
  const timer = setInterval(() => context.heartbeat(details()), 2_000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

export function requireArtifact(
  state: StepState,
  stepId: string,
  kind: 'runResults' | 'manifest',
): ArtifactRef {
  const ref = state.artifacts?.[stepId]?.[kind];
  if (!ref) throw ApplicationFailure.nonRetryable(`step "${stepId}" left no ${kind} artifact`, 'PlanError');
  return ref;
}

/** What an earlier step prepared for the build and the steps after it (see `StepArtifacts`), if one did. */
export function artifactAhead(
  state: StepState,
  kind: 'prodManifest' | 'buildSnapshots' | 'notInProd',
): ArtifactRef | undefined {
  return Object.values(state.artifacts ?? {}).find((artifacts) => artifacts[kind])?.[kind];
}

/** The publish set, read from the file the selecting step wrote (or carried inline, before references). */
export async function requirePublishSet(state: StepState): Promise<PublishSet> {
  if (state.publishSet) return state.publishSet;
  if (state.publishSetRef) return readArtifact<PublishSet>(state.publishSetRef);
  throw ApplicationFailure.nonRetryable('no publish set was resolved before this step', 'PlanError');
}

/** Staging's fingerprints taken before a swap, if this deploy swapped. */
export async function expectedFingerprints(state: StepState): Promise<Fingerprint[] | undefined> {
  if (state.expected) return state.expected;
  return state.expectedRef ? readArtifact<Fingerprint[]>(state.expectedRef) : undefined;
}

export function requireArtifactDir(state: StepState, stepId: string): string {
  const dir = state.artifacts?.[stepId]?.dir;
  if (!dir) throw ApplicationFailure.nonRetryable(`step "${stepId}" left no artifacts`, 'PlanError');
  return dir;
}

export function requireRelations(state: StepState): ArtifactRef {
  if (!state.relations)
    throw ApplicationFailure.nonRetryable('no relation map was resolved before this step', 'PlanError');
  return state.relations;
}

export function requireRestoreFrom(state: StepState): BackupHandle {
  if (!state.restoreFrom)
    throw ApplicationFailure.nonRetryable('no backup was found before this step', 'PlanError');
  return state.restoreFrom;
}

/**
 * A backup with its entries, read from its manifest where it lives (the warehouse), or undefined when
 * no manifest of it is left there. Handles from results recorded before handles carry the entries.
 */
export async function backupIn(
  w: WarehouseAdapter,
  handle: BackupHandle | { deployId: string; entries?: undefined },
): Promise<BackupRef | undefined> {
  if (handle.entries) return { ...handle, entries: handle.entries };
  return (await w.listBackups()).find((b) => b.deployId === handle.deployId);
}

/** The backup to restore from: its manifest must still be there, or there is nothing to restore. */
export async function requireBackupIn(w: WarehouseAdapter, handle: BackupHandle): Promise<BackupRef> {
  const backup = await backupIn(w, handle);
  if (!backup)
    throw ApplicationFailure.nonRetryable(
      `the backup of ${handle.deployId} (${handle.location.database}.${handle.location.schema}) is no longer in the warehouse`,
      'BackupNotFound',
    );
  return backup;
}

/** What a result says of the published relations: the first few names, and how many in all. */
export function publishedState(names: string[]): { published: string[]; publishedCount: number } {
  return { published: names.slice(0, PUBLISHED_LISTED), publishedCount: names.length };
}

/** Names for a one-line summary or message: the first `max`, then how many more. */
export function listed(names: string[], max = 10, separator = ', '): string {
  const more = names.length - max;
  return more > 0 ? `${names.slice(0, max).join(separator)} and ${more} more` : names.join(separator);
}

export function relationsOf(publishSet: PublishSet): Relation[] {
  return [...publishSet.tables, ...publishSet.views].map((m) => m.prod).concat(publishSet.drop ?? []);
}

/**
 * Publish copies or swaps between staging and prod inside one warehouse: the turn key names it (one
 * DuckDB file, one PostgreSQL database, one Snowflake account whose databases can all be reached).
 */
export function requireOneWarehouse(input: DeployInput): void {
  const staging = connection(input, input.targets.staging);
  const prod = connection(input, input.targets.prod);
  if (turnKey(staging) !== turnKey(prod)) {
    const scope = CAPABILITIES[prod.engine].stagingScope === 'account' ? 'account' : 'database';
    throw ApplicationFailure.nonRetryable(
      `staging and prod targets must be in the same ${prod.engine} ${scope === 'account' ? 'account' : 'warehouse (one DuckDB file, one PostgreSQL database)'} to publish`,
      UnsupportedOperation.name,
    );
  }
}

/**
 * After a success, keeps the newest `backups.keep` backups of each operation of the environment (this
 * operation's own included: deploys, mirror refreshes and rollbacks counted apart, so refreshes never
 * evict the deploy backups `rollback` needs) and drops the rest; `protect` names backups that stay.
 */
export async function pruneBackups(
  w: WarehouseAdapter,
  input: DeployInput,
  protect: string[] = [],
): Promise<string> {
  const keep = input.backupsKeep ?? 3;
  const stale = staleBackups(await w.listBackups(), input.env, keep, protect);
  try {
    for (const backup of stale) await w.dropBackup(backup);
  } catch (error) {
    // Retention is housekeeping: failing it must not roll back a deploy that was verified.
    return `; could not drop older backups (${error instanceof Error ? error.message : String(error)})`;
  }
  return stale.length > 0 ? `; dropped ${stale.length} older backups (backups.keep: ${keep})` : '';
}

/** After a publish, the build's manifest becomes the state the next `state:modified` selection compares with. */
export async function recordProdState(state: StepState, dir: string): Promise<void> {
  const manifest = state.artifacts?.['build']?.manifest;
  if (!manifest) return;
  await mkdir(dir, { recursive: true });
  await copyFile(new URL(manifest.uri), join(dir, 'manifest.json'));
}

/**
 * Before an operation changes prod, keeps the prod-state record as it is (or that there is none) beside
 * its backup, so whatever later restores that backup can put the matching record back. Written once:
 * a retried backup must not take the record a later step of the same operation wrote.
 */
export async function keepProdStateBefore(paths: StepPaths, input: DeployInput): Promise<void> {
  const kept = paths.prodStateBeforeDirOf(input, input.deployId);
  if (existsSync(kept)) return;
  const current = join(paths.prodStateDirOf(input), 'manifest.json');
  const staging = `${kept}.${process.pid}.${Date.now()}`;
  await mkdir(staging, { recursive: true });
  if (existsSync(current)) await copyFile(current, join(staging, 'manifest.json'));
  else await writeFile(join(staging, 'none'), 'prod had no state record before this operation\n');
  await rename(staging, kept);
}

/**
 * After prod was restored to its state before operation `deployId`, puts back the state record it had
 * then: `state:modified` must compare with what prod holds, not with a manifest prod no longer has.
 * Without a kept record (backups taken before records were kept), there is no record: every model
 * then counts as changed, which rebuilds more but never misses a change.
 */
export async function putBackProdState(
  paths: StepPaths,
  input: DeployInput,
  deployId: string,
): Promise<string> {
  const kept = join(paths.prodStateBeforeDirOf(input, deployId), 'manifest.json');
  const dir = paths.prodStateDirOf(input);
  const current = join(dir, 'manifest.json');
  if (!existsSync(kept)) {
    await rm(current, { force: true });
    return 'prod-state record cleared';
  }
  await mkdir(dir, { recursive: true });
  const temporary = `${current}.${process.pid}.${Date.now()}`;
  await copyFile(kept, temporary);
  await rename(temporary, current);
  return `prod-state record of before ${deployId} put back`;
}

/** Once an operation's backup is gone, the record kept with it is of no use. */
export async function forgetProdStateBefore(
  paths: StepPaths,
  input: DeployInput,
  deployId: string,
): Promise<void> {
  await rm(paths.prodStateBeforeDirOf(input, deployId), { recursive: true, force: true });
}
