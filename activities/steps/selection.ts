/**
 * The first step of a deploy that publishes a selection (wac, wap): what `publish` selects, listed by
 * dbt itself before anything is built. A selection that matches no model stops the deploy here, with
 * nothing built and prod untouched. The listing is kept as a file and read by the later steps that
 * choose what to publish, so wac lists the project once, not again after its build.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { publishSelectionFlags, publishSettingOf } from '../../workflows/publish-selection.js';
import { artifactRef, readArtifact } from '../artifacts.js';
import { type ListedModel, MAPPED_RESOURCES } from '../relation-map.js';
import { dbt, type StepOutcome, type StepPaths, type StepRequest, type StepState } from '../step-context.js';

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
  const { artifactsDirOf, parseCacheOf } = paths;
  return {
    async checkPublishSelection({
      input,
      stepId,
      args,
    }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const dir = join(artifactsDirOf(input), stepId);
      const selection = input.publish ?? { tags: input.publishTags };
      const ls = (extra: string[], folder: string) =>
        dbt(
          parseCacheOf(input),
          input,
          args.prodTarget,
          [...LS_PUBLISHABLE, '--target', args.prodTarget, ...extra],
          join(dir, folder),
        );
      const mirrorExclude = input.mirror ? ['--exclude', ...input.mirror.select] : [];
      let lines: string[];
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
        lines = [...chosen.listed, ...always.listed].filter((line) => {
          const id = idOf(line);
          if (mirrored.has(id) || seen.has(id)) return false;
          seen.add(id);
          return true;
        });
      } else {
        // Seeds and snapshots go with every deploy, whatever their tags (see publishedWithEveryDeploy).
        const flags = publishSelectionFlags(selection);
        lines = (
          await ls([...flags, 'resource_type:seed', 'resource_type:snapshot', ...mirrorExclude], 'selected')
        ).listed;
      }
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
          artifacts: { [stepId]: { dir } },
        },
      };
    },
  };
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

function idOf(line: string): string {
  return (JSON.parse(line) as { unique_id: string }).unique_id;
}
