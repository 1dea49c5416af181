/** Renders a deploy's result for a person at a terminal; `--json` prints the object itself. */
import { dbtMessage, rootFailures, skippedCount } from '../activities/audit-reason.js';
import { formatDiffSummary } from '../workflows/diff.js';
import { describePlan, type Plan } from '../workflows/plan.js';
import type { DeployProgress } from '../workflows/queries.js';
import type { DeployInput, DeployResult, StepRecord } from '../workflows/types.js';

/** The relations a result names, and how many more it only counts (a project of thousands of models). */
export function publishedLine(result: Pick<DeployResult, 'published' | 'publishedCount'>): string {
  const more = (result.publishedCount ?? result.published.length) - result.published.length;
  return `${result.published.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

const MARKS: Record<StepRecord['status'], string> = {
  pending: ' ',
  running: '>',
  completed: '✔',
  failed: '✘',
  compensated: '↺',
  skipped: '-',
};

export function formatResult(result: DeployResult, uiUrl?: string | null, namespace = 'default'): string {
  const seconds = (Date.parse(result.finishedAt) - Date.parse(result.startedAt)) / 1000;
  const lines = [
    `Deploy ${result.deployId} to ${result.env} with ${result.strategy}: ${result.status.toUpperCase()} in ${seconds.toFixed(1)} s`,
    ...(result.reason ? [`  why: ${result.reason}`] : []),
    '',
    ...result.steps.map((s) => `  ${MARKS[s.status]} ${s.title}${s.summary ? `\n      ${s.summary}` : ''}`),
  ];
  if (result.audit) {
    const counts = (c: Record<string, number>) =>
      Object.entries(c)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || 'none';
    lines.push('', `  audit: models ${counts(result.audit.models)}; tests ${counts(result.audit.tests)}`);
    // What failed, with dbt's message, then one line for what dbt skipped because of it.
    for (const node of rootFailures(result.audit)) {
      const message = dbtMessage(node.message);
      lines.push(`    failed: ${node.name} (${node.status})${message ? `: ${message}` : ''}`);
    }
    const skipped = skippedCount(result.audit);
    if (skipped > 0)
      lines.push(`    skipped because of them: ${skipped} (see run_results.json in the artifacts)`);
  }
  if (result.diff) lines.push('', ...formatDiffSummary(result.diff).map((line) => `  ${line}`));
  if (result.published.length > 0) lines.push('', `  published: ${publishedLine(result)}`);
  if (result.backup)
    lines.push(
      `  previous prod kept in: ${result.backup.location.database}.${result.backup.location.schema}`,
    );
  if (result.decision)
    lines.push(
      `  ${result.decision.kind} by ${result.decision.by} at ${result.decision.at}${result.decision.note ? `: ${result.decision.note}` : ''}`,
    );
  if (result.artifactsDir) lines.push(`  artifacts: ${result.artifactsDir}`);
  if (result.report) lines.push(`  report: ${result.report}`);
  if (uiUrl) {
    lines.push(
      `  history: ${uiUrl}/namespaces/${namespace}/workflows/${encodeURIComponent(result.workflowId)}`,
    );
  }
  return lines.join('\n');
}

/** What readers of prod see during the plan's change, and the exact statements where the engine knows them. */
export interface CutOverDescription {
  readersSee: string;
  /** How the build location is made from prod before the build, where that is one statement. */
  stagingStatements?: string[];
  statements?: string[];
}

export function formatPlan(
  plan: Plan,
  header: string,
  input: Pick<DeployInput, 'approval'> = {},
  cutOver?: CutOverDescription,
): string {
  const lines = [header, `strategy ${plan.strategy}: ${plan.rationale}`, '', ...describePlan(plan, input)];
  if (cutOver) {
    lines.push('', `readers of prod see: ${cutOver.readersSee}`);
    if (cutOver.stagingStatements?.length)
      lines.push('staging made from prod first:', ...cutOver.stagingStatements.map((s) => `  ${s};`));
    if (cutOver.statements?.length)
      lines.push('cut-over statements:', ...cutOver.statements.map((s) => `  ${s};`));
  }
  return lines.join('\n');
}

/** `plan --running`: the running deploy's plan as it stands, each step's state, and its diff. */
export function formatRunningPlan(deployId: string, progress: DeployProgress): string {
  const lines = [
    `deploy ${deployId} (${progress.strategy}) is ${progress.phase}` +
      (progress.approval
        ? `: waiting for approval until ${progress.approval.deadline} (then: ${progress.approval.onTimeout})`
        : ''),
    '',
    ...progress.steps.map(
      (s, i) => `${MARKS[s.status]} ${i + 1}. ${s.title}${s.summary ? `\n      ${s.summary}` : ''}`,
    ),
  ];
  if (progress.diff) lines.push('', ...formatDiffSummary(progress.diff));
  return lines.join('\n');
}
