/**
 * The first step of a deploy that publishes a selection (wac, wap): what `publish` selects, listed by
 * dbt itself before anything is built. A selection that matches no model stops the deploy here, with
 * nothing built and prod untouched. The listing is kept as a file and read by the later steps that
 * choose what to publish, so wac lists the project once, not again after its build. wac's check also
 * compiles the selection for prod and lists the build's snapshots, so that neither its build nor its
 * choice of what to publish starts dbt for them (see `compiledAhead`).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildArgs } from '../../workflows/plan.js';
import {
  publishSelectionFlags,
  publishSelectionOf,
  publishSettingOf,
} from '../../workflows/publish-selection.js';
import type { DeployInput } from '../../workflows/types.js';
import { artifactRef, type Manifest, readArtifact, type RunResults } from '../artifacts.js';
import { type ListedModel, listedOf, MAPPED_RESOURCES } from '../relation-map.js';
import {
  dbt,
  type StepArtifacts,
  type StepOutcome,
  type StepPaths,
  type StepRequest,
  type StepState,
} from '../step-context.js';
import { listSnapshotsAhead } from './up-to-prod.js';

/** The keys wac's publish step needs of each node (as `resolvePublishSet` lists them). */
const LS_PUBLISHABLE = [
  'ls',
  '--resource-type',
  ...MAPPED_RESOURCES,
  '--output',
  'json',
  '--output-keys',
  'unique_id name database schema alias config',
];

export function selectionSteps(paths: StepPaths) {
  const { artifactsDirOf, parseCacheOf, prodStateDirOf } = paths;
  return {
    async checkPublishSelection({
      input,
      stepId,
      args,
    }: StepRequest<{ prodTarget: string; build?: BuildArgs }>): Promise<StepOutcome> {
      const dir = join(artifactsDirOf(input), stepId);
      const selection = publishSelectionOf(input);
      const context = { parseCache: parseCacheOf(input), input, prodTarget: args.prodTarget, dir };
      const { lines, ahead } =
        args.build && !input.mirror
          ? await compiledAhead(context, args.build, prodStateDirOf(input))
          : { lines: await listed(context), ahead: {} };
      const models = lines
        .map((line) => JSON.parse(line) as ListedModel)
        .filter((node) => node.unique_id.startsWith('model.') && node.config?.materialized !== 'ephemeral');
      if (models.length === 0) {
        const blocked = `${publishSettingOf(selection)} selects no model of ${input.project} to publish: stopped before the build, prod untouched (change publish in deploy.yml; \`dbt ls ${publishSelectionFlags(selection).join(' ')}\` shows what it selects)`;
        return { summary: blocked, blocked };
      }
      const file = join(dir, 'publish-listing.json');
      await writeFile(file, JSON.stringify(lines));
      const names = models.map((m) => m.name);
      const shown =
        names.length > 8 ? `${names.slice(0, 8).join(', ')} and ${names.length - 8} more` : names.join(', ');
      return {
        summary: `${models.length} models to publish: ${shown}`,
        state: {
          artifactsDir: artifactsDirOf(input),
          publishListing: await artifactRef(file),
          artifacts: { [stepId]: { dir, ...ahead } },
        },
      };
    },
  };
}

interface CheckContext {
  parseCache: string;
  input: DeployInput;
  prodTarget: string;
  dir: string;
}

