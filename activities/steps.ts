/**
 * The activities a plan's steps name. Each takes the deploy input, the state earlier steps produced
 * and its own arguments, and returns a one-line summary plus the state it adds. Only small values go
 * back to the workflow; dbt's artifacts stay in the artifact folder and travel as references.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { BuildArgs, PublishScope } from '../workflows/plan.js';
import type {
  ArtifactRef,
  AuditSummary,
  BackupOperation,
  BackupRef,
  DeployInput,
  DeployResult,
  Fingerprint,
  PublishSet,
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
import { writeDeployReport } from './report.js';
import { connectionFor, ProfileError, type WarehouseConnection } from './profiles.js';
import {
  buildRelationMap,
  publishSetOf,
  type RelationMap,
  schemaPairs,
  toPublishSet,
  UnpublishableModel,
} from './relation-map.js';
import { relationName, UnsupportedOperation, type WarehouseAdapter } from './warehouses/adapter.js';
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
  /** Where every model lives in prod and in the build location (the `resolve` step's file). */
  relations?: ArtifactRef;
  /** Staging's fingerprints taken just before a swap, for verifying prod after it (staging is gone then). */
  expected?: Fingerprint[];
  /** Rollback only: the earlier deploy's backup being restored. */
  restoreFrom?: BackupRef;
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
  /** The manifest of the environment's last published deploy: what `state:modified` compares against. */
  const prodStateDirOf = (input: DeployInput) => join(artifactsRoot(input), 'state', input.env);
  const parseCacheOf = (input: DeployInput) => join(artifactsRoot(input), '.partial-parse');

  return {
    async dbtBuild({ input, state, stepId, args }: StepRequest<BuildArgs>): Promise<StepOutcome> {
      const dir = join(artifactsDirOf(input), stepId);
      const selection = buildSelection(state, args, prodStateDirOf(input));
      const outcome = await dbt(
        parseCacheOf(input),
        input,
        args.target,
        ['build', '--target', args.target, ...selection.flags],
        dir,
      );
      const artifacts: StepArtifacts = {
        dir,
        runResults: await artifactRef(join(dir, 'run_results.json')),
        manifest: await artifactRef(join(dir, 'manifest.json')),
      };
      const { done, failed } = outcome.progress;
      return {
        summary: `dbt build in "${args.target}"${selection.note}: ${done} nodes, ${failed} not passing`,
        state: { artifactsDir: artifactsDirOf(input), artifacts: { [stepId]: artifacts } },
      };
    },

    async audit({
      input,
      state,
      args,
    }: StepRequest<{ buildStepId: string; verifiesPublish?: boolean }>): Promise<StepOutcome> {
      const runResults = await readArtifact<RunResults>(
        requireArtifact(state, args.buildStepId, 'runResults'),
      );
      const audit = summarizeRunResults(runResults);
      const tests = Object.values(audit.tests).reduce((a, b) => a + b, 0);
      const models = Object.values(audit.models).reduce((a, b) => a + b, 0);
      if (args.verifiesPublish) {
        // The deploy's audit summary stays the one of the build before publish; this one only decides.
        if (!audit.passed) {
          const named = audit.blocking.map((n) => `${n.name} (${n.status})`).join(', ');
          return {
            summary: `${audit.blocking.length} blocking: ${named}`,
            blocked: `prod build failed: ${named}`,
          };
        }
        const published = relationsOf(requirePublishSet(state)).map(relationName);
        await recordProdState(state, prodStateDirOf(input));
        const pruned = await warehouse(input, input.targets.prod, (w) => pruneBackups(w, input));
        return {
          summary: `${models} models and ${tests} tests passed in prod${pruned}`,
          state: { published },
        };
      }
      if (audit.passed) return { summary: `${models} models and ${tests} tests passed`, state: { audit } };
      const named =
        audit.blocking.map((n) => `${n.name} (${n.status})`).join(', ') ||
        'dbt built nothing (does the selection match any model?)';
      return {
        summary: `${audit.blocking.length} blocking: ${named}`,
        state: { audit },
        blocked: `audit failed, prod untouched: ${named}`,
      };
    },

    async resolveRelations({
      input,
      stepId,
      args,
    }: StepRequest<{ prodTarget: string; buildTarget: string }>): Promise<StepOutcome> {
      const dir = join(artifactsDirOf(input), stepId);
      const mirror = input.mirror;
      // `dbt ls` never opens the warehouse, so the listings run beside the compile instead of after it.
      const [, listing, raw] = await Promise.all([
        // Compiling for prod gives each model's prod relation and, for views, the SELECT prod needs.
        dbt(
          parseCacheOf(input),
          input,
          args.prodTarget,
          ['compile', '--target', args.prodTarget, '--select', 'resource_type:model'],
          join(dir, 'prod'),
        ),
        dbt(
          parseCacheOf(input),
          input,
          args.buildTarget,
          [...LS_MODELS, '--target', args.buildTarget],
          join(dir, 'build'),
        ),
        mirror
          ? dbt(
              parseCacheOf(input),
              input,
              args.buildTarget,
              [...LS_MODELS, '--target', args.buildTarget, '--select', ...mirror.select],
              join(dir, 'mirror'),
            )
          : undefined,
      ]);
      const prodManifest = await readArtifact<Manifest>(
        await artifactRef(join(dir, 'prod', 'manifest.json')),
      );
      const mirrorIds = new Set(
        (raw?.listed ?? []).map((line) => (JSON.parse(line) as { unique_id: string }).unique_id),
      );
      const map = buildRelationMap(prodManifest, listing.listed, mirrorIds, args);
      const file = join(dir, 'relations.json');
      await writeFile(file, JSON.stringify(map, null, 2));
      const schemas = schemaPairs(map).map((p) => `${p.prod.schema} ↔ ${p.build.schema}`);
      return {
        summary: `${map.models.length} models; schemas ${schemas.join(', ')}`,
        state: {
          artifactsDir: artifactsDirOf(input),
          relations: await artifactRef(file),
          artifacts: { [stepId]: { dir } },
        },
      };
    },

    async syncFromProd({
      input,
      state,
      args,
    }: StepRequest<{ buildTarget: string; only?: string[] }>): Promise<StepOutcome> {
      const map = await readArtifact<RelationMap>(requireRelations(state));
      return warehouse(input, input.targets.prod, async (w) => {
        const tables: Array<{ from: Relation; to: Relation }> = [];
        const drop: Relation[] = [];
        const models = args.only ? map.models.filter((m) => m.mirror) : map.models;
        for (const model of models.filter(
          (m) => m.materialized === 'table' || m.materialized === 'incremental',
        )) {
          if ((await w.relationKind(model.prod)) === 'table')
            tables.push({ from: model.prod, to: model.build });
          else if ((await w.relationKind(model.build)) !== 'absent') drop.push(model.build);
        }
        if (!args.only) {
          // A full sync leaves the build location holding the project's models and nothing else, so a
          // model removed from the project is not carried into prod by a swap.
          const known = new Set(map.models.map((m) => relationName(m.build)));
          for (const pair of schemaPairs(map))
            for (const { relation } of await w.listRelations(pair.build))
              if (!known.has(relationName(relation))) drop.push(relation);
        }
        const raw = map.models.filter((m) => m.mirror);
        if (
          raw.length > 0 &&
          !tables.some((t) => raw.some((m) => relationName(m.prod) === relationName(t.from)))
        ) {
          throw ApplicationFailure.nonRetryable(
            `prod has no raw layer yet: run \`dbt-deploy mirror refresh --env ${input.env}\` first`,
            'ConfigError',
          );
        }
        await w.replaceRelations({ tables, views: [], drop });
        const dropped = drop.length > 0 ? `, dropped ${drop.length} that prod does not have` : '';
        return { summary: `copied ${tables.length} tables from prod into "${args.buildTarget}"${dropped}` };
      });
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
        parseCacheOf(input),
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
          ...(input.mirror ? ['--exclude', ...input.mirror.select] : []),
          '--output',
          'json',
          '--output-keys',
          'unique_id name database schema alias config',
        ],
        dir,
      );
      let publishSet: PublishSet;
      try {
        publishSet = toPublishSet(manifest, listed.listed);
      } catch (error) {
        if (error instanceof UnpublishableModel)
          throw ApplicationFailure.nonRetryable(error.message, error.name);
        throw error;
      }
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

    async selectPublishSet({
      input,
      state,
      args,
    }: StepRequest<{ buildStepId: string; prodTarget: string; scope: PublishScope }>): Promise<StepOutcome> {
      const map = await readArtifact<RelationMap>(requireRelations(state));
      const runResults = await readArtifact<RunResults>(
        requireArtifact(state, args.buildStepId, 'runResults'),
      );
      let publishSet: PublishSet;
      try {
        publishSet = publishSetOf(map, runResults, args.scope, input.publishTags);
      } catch (error) {
        if (error instanceof UnpublishableModel)
          throw ApplicationFailure.nonRetryable(error.message, error.name);
        throw error;
      }
      if (args.scope === 'all') {
        const drop = await warehouse(input, args.prodTarget, (w) => relationsNotInProject(w, map));
        if (drop.length > 0) publishSet = { ...publishSet, drop };
      }
      const count = publishSet.tables.length + publishSet.views.length;
      if (count === 0) {
        const blocked = 'the build produced no model to publish';
        return { summary: blocked, blocked };
      }
      const dropping = publishSet.drop?.length ? `, ${publishSet.drop.length} to drop` : '';
      return {
        summary: `${publishSet.tables.length} tables, ${publishSet.views.length} views to publish${dropping}`,
        state: { publishSet },
      };
    },

    async backupProd({
      input,
      state,
      args,
    }: StepRequest<{ prodTarget: string; operation?: BackupOperation }>): Promise<StepOutcome> {
      const relations = state.restoreFrom
        ? state.restoreFrom.entries.map((e) => e.prod)
        : relationsOf(requirePublishSet(state));
      const label = {
        env: input.env,
        operation: args.operation ?? 'deploy',
        createdAt: new Date().toISOString(),
      };
      return warehouse(input, args.prodTarget, async (w) => {
        const backup = await w.backup(input.deployId, relations, label);
        const kept = backup.entries.filter((e) => e.kind !== 'absent').length;
        return {
          summary: `kept ${kept} of ${relations.length} relations in ${backup.location.schema}`,
          state: { backup },
        };
      });
    },

    async publishTables({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const { tables } = requirePublishSet(state);
      requireOneWarehouse(input);
      await warehouse(input, args.prodTarget, (w) =>
        w.replaceRelations({
          tables: tables.map((t) => ({ from: t.staging, to: t.prod })),
          views: [],
          drop: [],
        }),
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
      await dbt(
        parseCacheOf(input),
        input,
        args.prodTarget,
        ['run', '--target', args.prodTarget, '--select', ...names],
        dir,
      );
      const results = summarizeRunResults(
        await readArtifact<RunResults>(await artifactRef(join(dir, 'run_results.json'))),
      );
      if (!results.passed) {
        const failed = results.blocking.map((n) => `${n.name}: ${n.message ?? n.status}`).join('; ');
        throw ApplicationFailure.nonRetryable(`re-creating views in prod failed: ${failed}`, 'PublishFailed');
      }
      return { summary: `re-created ${views.length} views: ${names.join(', ')}` };
    },

    async publishRelations({
      input,
      state,
      args,
    }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const publishSet = requirePublishSet(state);
      const map = await readArtifact<RelationMap>(requireRelations(state));
      requireOneWarehouse(input);
      const sqlOf = new Map(map.models.map((m) => [m.uniqueId, m.prodSql]));
      const views = publishSet.views.map((view) => {
        const sql = sqlOf.get(view.uniqueId);
        if (!sql) throw ApplicationFailure.nonRetryable(`no compiled SQL for view ${view.name}`, 'PlanError');
        return { to: view.prod, sql };
      });
      await warehouse(input, args.prodTarget, (w) =>
        w.replaceRelations({
          tables: publishSet.tables.map((t) => ({ from: t.staging, to: t.prod })),
          views,
          drop: publishSet.drop ?? [],
        }),
      );
      const dropped = publishSet.drop?.length ? `, dropped ${publishSet.drop.length}` : '';
      return {
        summary: `published ${publishSet.tables.length} tables and ${views.length} views${dropped}`,
      };
    },

    async swapSchemas({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const publishSet = requirePublishSet(state);
      const map = await readArtifact<RelationMap>(requireRelations(state));
      requireOneWarehouse(input);
      const swaps = schemaPairs(map).map((p) => ({ prod: p.prod.schema, staging: p.build.schema }));
      const label = { env: input.env, operation: 'deploy' as const, createdAt: new Date().toISOString() };
      return warehouse(input, args.prodTarget, async (w) => {
        // Staging disappears into prod with the swap: what it held is recorded first, to verify against.
        const expected: Fingerprint[] = [];
        for (const model of [...publishSet.tables, ...publishSet.views]) {
          const found = await w.fingerprint(model.staging);
          expected.push({ ...found, relation: model.prod });
        }
        const backup = await w.swapSchemas(input.deployId, swaps, label);
        const names = swaps.map((s) => `${s.staging} → ${s.prod}`).join(', ');
        return {
          summary: `swapped ${names}; old prod kept as ${backup.location.schema}`,
          state: { backup, expected },
        };
      });
    },

    async verifyProd({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const publishSet = requirePublishSet(state);
      const models = [...publishSet.tables, ...publishSet.views];
      const mismatches = await warehouse(input, args.prodTarget, async (w) => {
        const found: string[] = [];
        for (const model of models) {
          Context.current().heartbeat({ verifying: model.name });
          const prod = await w.fingerprint(model.prod);
          const expected =
            state.expected?.find((f) => relationName(f.relation) === relationName(model.prod)) ??
            (await w.fingerprint(model.staging));
          if (prod.rows !== expected.rows || prod.checksum !== expected.checksum) {
            found.push(
              `${model.name}: prod ${prod.rows} rows/${prod.checksum}, staging ${expected.rows} rows/${expected.checksum}`,
            );
          }
        }
        for (const relation of publishSet.drop ?? [])
          if ((await w.relationKind(relation)) !== 'absent')
            found.push(`${relationName(relation)} was not dropped`);
        return found;
      });
      if (mismatches.length > 0) {
        const blocked = `verify failed, prod differs from staging: ${mismatches.join('; ')}`;
        return { summary: blocked, blocked };
      }
      // A mirror refresh built only the raw layer: its manifest is no state to compare deploys with.
      if (input.strategy !== 'mirror') await recordProdState(state, prodStateDirOf(input));
      const pruned = await warehouse(input, args.prodTarget, (w) => pruneBackups(w, input));
      return {
        summary: `${models.length} relations match staging (rows and checksum)${pruned}`,
        state: { published: models.map((m) => relationName(m.prod)) },
      };
    },

    async findBackup({ input, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const database = databaseOf(connection(input, args.prodTarget));
      const backups = (await warehouse(input, args.prodTarget, (w) => w.listBackups(database))).filter(
        (b) => b.env === input.env,
      );
      const wanted = input.rollbackTo;
      const found = wanted
        ? backups.find((b) => b.deployId === wanted)
        : backups.find((b) => (b.operation ?? 'deploy') === 'deploy');
      if (!found) {
        const known = backups.map((b) => `${b.deployId} (${b.operation ?? 'deploy'}, ${b.createdAt})`);
        const which = wanted ? `deploy ${wanted}` : `any deploy to "${input.env}"`;
        throw ApplicationFailure.nonRetryable(
          `no backup of ${which} is kept${known.length ? ` (kept: ${known.join(', ')})` : ' (no backups are kept)'}`,
          'BackupNotFound',
        );
      }
      return {
        summary: `backup of ${found.deployId}, taken ${found.createdAt}: ${found.entries.length} relations`,
        state: { restoreFrom: found },
      };
    },

    async restoreBackup({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const from = requireRestoreFrom(state);
      await warehouse(input, args.prodTarget, (w) => w.restore(from));
      return { summary: `restored ${from.entries.length} relations from ${from.location.schema}` };
    },

    async verifyRestore({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const from = requireRestoreFrom(state);
      const mismatches = await warehouse(input, args.prodTarget, async (w) => {
        const found: string[] = [];
        for (const entry of from.entries) {
          const kind = await w.relationKind(entry.prod);
          if (kind !== entry.kind) {
            found.push(`${relationName(entry.prod)} is ${kind}, the backup had ${entry.kind}`);
          } else if (entry.kind === 'table' && entry.copy) {
            const [prod, copy] = [await w.fingerprint(entry.prod), await w.fingerprint(entry.copy)];
            if (prod.rows !== copy.rows || prod.checksum !== copy.checksum)
              found.push(`${relationName(entry.prod)}: ${prod.rows} rows, the backup has ${copy.rows}`);
          }
        }
        return found;
      });
      if (mismatches.length > 0) {
        const blocked = `verify failed, prod differs from the backup: ${mismatches.join('; ')}`;
        return { summary: blocked, blocked };
      }
      // Prod is an older version now: the next state:modified selection must not compare with the newer one.
      await rm(join(prodStateDirOf(input), 'manifest.json'), { force: true });
      const pruned = await warehouse(input, args.prodTarget, (w) => pruneBackups(w, input, [from.deployId]));
      return {
        summary: `${from.entries.length} relations match the backup of ${from.deployId}${pruned}`,
        state: {
          published: from.entries.filter((e) => e.kind !== 'absent').map((e) => relationName(e.prod)),
        },
      };
    },

    async restoreProd({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const backup = state.backup;
      if (!backup) return { summary: 'no backup was taken: nothing to restore' };
      await warehouse(input, args.prodTarget, (w) => w.restore(backup));
      return { summary: `restored ${backup.entries.length} relations from ${backup.location.schema}` };
    },

    async unswapSchemas({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      // A swap that committed but whose activity then failed left no backup in the state: look it up.
      const backup =
        state.backup ??
        (await warehouse(input, args.prodTarget, async (w) =>
          (await w.listBackups(databaseOf(connection(input, args.prodTarget)))).find(
            (b) => b.deployId === input.deployId,
          ),
        ));
      if (!backup?.swapped) return { summary: 'no swap happened: nothing to undo' };
      await warehouse(input, args.prodTarget, (w) => w.unswapSchemas(backup));
      return {
        summary: `swapped back: ${backup.swapped.map((s) => s.prod).join(', ')} is the old prod again`,
      };
    },

    async writeReport({
      input,
      result,
    }: {
      input: DeployInput;
      result: DeployResult;
    }): Promise<{ report: string }> {
      return { report: await writeDeployReport(artifactsDirOf(input), input, result) };
    },

    async dropBackup({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const backup = state.backup;
      if (!backup) return { summary: 'no backup to drop' };
      await warehouse(input, args.prodTarget, (w) => w.dropBackup(backup));
      return { summary: `dropped ${backup.location.schema}` };
    },
  };
}

const LS_MODELS = [
  'ls',
  '--resource-type',
  'model',
  '--output',
  'json',
  '--output-keys',
  'unique_id name database schema alias',
];

/** The flags a build step passes to dbt, and a note for its summary. */
function buildSelection(
  state: DeployState,
  args: BuildArgs,
  prodStateDir: string,
): { flags: string[]; note: string } {
  const exclude = args.exclude?.length ? ['--exclude', ...args.exclude] : [];
  if (args.selectPublishSet) {
    const { tables, views } = requirePublishSet(state);
    const names = [...tables, ...views].map((m) => m.name);
    const defer = args.deferToStep
      ? ['--defer', '--favor-state', '--state', requireArtifactDir(state, args.deferToStep)]
      : [];
    return { flags: ['--select', ...names, ...defer], note: ` (${names.length} selected models)` };
  }
  if (!args.select?.length) return { flags: exclude, note: '' };
  const needsState = args.select.some((s) => s.includes('state:'));
  if (needsState && args.stateAware) {
    if (!existsSync(join(prodStateDir, 'manifest.json'))) {
      // Nothing was published before: every model counts as changed.
      return { flags: exclude, note: ' (no earlier deploy to compare with: every model)' };
    }
    return { flags: ['--select', ...args.select, '--state', prodStateDir, ...exclude], note: '' };
  }
  return { flags: ['--select', ...args.select, ...exclude], note: '' };
}

/**
 * After a success, keeps the newest `backups.keep` backups of the environment (this operation's own
 * included) and drops the rest; `protect` names backups that must stay whatever their age.
 */
async function pruneBackups(
  w: WarehouseAdapter,
  input: DeployInput,
  protect: string[] = [],
): Promise<string> {
  const keep = input.backupsKeep ?? 3;
  const database = databaseOf(connection(input, input.targets.prod));
  const all = (await w.listBackups(database)).filter((b) => b.env === input.env);
  const stale = all.slice(keep).filter((b) => !protect.includes(b.deployId));
  try {
    for (const backup of stale) await w.dropBackup(backup);
  } catch (error) {
    // Retention is housekeeping: failing it must not roll back a deploy that was verified.
    return `; could not drop older backups (${error instanceof Error ? error.message : String(error)})`;
  }
  return stale.length > 0 ? `; dropped ${stale.length} older backups (backups.keep: ${keep})` : '';
}

/**
 * Relations in the project's prod schemas that no model produces (a model removed from the project):
 * blue-green owns those schemas, so its publish drops them, keeping them in the backup.
 */
async function relationsNotInProject(w: WarehouseAdapter, map: RelationMap): Promise<Relation[]> {
  const known = new Set(map.models.map((m) => relationName(m.prod)));
  const drop: Relation[] = [];
  for (const pair of schemaPairs(map))
    for (const { relation } of await w.listRelations(pair.prod))
      if (!known.has(relationName(relation))) drop.push(relation);
  return drop;
}

/** After a publish, the build's manifest becomes the state the next `state:modified` selection compares with. */
async function recordProdState(state: DeployState, dir: string): Promise<void> {
  const manifest = state.artifacts['build']?.manifest;
  if (!manifest) return;
  await mkdir(dir, { recursive: true });
  await copyFile(new URL(manifest.uri), join(dir, 'manifest.json'));
}

function relationsOf(publishSet: PublishSet): Relation[] {
  return [...publishSet.tables, ...publishSet.views].map((m) => m.prod).concat(publishSet.drop ?? []);
}

function databaseOf(connection: WarehouseConnection): string {
  return connection.engine === 'postgres' ? connection.dbname : connection.database;
}

/** Publish copies between staging and prod inside one warehouse (one DuckDB file, one PostgreSQL database). */
function requireOneWarehouse(input: DeployInput): void {
  const staging = connection(input, input.targets.staging);
  const prod = connection(input, input.targets.prod);
  if (turnKey(staging) !== turnKey(prod)) {
    throw ApplicationFailure.nonRetryable(
      `staging and prod targets must be in the same warehouse (one DuckDB file, one PostgreSQL database) to publish by copy`,
      UnsupportedOperation.name,
    );
  }
}

function requireArtifactDir(state: DeployState, stepId: string): string {
  const dir = state.artifacts[stepId]?.dir;
  if (!dir) throw ApplicationFailure.nonRetryable(`step "${stepId}" left no artifacts`, 'PlanError');
  return dir;
}

function requireRelations(state: DeployState): ArtifactRef {
  if (!state.relations)
    throw ApplicationFailure.nonRetryable('no relation map was resolved before this step', 'PlanError');
  return state.relations;
}

function requireRestoreFrom(state: DeployState): BackupRef {
  if (!state.restoreFrom)
    throw ApplicationFailure.nonRetryable('no backup was found before this step', 'PlanError');
  return state.restoreFrom;
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
async function dbt(
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
    // Reported as a cancellation, not a failure: the workflow then knows the step was stopped on purpose.
    if (context.cancellationSignal.aborted)
      throw new CancelledFailure(`dbt ${args[0]} was stopped: the step was cancelled`);
    throw error;
  }
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
