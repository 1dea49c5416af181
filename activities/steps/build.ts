/**
 * The steps before anything is published: resolve where models, seeds and snapshots live, bring the
 * build location up to prod, build and audit with dbt, and choose what to publish.
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { BuildArgs, PublishScope } from '../../workflows/plan.js';
import { describePublishSelection, publishSelectionOf } from '../../workflows/publish-selection.js';
import type { ArtifactRef, DeployInput, PublishSet, Relation } from '../../workflows/types.js';
import {
  artifactRef,
  type Manifest,
  readArtifact,
  type RunResults,
  summarizeRunResults,
  writeArtifact,
} from '../artifacts.js';
import {
  buildRelationMap,
  LS_LISTED,
  MAPPED_RESOURCES,
  modelsIn,
  publishSetOf,
  type RelationMap,
  schemaPairs,
  selectedRelationMap,
  TABLE_MATERIALIZATIONS,
  UnpublishableModel,
} from '../relation-map.js';
import { blockingSummary, explainAudit } from '../audit-reason.js';
import { kindsOf, relationName, type WarehouseAdapter } from '../warehouses/adapter.js';
import {
  artifactAhead,
  dbt,
  publishedState,
  pruneBackups,
  recordProdState,
  relationsOf,
  requireArtifact,
  requirePublishSet,
  requireRelations,
  type StepArtifacts,
  type StepOutcome,
  type StepPaths,
  type StepRequest,
  type StepState,
  warehouse,
} from '../step-context.js';
import { buildSelection } from './build-selection.js';
import { idOf, publishedIdsOf, publishListingOf } from './selection.js';
import { snapshotsUpToProd, upToProd } from './up-to-prod.js';

export function buildSteps(paths: StepPaths) {
  const { artifactsDirOf, prodStateDirOf, parseCacheOf } = paths;
  return {
    async dbtBuild({ input, state, stepId, args }: StepRequest<BuildArgs>): Promise<StepOutcome> {
      const dir = join(artifactsDirOf(input), stepId);
      const selection = await buildSelection(state, args, prodStateDirOf(input));
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
          const why = await explainAudit(audit, state.artifacts?.[args.buildStepId]?.manifest);
          return { summary: blockingSummary(audit), blocked: `prod build failed: ${why}` };
        }
        const published = relationsOf(await requirePublishSet(state)).map(relationName);
        await recordProdState(state, prodStateDirOf(input));
        const pruned = await warehouse(input, input.targets.prod, (w) => pruneBackups(w, input));
        return {
          summary: `${models} models and ${tests} tests passed in prod${pruned}`,
          state: publishedState(published),
        };
      }
      if (audit.passed) return { summary: `${models} models and ${tests} tests passed`, state: { audit } };
      // The failures first, with dbt's words, then how many were skipped because of them.
      const why = await explainAudit(audit, state.artifacts?.[args.buildStepId]?.manifest);
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
        // A manifest compiled for prod holds every node's prod relation, compiled or not; only views
        // need their SELECT for prod, so only they are compiled (on a large project, most models are
        // tables, and their introspective macros would query prod for nothing).
        dbt(
          parseCacheOf(input),
          input,
          args.prodTarget,
          ['compile', '--target', args.prodTarget, '--select', 'config.materialized:view'],
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
      stepId,
      args,
    }: StepRequest<{ buildTarget: string; only?: string[] }>): Promise<StepOutcome> {
      const map = await readArtifact<RelationMap>(requireRelations(state));
      return warehouse(input, input.targets.prod, async (w) => {
        const stepDir = join(artifactsDirOf(input), stepId);
        if (!args.only) {
          const cloned = await cloneBuildDatabase(w, input, map);
          if (cloned)
            return {
              summary: cloned,
              state: {
                syncedFromProd: args.buildTarget,
                ...(await missingFromProd(map, await prodTablesOf(w, map), stepId, stepDir)),
              },
            };
        }
        const models = args.only ? map.models.filter((m) => m.mirror) : map.models;
        const { tables, drop } = await upToProd(
          w,
          models.filter((m) => TABLE_MATERIALIZATIONS.has(m.materialized)),
        );
        if (!args.only) drop.push(...(await relationsNotInProject(w, map, 'build')));
        requireRawLayer(
          input,
          map,
          tables.map((t) => t.from),
        );
        await w.replaceRelations({ tables, views: [], drop });
        const dropped = drop.length > 0 ? `, dropped ${drop.length} that prod does not have` : '';
        return {
          summary: `copied ${tables.length} tables from prod into "${args.buildTarget}"${dropped}`,
          // The raw layer alone leaves the build's snapshots to the build step.
          ...(args.only
            ? {}
            : {
                state: {
                  syncedFromProd: args.buildTarget,
                  ...(await missingFromProd(
                    map,
                    tables.map((t) => t.from),
                    stepId,
                    stepDir,
                  )),
                },
              }),
        };
      });
    },

    async resolvePublishSet({
      input,
      state,
      stepId,
      args,
    }: StepRequest<{ buildStepId: string; prodTarget: string }>) {
      const runResults = await readArtifact<RunResults>(
        requireArtifact(state, args.buildStepId, 'runResults'),
      );
      // A plan that checked `publish` before its build listed what it selects then.
      const checked = await publishListingOf(state);
      // A deploy that resolved every relation before building (wac with a mirror) needs no dbt here.
      const relations =
        state.relations ??
        (await selectionMap(
          parseCacheOf(input),
          { input, state, stepId, args },
          artifactsDirOf(input),
          checked,
        ));
      let publishSet: PublishSet;
      try {
        const map = await readArtifact<RelationMap>(relations);
        publishSet = publishSetOf(map, runResults, 'tagged', input.publishTags, await publishedIdsOf(state));
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
        // The map carries the views' SQL compiled for prod: publishing them needs no dbt run.
        state: {
          publishSetRef: await writeArtifact(
            join(artifactsDirOf(input), stepId, PUBLISH_SET_FILE),
            publishSet,
          ),
          relations,
        },
      };
    },

    async selectPublishSet({
      input,
      state,
      stepId,
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
        const drop = await warehouse(input, args.prodTarget, (w) => relationsNotInProject(w, map, 'prod'));
        if (drop.length > 0) publishSet = { ...publishSet, drop };
      }
      if (modelsIn(publishSet) === 0) {
        const blocked = 'the build produced no model to publish';
        return { summary: blocked, blocked };
      }
      const dropping = publishSet.drop?.length ? `, ${publishSet.drop.length} to drop` : '';
      const file = join(artifactsDirOf(input), stepId, PUBLISH_SET_FILE);
      return {
        summary: `${publishSet.tables.length} tables, ${publishSet.views.length} views to publish${dropping}`,
        state: { publishSetRef: await writeArtifact(file, publishSet) },
      };
    },
  };
}

/** The publish set, in the folder of the step that selected it; steps after it read the file. */
const PUBLISH_SET_FILE = 'publish-set.json';

