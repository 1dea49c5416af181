/**
 * Steps several strategies share, so each strategy file reads as its process and every plan words
 * the same step the same way.
 */
import type { Capabilities } from '../../activities/warehouses/capabilities.js';
import type { BuildArgs, Compensation, PublishScope, Step } from '../plan.js';
import { describePublishSelection, publishSelectionOf, publishSettingOf } from '../publish-selection.js';
import type { BackupOperation, DeployInput } from '../types.js';

/**
 * The first step of a plan that publishes a selection (wac, wap): `dbt ls` of what `publish` selects,
 * so a selection that matches no model stops the deploy before the build. Inputs from before
 * `publish` existed plan without it, as they always did (their histories replay that plan). Given the
 * args of the `build` that follows, it also does the dbt work that build and the choice of what to
 * publish need from prod (see the step's `build` arg), beside its own.
 */
export function checkPublishStep(input: DeployInput, build?: BuildArgs): Step | undefined {
  if (!input.publish) return undefined;
  const { prod } = input.targets;
  const what = publishSettingOf(input.publish);
  return {
    id: 'check-publish',
    activity: 'checkPublishSelection',
    title: build
      ? `List the models ${what} selects and compile them for "${prod}", and the snapshots the build runs in "${build.target}"; stop before the build if there are none`
      : `List the models ${what} selects in "${prod}"; stop before the build if there are none`,
    touches: 'nothing',
    args: build ? { prodTarget: prod, build } : { prodTarget: prod },
  };
}

/** `tagged mart, utils`, `selected by path:models/marts`: what the plan's titles say is published. */
export function publishedModels(input: DeployInput): string {
  return describePublishSelection(publishSelectionOf(input));
}

export function resolveStep(input: DeployInput, buildTarget: string): Step {
  return {
    id: 'resolve',
    activity: 'resolveRelations',
    title: `Resolve where every model lives in "${input.targets.prod}" and "${buildTarget}"`,
    touches: 'nothing',
    args: { prodTarget: input.targets.prod, buildTarget },
  };
}

/**
 * Brings the build location up to prod before building, so incremental models build on top of what
 * prod holds now: without it a blue/green deploy at T+1 would build on a copy one deploy behind and
 * drop the rows prod received in between (the article's data-loss case).
 */
export function syncStep(input: DeployInput, buildTarget: string, capabilities: Capabilities): Step {
  const how = capabilities.zeroCopyClone ? 'Clone' : 'Copy';
  // A staging target in a database of its own is cloned whole (the sync activity decides by layout).
  const what = capabilities.cloneDatabases
    ? `"${input.targets.prod}" (its whole database in one statement when "${buildTarget}" has a database of its own, else the project's tables)`
    : `the project's tables from "${input.targets.prod}"`;
  return {
    id: 'sync',
    activity: 'syncFromProd',
    title: `${how} ${what} into "${buildTarget}" so the build starts from prod`,
    touches: 'staging',
    args: { buildTarget },
  };
}

/** With a mirror, the build location gets prod's raw layer instead of reading the live sources. */
export function syncRawLayerStep(input: DeployInput, buildTarget: string): Step | undefined {
  if (!input.mirror) return undefined;
  return {
    id: 'sync-raw',
    activity: 'syncFromProd',
    title: `Copy prod's raw layer (${input.mirror.select.join(' ')}) into "${buildTarget}": the build never reads live sources`,
    touches: 'staging',
    args: { buildTarget, only: input.mirror.select },
  };
}

export function buildStep(
  input: DeployInput,
  args: BuildArgs,
  what = 'every model',
): Extract<Step, { activity: 'dbtBuild' }> {
  const exclude = [...(args.exclude ?? []), ...(input.mirror?.select ?? [])];
  const fromRaw = input.mirror ? ' from the raw layer' : '';
  return {
    id: 'build',
    activity: 'dbtBuild',
    title: `Build and test ${what} in target "${args.target}"${fromRaw}`,
    touches: args.target === input.targets.prod ? 'prod' : 'staging',
    args: { ...args, ...(exclude.length > 0 ? { exclude } : {}) },
  };
}

