/**
 * The steps before anything is published: resolve where models, seeds and snapshots live, bring the
 * build location up to prod, build and audit with dbt, and choose what to publish.
 */

import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { BuildArgs, PublishScope } from '../../workflows/plan.js';
import { describePublishSelection, publishSelectionOf } from '../../workflows/publish-selection.js';
import type { PublishSet, Relation } from '../../workflows/types.js';
import {
  artifactRef,
  type Manifest,
  readArtifact,
  type RunResults,
  summarizeRunResults,
} from '../artifacts.js';
import {
  buildRelationMap,
  type ListedModel,
  MAPPED_RESOURCES,
  modelsIn,
  pairListed,
  publishSetOf,
  type RelationMap,
  type RelationPair,
  relationOf,
  schemaPairs,
  TABLE_MATERIALIZATIONS,
  toPublishSet,
  UnpublishableModel,
} from '../relation-map.js';
import { blockingSummary, explainAudit } from '../audit-reason.js';
import { relationName, type WarehouseAdapter } from '../warehouses/adapter.js';
import {
  dbt,
  type DeployState,
  pruneBackups,
  recordProdState,
  relationsOf,
  requireArtifact,
  requireArtifactDir,
  requirePublishSet,
  requireRelations,
  type StepArtifacts,
  type StepOutcome,
  type StepPaths,
  type StepRequest,
  warehouse,
} from '../step-context.js';
import { publishedIdsOf, publishListingOf } from './selection.js';