const LS_MODELS = ['ls', '--resource-type', ...MAPPED_RESOURCES, ...LS_LISTED];

/**
 * The tables and seeds of the project that prod lacks, because an earlier deploy published only some
 * of them (wac publishes its tagged models): the sync leaves them out of the build location, so a
 * build of only what changed would read relations that are not there. Their names go to a file the
 * build step adds to its selection (see buildSelection).
 */
async function missingFromProd(
  map: RelationMap,
  prodTables: Relation[],
  stepId: string,
  dir: string,
): Promise<Partial<Pick<StepState, 'artifacts'>>> {
  const inProd = new Set(prodTables.map(relationName));
  // Snapshots are left out: every state-aware build runs them anyway.
  const missing = map.models
    .filter((m) => TABLE_MATERIALIZATIONS.has(m.materialized) && m.resourceType !== 'snapshot')
    .filter((m) => !inProd.has(relationName(m.prod)))
    .map((m) => m.name);
  if (missing.length === 0) return {};
  const notInProd = await writeArtifact(join(dir, 'not-in-prod.json'), missing);
  return { artifacts: { [stepId]: { dir, notInProd } } };
}

/** Prod's tables among the project's relations, where the sync copied none to find them (a clone). */
async function prodTablesOf(w: WarehouseAdapter, map: RelationMap): Promise<Relation[]> {
  const kindOf = await kindsOf(
    w,
    map.models.map((m) => m.prod),
  );
  return map.models.filter((m) => kindOf(m.prod) === 'table').map((m) => m.prod);
}

/** A build from the raw layer needs prod to hold it: `prodTables` are prod's tables the sync found. */
function requireRawLayer(input: DeployInput, map: RelationMap, prodTables: Relation[]): void {
  const raw = map.models.filter((m) => m.mirror);
  if (raw.length > 0 && !prodTables.some((t) => raw.some((m) => relationName(m.prod) === relationName(t)))) {
    throw ApplicationFailure.nonRetryable(
      `prod has no raw layer yet: run \`dbt-deploy mirror refresh --env ${input.env}\` first`,
      'ConfigError',
    );
  }
}

/**
 * Where the engine clones whole databases and staging is a database of its own (Snowflake), the
 * build database becomes a zero-copy clone of prod's in one statement instead of table by table;
 * then, as after any full sync, it holds the project's models and nothing else. Undefined where the
 * engine or the layout does not allow it.
 */