export function auditStep(buildStepId = 'build'): Step {
  return {
    id: 'audit',
    activity: 'audit',
    title: 'Audit: every model succeeded and every test passed (warn and skipped block)',
    touches: 'nothing',
    args: { buildStepId },
  };
}

/** What a plan holds beyond its strategy's own process. */
export interface PlanOptions {
  /**
   * The diff of prod against the candidate, with deploy.yml's audit rules, before the cut-over (on
   * unless `false`). Off only where workflow code plans for a history recorded before plans were
   * fixed at the start: such a history must get the plan it was recorded with.
   */
  diff?: boolean;
}

/**
 * After the audit and the choice of what to publish, before anything touches prod or a backup (so the
 * approval gate sits after it): every relation to publish against its prod version, and the rules.
 */
export function diffStep(input: DeployInput, options: PlanOptions = {}): Step | undefined {
  if (options.diff === false) return undefined;
  const rules = input.audits?.length ?? 0;
  return {
    id: 'diff',
    activity: 'diffProd',
    title:
      `Diff every relation to publish against "${input.targets.prod}" (rows added, removed and changed by key, columns)` +
      (rules ? ` and check ${rules} audit rule${rules === 1 ? '' : 's'}` : ''),
    touches: 'nothing',
    args: { buildStepId: 'build', prodTarget: input.targets.prod },
  };
}

export function selectStep(input: DeployInput, scope: PublishScope): Step {
  const what = {
    all: 'every model the build produced (and prod relations it no longer has, to drop)',
    built: 'the models the build produced',
    tagged: `the models ${publishedModels(input)}`,
  }[scope];
  return {
    id: 'select',
    activity: 'selectPublishSet',
    title: `Select ${what}, and their relations in "${input.targets.prod}"`,
    touches: 'nothing',
    args: { buildStepId: 'build', prodTarget: input.targets.prod, scope },
  };
}

export function backupStep(input: DeployInput, operation: BackupOperation = 'deploy'): Step {
  return {
    id: 'backup',
    activity: 'backupProd',
    title: `Back up the "${input.targets.prod}" relations about to change`,
    touches: 'backup',
    // A deploy's backup keeps the same args as before this field existed, so recorded histories replay.
    args:
      operation === 'deploy'
        ? { prodTarget: input.targets.prod }
        : { prodTarget: input.targets.prod, operation },
    compensation: dropBackup(input),
  };
}

export function publishRelationsStep(input: DeployInput, from: string, capabilities: Capabilities): Step {
  const how = capabilities.transactionalDdl ? 'in one transaction' : 'one relation at a time';
  return {
    id: 'publish',
    activity: 'publishRelations',
    title: `Copy the selected tables from "${from}" to "${input.targets.prod}" and re-create its views, ${how}`,
    touches: 'prod',
    args: { prodTarget: input.targets.prod },
    compensation: restoreProd(input),
  };
}

export function verifyStep(input: DeployInput, against: string): Step {
  return {
    id: 'verify',
    activity: 'verifyProd',
    title: `Verify "${input.targets.prod}" matches ${against} (row count and checksum per relation)`,
    touches: 'nothing',
    args: { prodTarget: input.targets.prod },
  };
}

export function restoreProd(input: DeployInput): Compensation {
  return {
    activity: 'restoreProd',
    title: `restore "${input.targets.prod}" from the backup`,
    args: { prodTarget: input.targets.prod },
  };
}

export function dropBackup(input: DeployInput): Compensation {
  return {
    activity: 'dropBackup',
    title: 'drop this deploy’s backup',
    args: { prodTarget: input.targets.prod },
  };
}

/** Drops the `undefined` a conditional step builder returns when the step does not apply. */
export function steps(...list: Array<Step | undefined>): Step[] {
  return list.filter((step): step is Step => step !== undefined);
}

/**
 * A partial build still needs the views its models read: views hold no rows, so a copied prod view
 * would keep reading prod. Each selector gets its upstream views (`+<selector>,config.materialized:view`).
 */
export function withUpstreamViews(select: string[]): string[] {
  return select.flatMap((selector) => [selector, `+${selector},config.materialized:view`]);
}
