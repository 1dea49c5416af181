/**
 * The steps before anything is published: resolve where models live, bring the build location up to
 * prod, build and audit with dbt, and choose what to publish.
 */

import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { BuildArgs, PublishScope } from '../../workflows/plan.js';
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
  publishSetOf,
  type RelationMap,
  schemaPairs,
  toPublishSet,
  UnpublishableModel,
} from '../relation-map.js';
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

export function buildSteps(paths: StepPaths) {
  const { artifactsDirOf, prodStateDirOf, parseCacheOf } = paths;
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
