/**
 * Where every model, seed and snapshot of the project lives in prod and in the location a deploy
 * builds in, resolved by dbt itself (so custom schema macros are honoured) before anything is built.
 * Kept as a file in the deploy's artifact folder; only its reference travels through history.
 */
import type { PublishScope } from '../workflows/plan.js';
import type { PublishedModel, PublishSet, Relation } from '../workflows/types.js';
import type { Manifest, ManifestNode, RunResults } from './artifacts.js';

/** The dbt resources a deploy maps: seeds and snapshots are tables too, filled by dbt from a CSV or the source's history. */
export type MappedResource = 'model' | 'seed' | 'snapshot';
export const MAPPED_RESOURCES: readonly MappedResource[] = ['model', 'seed', 'snapshot'];

export interface MappedModel {
  uniqueId: string;
  /** Absent in relation maps written before seeds and snapshots were mapped: those held models only. */
  resourceType?: MappedResource;
  name: string;
  /** dbt's `config.materialized`: `seed` and `snapshot` for those resources. */
  materialized: string;
  tags: string[];
  dependsOn: string[];
  prod: Relation;
  build: Relation;
  /** For views: the SELECT dbt compiled for prod, so a publish can create the view there itself. */
  prodSql?: string;
  /** Part of the raw layer a mirror refresh owns (deploy.yml `mirror.select`). */
  mirror: boolean;
}

export interface RelationMap {
  prodTarget: string;
  buildTarget: string;
  models: MappedModel[];
}

/** One line of `dbt ls --output json --output-keys unique_id name database schema alias [config]`. */
export interface ListedModel {
  unique_id: string;
  name: string;
  database: string;
  schema: string;
  alias: string | null;
  config?: { materialized: string };
}

/** The flags that make `dbt ls` print one `ListedModel` per line, and write no manifest (nobody's, and a second). */
export const LS_LISTED = [
  '--output',
  'json',
  '--output-keys',
  'unique_id name database schema alias',
  '--no-write-json',
];

/** What holds rows: copied by a sync and by a publish. */
export const TABLE_MATERIALIZATIONS: ReadonlySet<string> = new Set([
  'table',
  'incremental',
  'seed',
  'snapshot',
]);
const PUBLISHABLE_MATERIALIZATIONS: ReadonlySet<string> = new Set([...TABLE_MATERIALIZATIONS, 'view']);
const PUBLISHABLE_NAMES = 'table, incremental, view, seed, snapshot';

function resourceOf(uniqueId: string): MappedResource | undefined {
  const type = uniqueId.split('.')[0];
  return MAPPED_RESOURCES.find((r) => r === type);
}

/**
 * Seeds and snapshots go to prod with every deploy that publishes the project, whatever their tags: a
 * seed is reference data that published views may read, and a snapshot's history exists nowhere else.
 */
export function publishedWithEveryDeploy(model: Pick<MappedModel, 'uniqueId'>): boolean {
  const resource = resourceOf(model.uniqueId);
  return resource === 'seed' || resource === 'snapshot';
}

export function relationOf(node: {
  database: string | null;
  schema: string;
  alias: string | null;
  name: string;
}): Relation {
  return { database: node.database ?? '', schema: node.schema, identifier: node.alias ?? node.name };
}

/** Joins the prod manifest (from `dbt compile --target prod`) with where `dbt ls` says the build target puts each node. */
export function buildRelationMap(
  prodManifest: Manifest,
  buildListing: string[],
  mirrorIds: ReadonlySet<string>,
  targets: { prodTarget: string; buildTarget: string },
): RelationMap {
  const models: MappedModel[] = [];
  for (const line of buildListing) {
    const listed = JSON.parse(line) as ListedModel;
    const node = prodManifest.nodes[listed.unique_id];
    const resourceType = node && resourceOf(node.unique_id);
    if (!node || !resourceType || node.resource_type !== resourceType) continue;
    const materialized = node.config.materialized;
    if (materialized === 'ephemeral') continue;
    models.push({
      uniqueId: node.unique_id,
      resourceType,
      name: node.name,
      materialized,
      tags: node.tags,
      dependsOn: node.depends_on.nodes ?? [],
      prod: relationOf(node),
      build: relationOf(listed),
      ...(materialized === 'view' && node.compiled_code ? { prodSql: node.compiled_code } : {}),
      mirror: mirrorIds.has(node.unique_id),
    });
  }
  return { ...targets, models };
}

/** A manifest node in the shape `dbt ls --output json` prints it (materialization included). */
export function listedOf(node: ManifestNode): string {
  const { unique_id, name, database, schema, alias } = node;
  const config = { materialized: node.config.materialized };
  return JSON.stringify({ unique_id, name, database: database ?? '', schema, alias, config });
}

