/**
 * What a deploy publishes (deploy.yml `publish`), in the words plans and messages use and as the
 * flags dbt takes. Pure, so plans (made in workflow code for old histories) can use it.
 */
import type { DeployInput, PublishSelection } from './types.js';

/** The input's selection; inputs from before `publish` existed carry only their tags. */
export function publishSelectionOf(input: Pick<DeployInput, 'publish' | 'publishTags'>): PublishSelection {
  return input.publish ?? { tags: input.publishTags };
}

/** `tagged mart, utils`, `selected by path:models/marts`, `of selector "nightly"`: after "the models". */
export function describePublishSelection(selection: PublishSelection): string {
  if ('tags' in selection) return `tagged ${selection.tags.join(', ')}`;
  if ('select' in selection) return `selected by ${selection.select.join(' ')}`;
  return `of selector "${selection.selector}"`;
}

/** The deploy.yml key that says it, and its value as written, for messages that point there. */
export function publishSettingOf(selection: PublishSelection): string {
  if ('tags' in selection) return `publish.tags [${selection.tags.join(', ')}]`;
  if ('select' in selection) return `publish.select [${selection.select.join(', ')}]`;
  return `publish.select "${selection.selector}" (a selector of selectors.yml)`;
}

/** dbt's selection flags for it: `--select tag:a tag:b`, `--select <selectors>` or `--selector <name>`. */
export function publishSelectionFlags(selection: PublishSelection): string[] {
  if ('tags' in selection) return ['--select', ...selection.tags.map((tag) => `tag:${tag}`)];
  if ('select' in selection) return ['--select', ...selection.select];
  return ['--selector', selection.selector];
}

/**
 * The selection as `--select` strings, to add to another selection (clone-back's default); a YAML
 * selector cannot be combined with `--select`, so it adds nothing.
 */
export function publishSelectors(selection: PublishSelection): string[] {
  if ('tags' in selection) return selection.tags.map((tag) => `tag:${tag}`);
  if ('select' in selection) return selection.select;
  return [];
}
