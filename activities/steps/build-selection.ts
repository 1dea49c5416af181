/**
 * Which nodes a build step runs, as the flags it passes to dbt. Shared by the build and by wac's
 * check step, which lists the build's snapshots ahead of it with the very same flags.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildArgs } from '../../workflows/plan.js';
import { readArtifact } from '../artifacts.js';
import { artifactAhead, requireArtifactDir, requirePublishSet, type StepState } from '../step-context.js';

/** The flags a build step passes to dbt, and a note for its summary. */
export async function buildSelection(
  state: StepState,
  args: BuildArgs,
  prodStateDir: string,
): Promise<{ flags: string[]; note: string }> {
  const exclude = args.exclude?.length ? ['--exclude', ...args.exclude] : [];
  // A snapshot records the source as of each deploy and its code seldom changes, so a state-aware
  // selection (clone-back) would leave its history behind: every such build runs the snapshots too.
  const snapshots = args.stateAware ? ['resource_type:snapshot'] : [];
  if (args.selectPublishSet) {
    const { tables, views } = await requirePublishSet(state);
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
    // What prod lacks is not in the synced build location either: unchanged or not, it is built.
    const notInProd = artifactAhead(state, 'notInProd');
    const missing = notInProd ? await readArtifact<string[]>(notInProd) : [];
    return {
      flags: ['--select', ...args.select, ...snapshots, ...missing, '--state', prodStateDir, ...exclude],
      note: missing.length > 0 ? ` (and ${missing.length} that prod lacks)` : '',
    };
  }
  return { flags: ['--select', ...args.select, ...snapshots, ...exclude], note: '' };
}
