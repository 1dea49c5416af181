/**
 * The activities a plan's steps name. Each takes the deploy input, the state earlier steps produced
 * and its own arguments, and returns a one-line summary plus the state it adds. Only small values go
 * back to the workflow; dbt's artifacts stay in the artifact folder and travel as references.
 */
import { join, relative } from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type {
  PublishSet,
  ArtifactRef,
  AuditSummary,
  BackupRef,
  DeployInput,
  PublishedModel,
  Relation,
} from '../workflows/types.js';
import {
  artifactRef,
  type Manifest,
  readArtifact,
  type RunResults,
  summarizeRunResults,
} from './artifacts.js';
import { DbtInvocationError, type DbtOutcome, type DbtProgress, runDbt } from './dbt.js';
import { connectionFor, ProfileError, type WarehouseConnection } from './profiles.js';
import { relationName, UnsupportedOperation } from './warehouses/adapter.js';
import { turnKey, withWarehouse } from './warehouses/index.js';
import { takeTurn } from './turns.js';

export interface StepArtifacts {
  dir: string;
  runResults?: ArtifactRef;
  manifest?: ArtifactRef;
}

/** What the steps of one deploy have learned so far; merged by the workflow after every step. */
export interface DeployState {
  artifactsDir?: string;
  artifacts: Record<string, StepArtifacts>;
  audit?: AuditSummary;
  publishSet?: PublishSet;
  backup?: BackupRef;
  published?: string[];
}