/** What `publish` selects, with every seed and snapshot, minus the raw layer: `dbt ls` in prod. */
async function listed({ parseCache, input, prodTarget, dir }: CheckContext): Promise<string[]> {
  const selection = publishSelectionOf(input);
  const ls = (extra: string[], folder: string) =>
    dbt(
      parseCache,
      input,
      prodTarget,
      [...LS_PUBLISHABLE, '--target', prodTarget, ...extra],
      join(dir, folder),
    );
  const mirrorExclude = input.mirror ? ['--exclude', ...input.mirror.select] : [];
  if ('selector' in selection) {
    // dbt ignores --select and --exclude beside --selector: seeds, snapshots and the raw layer are
    // listed apart (`dbt ls` needs no turn with the warehouse, so all at once).
    const [chosen, always, raw] = await Promise.all([
      ls(publishSelectionFlags(selection), 'selected'),
      ls(['--select', 'resource_type:seed', 'resource_type:snapshot', ...mirrorExclude], 'always'),
      input.mirror ? ls(['--select', ...input.mirror.select], 'mirror') : undefined,
    ]);
    const mirrored = new Set((raw?.listed ?? []).map((line) => idOf(line)));
    const seen = new Set<string>();
    return [...chosen.listed, ...always.listed].filter((line) => {
      const id = idOf(line);
      if (mirrored.has(id) || seen.has(id)) return false;
      seen.add(id);
      return true;
    });
  }
  // Seeds and snapshots go with every deploy, whatever their tags (see publishedWithEveryDeploy).
  const flags = publishSelectionFlags(selection);
  return (await ls([...flags, 'resource_type:seed', 'resource_type:snapshot', ...mirrorExclude], 'selected'))
    .listed;
}

/**
 * wac's check does, before the build, the dbt work its build and its choice of what to publish would
 * otherwise each start dbt for: `dbt compile --target prod` of what `publish` selects, whose manifest
 * holds every node's prod relation (a manifest has the whole project) and the selected views' SQL for
 * prod, and beside it (`dbt ls` needs no turn with the warehouse) the snapshots the build will run,
 * listed for its target. The listing of what is published comes from the compile: the nodes it
 * selected, and every seed and snapshot. Without a raw layer only: a plan with one resolves every
 * relation in its own step.
 */
async function compiledAhead(
  context: CheckContext,
  build: BuildArgs,
  prodStateDir: string,
): Promise<{ lines: string[]; ahead: Pick<StepArtifacts, 'prodManifest' | 'buildSnapshots'> }> {
  const { parseCache, input, prodTarget, dir } = context;
  const selection = publishSelectionOf(input);
  // Tests come with the models they test; they need no SQL for prod (dbt ignores this beside --selector).
  const noTests =
    'selector' in selection ? [] : ['--exclude', 'resource_type:test', 'resource_type:unit_test'];
  const compiled = join(dir, 'prod');
  const [, buildSnapshots] = await Promise.all([
    dbt(
      parseCache,
      input,
      prodTarget,
      ['compile', '--target', prodTarget, ...publishSelectionFlags(selection), ...noTests],
      compiled,
    ),
    listSnapshotsAhead(parseCache, input, build, prodStateDir, dir),
  ]);
  const prodManifest = await artifactRef(join(compiled, 'manifest.json'));
  const manifest = await readArtifact<Manifest>(prodManifest);
  const results = await readArtifact<RunResults>(await artifactRef(join(compiled, 'run_results.json')));
  const selected = new Set(results.results.map((r) => r.unique_id));
  const lines = Object.values(manifest.nodes)
    .filter((node) => {
      const resource = MAPPED_RESOURCES.find((r) => r === node.resource_type);
      // Seeds and snapshots go with every deploy, whatever their tags (see publishedWithEveryDeploy).
      return resource !== undefined && (resource !== 'model' || selected.has(node.unique_id));
    })
    // In `dbt ls`'s order, so summaries name the models as before.
    .sort((a, b) => (a.unique_id < b.unique_id ? -1 : a.unique_id > b.unique_id ? 1 : 0))
    .map(listedOf);
  return { lines, ahead: { prodManifest, buildSnapshots } };
}

/** The `dbt ls` lines of what `publish` selects (with every seed and snapshot), when the check step listed them. */
export async function publishListingOf(state: StepState): Promise<string[] | undefined> {
  return state.publishListing ? readArtifact<string[]>(state.publishListing) : undefined;
}

/** The unique ids of the models the check step listed; undefined when the plan had no check step. */
export async function publishedIdsOf(state: StepState): Promise<ReadonlySet<string> | undefined> {
  const lines = await publishListingOf(state);
  return lines ? new Set(lines.map(idOf)) : undefined;
}

/** The unique id of one `dbt ls` line. */
export function idOf(line: string): string {
  return (JSON.parse(line) as { unique_id: string }).unique_id;
}