/**
 * The relation map of the `selected` nodes: where each lives in prod and its SQL from a manifest
 * compiled for prod (which selected them), and where the build put it from the build's manifest. A
 * selected node the build did not produce cannot be published.
 */
export function selectedRelationMap(
  prodManifest: Manifest,
  selected: Iterable<string>,
  buildManifest: Manifest,
  targets: { prodTarget: string; buildTarget: string },
): RelationMap {
  const listing: string[] = [];
  for (const unique_id of selected) {
    if (!resourceOf(unique_id)) continue;
    const built = buildManifest.nodes[unique_id];
    if (!built) throw new UnpublishableModel(`${unique_id} is in prod's selection but was not built`);
    listing.push(listedOf(built));
  }
  return buildRelationMap(prodManifest, listing, new Set(), targets);
}

/** A relation in prod and the one the build target uses in its place. */
export interface RelationPair {
  name: string;
  prod: Relation;
  build: Relation;
}

/**
 * Pairs each node `dbt ls` listed for the build target with its prod relation; nodes prod does not
 * know (`prodOf` answers undefined) are left out.
 */
export function pairListed(
  buildListing: string[],
  prodOf: (uniqueId: string) => Relation | undefined,
): RelationPair[] {
  const pairs: RelationPair[] = [];
  for (const line of buildListing) {
    const listed = JSON.parse(line) as ListedModel;
    const prod = prodOf(listed.unique_id);
    if (prod) pairs.push({ name: listed.name, prod, build: relationOf(listed) });
  }
  return pairs;
}

/** How many of a publish set's entries are models (seeds and snapshots alone are no deploy). */
export function modelsIn(publishSet: PublishSet): number {
  return [...publishSet.tables, ...publishSet.views].filter((m) => resourceOf(m.uniqueId) === 'model').length;
}

/** Each prod schema paired with the schema the build target uses in its place. */
export function schemaPairs(map: RelationMap): Array<{ prod: Relation; build: Relation }> {
  const pairs = new Map<string, { prod: Relation; build: Relation }>();
  for (const model of map.models) {
    const id = `${model.prod.database}.${model.prod.schema}`;
    if (!pairs.has(id)) {
      pairs.set(id, {
        prod: { ...model.prod, identifier: '' },
        build: { ...model.build, identifier: '' },
      });
    }
  }
  return [...pairs.values()];
}

export class UnpublishableModel extends Error {
  override readonly name = 'UnsupportedOperation';
}

/**
 * The models, seeds and snapshots a deploy publishes, in dependency order (a view is created after
 * what it reads). `tagged` adds every seed and snapshot (see `publishedWithEveryDeploy`); it takes the
 * models `selected` lists when given (what the check step listed), else those carrying a publish tag.
 */
export function publishSetOf(
  map: RelationMap,
  runResults: RunResults,
  scope: PublishScope,
  publishTags: string[],
  selected?: ReadonlySet<string>,
): PublishSet {
  const built = new Set(
    runResults.results
      .filter((r) => resourceOf(r.unique_id) !== undefined && r.status === 'success')
      .map((r) => r.unique_id),
  );
  let chosen: MappedModel[];
  if (scope === 'tagged') {
    chosen = map.models.filter(
      (m) =>
        !m.mirror &&
        (publishedWithEveryDeploy(m) ||
          (selected ? selected.has(m.uniqueId) : m.tags.some((t) => publishTags.includes(t)))),
    );
  } else {
    chosen = map.models.filter((m) => built.has(m.uniqueId));
  }
  const publishSet: PublishSet = { tables: [], views: [] };
  for (const model of dependencyOrder(chosen)) {
    if (!PUBLISHABLE_MATERIALIZATIONS.has(model.materialized)) {
      throw new UnpublishableModel(
        `${model.name} is materialized as "${model.materialized}", which cannot be published yet (${PUBLISHABLE_NAMES})`,
      );
    }
    const published: PublishedModel = {
      uniqueId: model.uniqueId,
      name: model.name,
      materialized: model.materialized as PublishedModel['materialized'],
      staging: model.build,
      prod: model.prod,
    };
    (model.materialized === 'view' ? publishSet.views : publishSet.tables).push(published);
  }
  return publishSet;
}

/** Parents before children, so views are created after the relations they read. */
export function dependencyOrder<T extends { uniqueId: string; dependsOn: string[] }>(models: T[]): T[] {
  const byId = new Map(models.map((m) => [m.uniqueId, m]));
  const ordered: T[] = [];
  const seen = new Set<string>();
  const visit = (model: T): void => {
    if (seen.has(model.uniqueId)) return;
    seen.add(model.uniqueId);
    for (const parent of model.dependsOn) {
      const found = byId.get(parent);
      if (found) visit(found);
    }
    ordered.push(model);
  };
  for (const model of models) visit(model);
  return ordered;
}

export type { ManifestNode };