export function buildSteps(paths: StepPaths) {
  const { artifactsDirOf, prodStateDirOf, parseCacheOf } = paths;
  return {
    async dbtBuild({ input, state, stepId, args }: StepRequest<BuildArgs>): Promise<StepOutcome> {
      const dir = join(artifactsDirOf(input), stepId);
      const selection = buildSelection(state, args, prodStateDirOf(input));
      const snapshots = await snapshotsUpToProd(
        parseCacheOf(input),
        { input, state, stepId, args },
        selection.flags,
        dir,
      );
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
        summary: `dbt build in "${args.target}"${selection.note}: ${done} nodes, ${failed} not passing${snapshots}`,
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
          const why = await explainAudit(audit, state.artifacts[args.buildStepId]?.manifest);
          return { summary: blockingSummary(audit), blocked: `prod build failed: ${why}` };
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
      // The failures first, with dbt's words, then how many were skipped because of them.
      const why = await explainAudit(audit, state.artifacts[args.buildStepId]?.manifest);
      return {
        summary: blockingSummary(audit),
        state: { audit },
        blocked: `audit failed, prod untouched: ${why}`,
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
      const count = (type: string) => map.models.filter((m) => (m.resourceType ?? 'model') === type).length;
      const others = ['seed', 'snapshot']
        .map((type) => (count(type) > 0 ? `, ${count(type)} ${type}s` : ''))
        .join('');
      return {
        summary: `${count('model')} models${others}; schemas ${schemas.join(', ')}`,
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
        const models = args.only ? map.models.filter((m) => m.mirror) : map.models;
        const { tables, drop } = await upToProd(
          w,
          models.filter((m) => TABLE_MATERIALIZATIONS.has(m.materialized)),
        );
        if (!args.only) {
          // A full sync leaves the build location holding the project's models and nothing else, so a
          // model removed from the project is not carried into prod by a swap.
          const known = new Set(map.models.map((m) => w.dialect.relationKey(m.build)));
          for (const pair of schemaPairs(map))
            for (const { relation } of await w.listRelations(pair.build))
              if (!known.has(w.dialect.relationKey(relation))) drop.push(relation);
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
        return {
          summary: `copied ${tables.length} tables from prod into "${args.buildTarget}"${dropped}`,
          // The raw layer alone leaves the build's snapshots to the build step.
          ...(args.only ? {} : { state: { syncedFromProd: args.buildTarget } }),
        };
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
      // dbt itself says where each node lives in prod, so custom schema macros are honoured. A plan that
      // checked `publish` before its build listed it then: that listing is reused, not made again.
      const checked = await publishListingOf(state);
      const listed = checked
        ? { listed: checked }
        : await dbt(
            parseCacheOf(input),
            input,
            args.prodTarget,
            [
              'ls',
              '--target',
              args.prodTarget,
              '--resource-type',
              ...MAPPED_RESOURCES,
              '--select',
              ...selection,
              // Seeds and snapshots go with every deploy, whatever their tags (see publishedWithEveryDeploy).
              'resource_type:seed',
              'resource_type:snapshot',
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
      if (modelsIn(publishSet) === 0) {
        const blocked = `no models ${describePublishSelection(publishSelectionOf(input))}: nothing to publish (check publish in deploy.yml)`;
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
      const selected = await publishedIdsOf(state);
      let publishSet: PublishSet;
      try {
        publishSet = publishSetOf(map, runResults, args.scope, input.publishTags, selected);
      } catch (error) {
        if (error instanceof UnpublishableModel)
          throw ApplicationFailure.nonRetryable(error.message, error.name);
        throw error;
      }
      if (args.scope === 'all') {
        const drop = await warehouse(input, args.prodTarget, (w) => relationsNotInProject(w, map));
        if (drop.length > 0) publishSet = { ...publishSet, drop };
      }
      if (modelsIn(publishSet) === 0) {
        const blocked = 'the build produced no model to publish';
        return { summary: blocked, blocked };
      }
      const dropping = publishSet.drop?.length ? `, ${publishSet.drop.length} to drop` : '';
      return {
        summary: `${publishSet.tables.length} tables, ${publishSet.views.length} views to publish${dropping}`,
        state: { publishSet },
      };
    },
  };
}

const LS_KEYS = ['--output', 'json', '--output-keys', 'unique_id name database schema alias'];
const LS_MODELS = ['ls', '--resource-type', ...MAPPED_RESOURCES, ...LS_KEYS];
const LS_SNAPSHOTS = ['ls', '--resource-type', 'snapshot', ...LS_KEYS];

/**
 * Copies each prod table over its build relation, or drops the build relation where prod has no such
 * table, so what the build extends (incremental models, snapshots) starts from exactly what prod holds.
 */
async function upToProd(
  w: WarehouseAdapter,
  pairs: Array<Pick<RelationPair, 'prod' | 'build'>>,
): Promise<{ tables: Array<{ from: Relation; to: Relation }>; drop: Relation[] }> {
  const tables: Array<{ from: Relation; to: Relation }> = [];
  const drop: Relation[] = [];
  for (const pair of pairs) {
    if ((await w.relationKind(pair.prod)) === 'table') tables.push({ from: pair.prod, to: pair.build });
    else if ((await w.relationKind(pair.build)) !== 'absent') drop.push(pair.build);
  }
  return { tables, drop };
}

/**
 * A snapshot's history exists only in prod: a build outside prod first copies prod's copy of every
 * snapshot it is about to run, as the sync does for incremental models, or its publish would replace
 * prod's history with the build location's. Builds in prod and builds after a full sync skip this;
 * plans without a resolve step (wac) ask dbt where the snapshots live.
 */
async function snapshotsUpToProd(
  parseCache: string,
  { input, state, args }: StepRequest<BuildArgs>,
  flags: string[],
  dir: string,
): Promise<string> {
  if (args.target === input.targets.prod || state.syncedFromProd === args.target) return '';
  const ls = (target: string, extra: string[], folder: string) =>
    dbt(parseCache, input, target, [...LS_SNAPSHOTS, '--target', target, ...extra], join(dir, folder));
  // The build's own selection, so only the snapshots this build runs are touched. Without a relation
  // map, prod's listing runs beside it: `dbt ls` needs no turn with the warehouse.
  const [listed, prodListed] = await Promise.all([
    ls(args.target, flags, 'snapshots'),
    state.relations ? undefined : ls(input.targets.prod, [], 'snapshots-prod'),
  ]);
  if (listed.listed.length === 0) return '';
  let prodOf: (uniqueId: string) => Relation | undefined;
  if (state.relations) {
    const map = await readArtifact<RelationMap>(state.relations);
    const byId = new Map(map.models.map((m) => [m.uniqueId, m.prod]));
    prodOf = (id) => byId.get(id);
  } else {
    const byId = new Map(
      (prodListed?.listed ?? []).map((line) => {
        const node = JSON.parse(line) as ListedModel;
        return [node.unique_id, relationOf(node)] as const;
      }),
    );
    prodOf = (id) => byId.get(id);
  }
  const pairs = pairListed(listed.listed, prodOf);
  const { tables } = await warehouse(input, input.targets.prod, async (w) => {
    const change = await upToProd(w, pairs);
    await w.replaceRelations({ ...change, views: [] });
    return change;
  });
  const copied = tables.length > 0 ? [`${tables.length} snapshots copied from prod first`] : [];
  const fresh = pairs.length - tables.length;
  const started = fresh > 0 ? [`${fresh} snapshots start afresh (prod has none yet)`] : [];
  return `; ${[...copied, ...started].join(', ')}`;
}

/** The flags a build step passes to dbt, and a note for its summary. */
function buildSelection(
  state: DeployState,
  args: BuildArgs,
  prodStateDir: string,
): { flags: string[]; note: string } {
  const exclude = args.exclude?.length ? ['--exclude', ...args.exclude] : [];
  // A snapshot records the source as of each deploy and its code seldom changes, so a state-aware
  // selection (clone-back) would leave its history behind: every such build runs the snapshots too.
  const snapshots = args.stateAware ? ['resource_type:snapshot'] : [];
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
    return {
      flags: ['--select', ...args.select, ...snapshots, '--state', prodStateDir, ...exclude],
      note: '',
    };
  }
  return { flags: ['--select', ...args.select, ...snapshots, ...exclude], note: '' };
}

/**
 * Relations in the project's prod schemas that no model produces (a model removed from the project):
 * blue-green owns those schemas, so its publish drops them, keeping them in the backup.
 */
async function relationsNotInProject(w: WarehouseAdapter, map: RelationMap): Promise<Relation[]> {
  const known = new Set(map.models.map((m) => w.dialect.relationKey(m.prod)));
  const drop: Relation[] = [];
  for (const pair of schemaPairs(map))
    for (const { relation } of await w.listRelations(pair.prod))
      if (!known.has(w.dialect.relationKey(relation))) drop.push(relation);
  return drop;
}
