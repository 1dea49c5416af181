/**
 * The Temporal UI's words for an operation: a one-line static summary, which the workflow list shows
 * beside the shared workflow id `dbt-deploy-<project>-<env>` so runs can be told apart there, and
 * static details (markdown) on the run's page. Both are fixed when the run starts; the outcome is
 * added to the run's current details when it ends (workflows/deploy.ts). Pure: the client, the
 * schedule and the scheduled workflow all use it. They hold no vars, paths or credentials.
 */
import { describePublishSelection, publishSelectionOf } from './publish-selection.js';
import type { DeployInput, Operation } from './types.js';

/** Who started the run: `user@host`, or the schedule that did. */
export interface StartedBy {
  by?: string;
  schedule?: { id: string; cron?: string };
}

type SummaryInput = Omit<DeployInput, 'deployId'> & { deployId?: string };

/** `Deploy jaffle_shop to prod with wac: prod-20261130t142131-7ede, git 1a2b3c4d5e6f`. */
export function operationSummary(input: SummaryInput, operation: Operation, started: StartedBy = {}): string {
  const what = {
    deploy: `${started.schedule ? 'Scheduled deploy of' : 'Deploy'} ${input.project} to ${input.env} with ${input.strategy}`,
    rollback: `Roll back ${input.project} in ${input.env} to before ${input.rollbackTo ?? 'the latest deploy'}`,
    'mirror-refresh': `Refresh the raw layer of ${input.project} in ${input.env}`,
  }[operation];
  const id = input.deployId ?? (started.schedule?.cron ? `cron "${started.schedule.cron}"` : undefined);
  const tail = [id, input.gitSha ? `git ${input.gitSha.slice(0, 12)}` : undefined].filter(Boolean);
  return tail.length > 0 ? `${what}: ${tail.join(', ')}` : what;
}

/** The run's fixed facts as a markdown table: strategy, deploy id, git sha and what it publishes. */
export function operationDetails(input: SummaryInput, operation: Operation, started: StartedBy = {}): string {
  const row = (key: string, value: string) => `| ${key} | ${value.replaceAll('|', '\\|')} |`;
  const code = (value: string) => `\`${value}\``;
  const rows = [
    row('operation', operation),
    row('project', code(input.project)),
    row('environment', code(input.env)),
    row('strategy', operation === 'rollback' ? 'rollback' : input.strategy),
    row('deploy id', input.deployId ? code(input.deployId) : 'one per run, when the schedule starts it'),
    row('git sha', input.gitSha ? code(input.gitSha) : 'not given (`dbt-deploy deploy --git-sha`)'),
    row('engine', input.engine),
    row(
      'targets',
      `prod ${code(input.targets.prod)}, staging ${code(input.targets.staging)}${input.targets.audit ? `, audit ${code(input.targets.audit)}` : ''}`,
    ),
    ...(operation === 'deploy'
      ? [row('publishes', `the models ${describePublishSelection(publishSelectionOf(input))}`)]
      : []),
    ...(operation === 'rollback' ? [row('rolls back', input.rollbackTo ?? 'the latest deploy')] : []),
    ...(operation === 'deploy'
      ? [
          row(
            'approval',
            input.approval
              ? `required: waits up to ${input.approval.timeout}, then ${input.approval.onTimeout}s`
              : 'not required',
          ),
        ]
      : []),
    ...(started.schedule
      ? [
          row(
            'started by',
            `schedule ${code(started.schedule.id)}${started.schedule.cron ? ` (cron ${code(started.schedule.cron)}, UTC)` : ''}`,
          ),
        ]
      : started.by
        ? [row('started by', started.by)]
        : []),
  ];
  return ['| | |', '|---|---|', ...rows].join('\n');
}
