/**
 * What a build extends starts from exactly what prod holds: the sync copies prod's tables over the
 * build location's, and a build outside prod first copies prod's copy of every snapshot it runs. wac's
 * check step lists those snapshots before the build (beside its prod compile), so the build itself
 * starts dbt once.
 */
import { join } from 'node:path';
import type { BuildArgs } from '../../workflows/plan.js';
import type { ArtifactRef, DeployInput, Relation } from '../../workflows/types.js';
import { type Manifest, readArtifact, writeArtifact } from '../artifacts.js';
import {
  LS_LISTED,
  type ListedModel,
  pairListed,
  type RelationMap,
  type RelationPair,
  relationOf,
} from '../relation-map.js';
import { kindsOf, type WarehouseAdapter } from '../warehouses/adapter.js';
import { artifactAhead, dbt, type StepRequest, type StepState, warehouse } from '../step-context.js';
import { buildSelection } from './build-selection.js';

const LS_SNAPSHOTS = ['ls', '--resource-type', 'snapshot', ...LS_LISTED];

/** The snapshots a build will run, listed for its target before it: the file `buildSnapshots` names. */
interface SnapshotsAhead {
  target: string;
  /** The build's selection flags the listing was made with: a build with other flags lists again. */
  flags: string[];
  listed: string[];
}

/**
 * Copies each prod table over its build relation, or drops the build relation where prod has no such
 * table, so what the build extends (incremental models, snapshots) starts from exactly what prod holds.
 */
export async function upToProd(
  w: WarehouseAdapter,
  pairs: Array<Pick<RelationPair, 'prod' | 'build'>>,
): Promise<{ tables: Array<{ from: Relation; to: Relation }>; drop: Relation[] }> {
  const tables: Array<{ from: Relation; to: Relation }> = [];
  const drop: Relation[] = [];
  const kindOf = await kindsOf(w, [...pairs.map((p) => p.prod), ...pairs.map((p) => p.build)]);
  for (const pair of pairs) {
    if (kindOf(pair.prod) === 'table') tables.push({ from: pair.prod, to: pair.build });
    else if (kindOf(pair.build) !== 'absent') drop.push(pair.build);
  }
  return { tables, drop };
}

/**
 * Lists, before the build, the snapshots `build` will run in its target (`dbt ls` opens no warehouse,
 * so it runs beside the check step's compile), and writes the listing with the flags it used.
 */
export async function listSnapshotsAhead(
  parseCache: string,
  input: DeployInput,
  build: BuildArgs,
  prodStateDir: string,
  dir: string,
): Promise<ArtifactRef> {
  const { flags } = await buildSelection({}, build, prodStateDir);
  const { listed } = await dbt(
    parseCache,
    input,
    build.target,
    [...LS_SNAPSHOTS, '--target', build.target, ...flags],
    join(dir, 'build-snapshots'),
  );
  const ahead: SnapshotsAhead = { target: build.target, flags, listed };
  return writeArtifact(join(dir, 'build-snapshots.json'), ahead);
}

/** The listing made ahead of this build, when one was made for its target and flags. */
async function listedAhead(state: StepState, target: string, flags: string[]): Promise<string[] | undefined> {
  const ref = artifactAhead(state, 'buildSnapshots');
  if (!ref) return undefined;
  const ahead = await readArtifact<SnapshotsAhead>(ref);
  const same = ahead.target === target && JSON.stringify(ahead.flags) === JSON.stringify(flags);
  return same ? ahead.listed : undefined;
}

/**
 * Where each snapshot lives in prod: from the relation map, or the manifest compiled for prod before
 * the build (wac's check step), or else undefined (the caller lists prod's snapshots).
 */
async function prodLocations(
  state: StepState,
): Promise<((uniqueId: string) => Relation | undefined) | undefined> {
  if (state.relations) {
    const map = await readArtifact<RelationMap>(state.relations);
    const byId = new Map(map.models.map((m) => [m.uniqueId, m.prod]));
    return (id) => byId.get(id);
  }
  const ref = artifactAhead(state, 'prodManifest');
  if (!ref) return undefined;
  const { nodes } = await readArtifact<Manifest>(ref);
  return (id) => {
    const node = nodes[id];
    return node ? relationOf(node) : undefined;
  };
}

/**
 * A snapshot's history exists only in prod: a build outside prod first copies prod's copy of every
 * snapshot it is about to run, as the sync does for incremental models, or its publish would replace
 * prod's history with the build location's. Builds in prod and builds after a full sync skip this.
 * Where the check step listed the snapshots and compiled for prod, this starts no dbt; deploys whose
 * check ran before it (or plans without one) ask dbt here, as they always did.
 */
export async function snapshotsUpToProd(
  parseCache: string,
  { input, state, args }: StepRequest<BuildArgs>,
  flags: string[],
  dir: string,
): Promise<string> {
  if (args.target === input.targets.prod || state.syncedFromProd === args.target) return '';
  const ls = async (target: string, extra: string[], folder: string) =>
    (await dbt(parseCache, input, target, [...LS_SNAPSHOTS, '--target', target, ...extra], join(dir, folder)))
      .listed;
  const known = await prodLocations(state);
  // The build's own selection, so only the snapshots this build runs are touched. Without prod's
  // locations, prod's listing runs beside it: `dbt ls` needs no turn with the warehouse.
  const [listed, prodListed] = await Promise.all([
    (await listedAhead(state, args.target, flags)) ?? ls(args.target, flags, 'snapshots'),
    known ? undefined : ls(input.targets.prod, [], 'snapshots-prod'),
  ]);
  if (listed.length === 0) return '';
  const byId = new Map(
    (prodListed ?? []).map((line) => {
      const node = JSON.parse(line) as ListedModel;
      return [node.unique_id, relationOf(node)] as const;
    }),
  );
  const pairs = pairListed(listed, known ?? ((id) => byId.get(id)));
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
