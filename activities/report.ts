/**
 * The report each deploy leaves in its artifact folder: `report.md` for people (a PR comment, a
 * ticket) and `report.json`, the result object itself, for tools.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { STEP_ICONS } from '../workflows/plan.js';
import { dbtMessage, rootFailures, skippedCount } from './audit-reason.js';
import type { DeployInput, DeployResult } from '../workflows/types.js';

export async function writeDeployReport(
  dir: string,
  input: DeployInput,
  result: DeployResult,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const markdown = join(dir, 'report.md');
  await writeFile(join(dir, 'report.json'), `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(markdown, renderReport(input, result));
  return markdown;
}

export function renderReport(input: DeployInput, result: DeployResult): string {
  const seconds = (Date.parse(result.finishedAt) - Date.parse(result.startedAt)) / 1000;
  const lines = [
    `# ${input.project} → ${result.env}: ${result.status}`,
    '',
    `| | |`,
    `|---|---|`,
    `| deploy | \`${result.deployId}\` (workflow \`${result.workflowId}\`) |`,
    `| strategy | ${result.strategy} |`,
    `| started | ${result.startedAt} |`,
    `| duration | ${seconds.toFixed(1)} s |`,
    ...(input.gitSha ? [`| commit | \`${input.gitSha}\` |`] : []),
    ...(result.decision
      ? [
          `| ${result.decision.kind} by | ${result.decision.by} at ${result.decision.at}${result.decision.note ? ` (“${result.decision.note}”)` : ''} |`,
        ]
      : []),
    ...(result.reason ? [`| why | ${result.reason.replaceAll('|', '\\|')} |`] : []),
    '',
    '## Steps',
    '',
    ...result.steps.map(
      (s, i) => `${i + 1}. ${STEP_ICONS[s.status]} ${s.title}${s.summary ? ` — ${s.summary}` : ''}`,
    ),
  ];
  if (result.audit) {
    const counts = (c: Record<string, number>) =>
      Object.entries(c)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || 'none';
    lines.push(
      '',
      '## Audit',
      '',
      `- models: ${counts(result.audit.models)}`,
      `- tests: ${counts(result.audit.tests)}`,
    );
    for (const node of rootFailures(result.audit)) {
      const message = dbtMessage(node.message, 1000);
      lines.push(`- failed: \`${node.name}\` (${node.status})${message ? `: ${message}` : ''}`);
    }
    const skipped = skippedCount(result.audit);
    if (skipped > 0) lines.push(`- skipped because of them: ${skipped}`);
  }
  if (result.published.length > 0) {
    const count = result.publishedCount ?? result.published.length;
    const more = count - result.published.length;
    lines.push(
      '',
      `## Published (${count})`,
      '',
      ...result.published.map((r) => `- \`${r}\``),
      ...(more > 0 ? [`- and ${more} more`] : []),
    );
  }
  if (result.backup)
    lines.push(
      '',
      `Previous prod kept in \`${result.backup.location.database}.${result.backup.location.schema}\`.`,
    );
  return `${lines.join('\n')}\n`;
}