async function cloneBuildDatabase(
  w: WarehouseAdapter,
  input: DeployInput,
  map: RelationMap,
): Promise<string | undefined> {
  if (!w.cloneBuildDatabase) return undefined;
  const pairs = schemaPairs(map).map((p) => ({ prod: p.prod, staging: p.build }));
  const owner = { project: input.project, env: input.env, deployId: input.deployId };
  const clone = await w.cloneBuildDatabase(pairs, owner, { wholeDatabase: input.strategy === 'blue-green' });
  if (!clone) return undefined;
  const prodTables: Relation[] = [];
  for (const model of map.models.filter((m) => m.mirror))
    if ((await w.relationKind(model.prod)) === 'table') prodTables.push(model.prod);
  requireRawLayer(input, map, prodTables);
  const drop = await relationsNotInProject(w, map, 'build');
  await w.replaceRelations({ tables: [], views: [], drop });
  const how = {
    cloned: 'cloned',
    kept: 'already cloned by this deploy:',
    replaced: 'cloned (replacing an ended deploy’s)',
  }[clone.how];
  const dropped = drop.length > 0 ? `, dropped ${drop.length} that the project does not build` : '';
  return `${how} "${clone.prod}" into "${clone.staging}" in one zero-copy statement, with prod's grants${dropped}`;
}

/**
 * wac's selection as a relation map, written as the step's file: where each published node lives in
 * prod (custom schema macros honoured) and the views' SELECT for prod, from a manifest compiled for
 * prod; where the build put each one, from the build's manifest. The check step compiled for prod
 * before the build; for a deploy whose check did not (it ran before that change, or the plan has
 * none), this compiles here.
 */
async function selectionMap(
  parseCache: string,
  request: StepRequest<{ buildStepId: string; prodTarget: string }>,
  artifactsDir: string,
  checked: string[] | undefined,
): Promise<ArtifactRef> {
  const { input, state, stepId, args } = request;
  const dir = join(artifactsDir, stepId);
  const buildManifest = await readArtifact<Manifest>(requireArtifact(state, args.buildStepId, 'manifest'));
  const ahead = artifactAhead(state, 'prodManifest');
  const prod =
    ahead && checked
      ? { manifest: await readArtifact<Manifest>(ahead), selected: checked.map(idOf) }
      : await compileSelection(parseCache, input, args.prodTarget, dir, checked);
  const map = selectedRelationMap(prod.manifest, prod.selected, buildManifest, {
    prodTarget: args.prodTarget,
    buildTarget: input.targets.staging,
  });
  return writeArtifact(join(dir, 'relations.json'), map);
}

/**
 * `dbt compile --target prod` of wac's selection after its build, in one dbt start: the tagged models,
 * every seed and snapshot (see publishedWithEveryDeploy), minus the raw layer. Its manifest and the
 * nodes it selected, for `selectionMap`.
 */
async function compileSelection(
  parseCache: string,
  input: DeployInput,
  prodTarget: string,
  dir: string,
  checked: string[] | undefined,
): Promise<{ manifest: Manifest; selected: string[] }> {
  await dbt(
    parseCache,
    input,
    prodTarget,
    [
      'compile',
      '--target',
      prodTarget,
      '--select',
      // What the check step listed (any selector, seeds and snapshots included), by name; or, for a
      // plan without that step, the tagged models and every seed and snapshot.
      ...(checked
        ? checked.map((line) => (JSON.parse(line) as { name: string }).name)
        : [
            ...input.publishTags.map((tag) => `tag:${tag},resource_type:model`),
            'resource_type:seed',
            'resource_type:snapshot',
          ]),
      '--exclude',
      'resource_type:test',
      'resource_type:unit_test',
      ...(input.mirror?.select ?? []),
    ],
    dir,
  );
  const runResults = await readArtifact<RunResults>(await artifactRef(join(dir, 'run_results.json')));
  return {
    manifest: await readArtifact<Manifest>(await artifactRef(join(dir, 'manifest.json'))),
    selected: runResults.results.map((r) => r.unique_id),
  };
}

/**
 * Relations in the project's schemas on one side that no model produces (a model removed from the
 * project). In prod, blue-green owns those schemas, so its publish drops them, keeping them in the
 * backup; in the build location, a full sync drops them, so a swap never carries them into prod.
 */
async function relationsNotInProject(
  w: WarehouseAdapter,
  map: RelationMap,
  side: 'prod' | 'build',
): Promise<Relation[]> {
  const known = new Set(map.models.map((m) => w.dialect.relationKey(m[side])));
  const drop: Relation[] = [];
  for (const pair of schemaPairs(map))
    for (const { relation } of await w.listRelations(pair[side]))
      if (!known.has(w.dialect.relationKey(relation))) drop.push(relation);
  return drop;
}