export interface StepRequest<Args> {
  input: DeployInput;
  state: DeployState;
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

export function createActivities(options: ActivitiesOptions = {}) {
  const artifactsRoot =
    options.artifactsRoot ?? ((input: DeployInput) => join(input.projectDir, 'target', 'dbt-deploy'));
  const artifactsDirOf = (input: DeployInput) => join(artifactsRoot(input), input.deployId);

  return {
    async dbtBuild({ input, stepId, args }: StepRequest<{ target: string }>): Promise<StepOutcome> {
      const dir = join(artifactsDirOf(input), stepId);
      const outcome = await dbt(input, args.target, ['build', '--target', args.target], dir);
      const artifacts: StepArtifacts = {
        dir,
        runResults: await artifactRef(join(dir, 'run_results.json')),
        manifest: await artifactRef(join(dir, 'manifest.json')),
      };
      const { done, failed } = outcome.progress;
      return {
        summary: `dbt build in "${args.target}": ${done} nodes, ${failed} not passing`,
        state: { artifactsDir: artifactsDirOf(input), artifacts: { [stepId]: artifacts } },
      };
    },

    async audit({ state, args }: StepRequest<{ buildStepId: string }>): Promise<StepOutcome> {
      const runResults = await readArtifact<RunResults>(
        requireArtifact(state, args.buildStepId, 'runResults'),
      );
      const audit = summarizeRunResults(runResults);
      const tests = Object.values(audit.tests).reduce((a, b) => a + b, 0);
      const models = Object.values(audit.models).reduce((a, b) => a + b, 0);
      if (audit.passed) return { summary: `${models} models and ${tests} tests passed`, state: { audit } };
      const named = audit.blocking.map((n) => `${n.name} (${n.status})`).join(', ');
      return {
        summary: `${audit.blocking.length} blocking: ${named}`,
        state: { audit },
        blocked: `audit failed, prod untouched: ${named}`,
      };
    },

    async resolvePublishSet({
      input,
      state,
      stepId,
      args,
    }: StepRequest<{ buildStepId: string; prodTarget: string }>) {
      const manifest = await readArtifact<Manifest>(requireArtifact(state, args.buildStepId, 'manifest'));
      const dir = join(artifactsDirOf(input), stepId);
      const selection = input.publishTags.map((tag) => `tag:${tag}`);
      // dbt itself says where each model lives in prod, so custom schema macros are honoured.
      const listed = await dbt(
        input,
        args.prodTarget,
        [
          'ls',
          '--target',
          args.prodTarget,
          '--resource-type',
          'model',
          '--select',
          ...selection,
          '--output',
          'json',
          '--output-keys',
          'unique_id name database schema alias config',
        ],
        dir,
      );
      const publishSet = toPublishSet(manifest, listed.listed);
      const count = publishSet.tables.length + publishSet.views.length;
      if (count === 0) {
        const blocked = `no models tagged ${input.publishTags.join(', ')}: nothing to publish (check publish.tags in deploy.yml)`;
        return { summary: blocked, blocked };
      }
      return {
        summary: `${publishSet.tables.length} tables, ${publishSet.views.length} views to publish`,
        state: { publishSet },
      };
    },

    async backupProd({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const publishSet = requirePublishSet(state);
      const relations = [...publishSet.tables, ...publishSet.views].map((m) => m.prod);
      const backup = await warehouse(input, args.prodTarget, (w) => w.backup(input.deployId, relations));
      const kept = backup.entries.filter((e) => e.kind !== 'absent').length;
      return {
        summary: `kept ${kept} of ${relations.length} relations in ${backup.location.schema}`,
        state: { backup },
      };
    },

    async publishTables({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const { tables } = requirePublishSet(state);
      const stagingConnection = connection(input, input.targets.staging);
      const prodConnection = connection(input, args.prodTarget);
      if (turnKey(stagingConnection) !== turnKey(prodConnection)) {
        throw ApplicationFailure.nonRetryable(
          'staging and prod targets must use the same DuckDB file to publish by copy',
          UnsupportedOperation.name,
        );
      }
      await warehouse(input, args.prodTarget, (w) =>
        w.publishTables(tables.map((t) => ({ from: t.staging, to: t.prod }))),
      );
      return { summary: `published ${tables.length} tables: ${tables.map((t) => t.name).join(', ')}` };
    },

    async publishViews({
      input,
      state,
      stepId,
      args,
    }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const { views } = requirePublishSet(state);
      if (views.length === 0) return { summary: 'no views to re-create' };
      const dir = join(artifactsDirOf(input), stepId);
      const names = views.map((v) => v.name);
      await dbt(input, args.prodTarget, ['run', '--target', args.prodTarget, '--select', ...names], dir);
      const results = summarizeRunResults(
        await readArtifact<RunResults>(await artifactRef(join(dir, 'run_results.json'))),
      );
      if (!results.passed) {
        const failed = results.blocking.map((n) => `${n.name}: ${n.message ?? n.status}`).join('; ');
        throw ApplicationFailure.nonRetryable(`re-creating views in prod failed: ${failed}`, 'PublishFailed');
      }
      return { summary: `re-created ${views.length} views: ${names.join(', ')}` };
    },

    async verifyProd({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const { tables, views } = requirePublishSet(state);
      const models = [...tables, ...views];
      const mismatches = await warehouse(input, args.prodTarget, async (w) => {
        const found: string[] = [];
        for (const model of models) {
          Context.current().heartbeat({ verifying: model.name });
          const [prod, staging] = [await w.fingerprint(model.prod), await w.fingerprint(model.staging)];
          if (prod.rows !== staging.rows || prod.checksum !== staging.checksum) {
            found.push(
              `${model.name}: prod ${prod.rows} rows/${prod.checksum}, staging ${staging.rows} rows/${staging.checksum}`,
            );
          }
        }
        return found;
      });
      const published = models.map((m) => relationName(m.prod));
      if (mismatches.length > 0) {
        const blocked = `verify failed, prod differs from staging: ${mismatches.join('; ')}`;
        return { summary: blocked, blocked };
      }
      return {
        summary: `${models.length} relations match staging (rows and checksum)`,
        state: { published },
      };
    },

    async restoreProd({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const backup = state.backup;
      if (!backup) return { summary: 'no backup was taken: nothing to restore' };
      await warehouse(input, args.prodTarget, (w) => w.restore(backup));
      return { summary: `restored ${backup.entries.length} relations from ${backup.location.schema}` };
    },

    async dropBackup({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const backup = state.backup;
      if (!backup) return { summary: 'no backup to drop' };
      await warehouse(input, args.prodTarget, (w) => w.dropBackup(backup));
      return { summary: `dropped ${backup.location.schema}` };
    },
  };
}

export type DeployActivities = ReturnType<typeof createActivities>;

function connection(input: DeployInput, target: string): WarehouseConnection {
  try {
    return connectionFor(input.projectDir, input.profilesDir, input.profile, target);
  } catch (error) {
    if (error instanceof ProfileError) throw ApplicationFailure.nonRetryable(error.message, 'ConfigError');
    throw error;
  }
}

async function warehouse<T>(
  input: DeployInput,
  target: string,
  work: Parameters<typeof withWarehouse<T>>[2],
): Promise<T> {
  const context = Context.current();
  return heartbeating(() => withWarehouse(connection(input, target), (sql) => context.log.debug(sql), work));
}

/** Runs dbt on its turn with the warehouse, heartbeating its progress so a cancel reaches it. */
async function dbt(input: DeployInput, target: string, args: string[], dir: string): Promise<DbtOutcome> {
  const context = Context.current();
  let latest: DbtProgress = { done: 0, total: 0, failed: 0 };
  try {
    const outcome = await heartbeating(
      () =>
        takeTurn(turnKey(connection(input, target)), () =>
          runDbt({
            projectDir: input.projectDir,
            profilesDir: input.profilesDir,
            args,
            targetPath: dir,
            ...(input.vars ? { vars: input.vars } : {}),
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
    throw error;
  }
}

/** Heartbeats on a timer while `work` runs, so long silent statements still count as alive. */
async function heartbeating<T>(work: () => Promise<T>, details: () => unknown = () => undefined): Promise<T> {
  const context = Context.current();
  const timer = setInterval(() => context.heartbeat(details()), 5_000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

function requireArtifact(state: DeployState, stepId: string, kind: 'runResults' | 'manifest'): ArtifactRef {
  const ref = state.artifacts[stepId]?.[kind];
  if (!ref) throw ApplicationFailure.nonRetryable(`step "${stepId}" left no ${kind} artifact`, 'PlanError');
  return ref;
}

function requirePublishSet(state: DeployState): PublishSet {
  if (!state.publishSet)
    throw ApplicationFailure.nonRetryable('no publish set was resolved before this step', 'PlanError');
  return state.publishSet;
}

interface ListedModel {
  unique_id: string;
  name: string;
  database: string;
  schema: string;
  alias: string | null;
  config: { materialized: string };
}

/** Joins where dbt built each selected model in staging (the manifest) with where it lives in prod (`dbt ls`). */
export function toPublishSet(manifest: Manifest, listedLines: string[]): PublishSet {
  const publishSet: PublishSet = { tables: [], views: [] };
  for (const line of listedLines) {
    const listed = JSON.parse(line) as ListedModel;
    const node = manifest.nodes[listed.unique_id];
    if (!node)
      throw ApplicationFailure.nonRetryable(
        `${listed.unique_id} is in prod's selection but was not built`,
        'PlanError',
      );
    const staging: Relation = {
      database: node.database ?? '',
      schema: node.schema,
      identifier: node.alias ?? node.name,
    };
    const prod: Relation = {
      database: listed.database,
      schema: listed.schema,
      identifier: listed.alias ?? listed.name,
    };
    const materialized = listed.config.materialized;
    if (materialized === 'ephemeral') continue;
    if (materialized !== 'table' && materialized !== 'incremental' && materialized !== 'view') {
      throw ApplicationFailure.nonRetryable(
        `${listed.name} is materialized as "${materialized}", which cannot be published yet (table, incremental, view)`,
        UnsupportedOperation.name,
      );
    }
    const model: PublishedModel = {
      uniqueId: listed.unique_id,
      name: listed.name,
      materialized,
      staging,
      prod,
    };
    (materialized === 'view' ? publishSet.views : publishSet.tables).push(model);
  }
  return publishSet;
}
