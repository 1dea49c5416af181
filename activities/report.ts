/**
 * The report each deploy leaves in its artifact folder: `report.md` for people (a PR comment, a
 * ticket) and `report.json`, the result object itself, for tools.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  changeText,
  type DiffLine,
  type DiffSummary,
  describeFinding,
  describeLine,
  lineOf,
  type ProdDiff,
} from '../workflows/diff.js';
import { STEP_ICONS } from '../workflows/plan.js';
import { dbtMessage, rootFailures, skippedCount } from './audit-reason.js';
import type { DeployInput, DeployResult } from '../workflows/types.js';
import { readArtifact } from './artifacts.js';

export async function writeDeployReport(
  dir: string,
  input: DeployInput,
  result: DeployResult,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const markdown = join(dir, 'report.md');
  const diff = await fullDiff(result.diff);
  // The result object, plus the whole diff (sample rows, every rule's outcome) where it can be read.
  const json = diff ? { ...result, diffDetails: diff } : result;
  await writeFile(join(dir, 'report.json'), `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(markdown, renderReport(input, result, diff));
  return markdown;
}

/** The diff file a summary refers to; undefined when it is on another host or was changed. */
export async function fullDiff(summary: DiffSummary | null | undefined): Promise<ProdDiff | undefined> {
  if (!summary?.ref) return undefined;
  try {
    return await readArtifact<ProdDiff>(summary.ref);
  } catch {
    return undefined;
  }
}

export function renderReport(input: DeployInput, result: DeployResult, diff?: ProdDiff): string {
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
  if (result.diff) lines.push('', ...renderDiff(result.diff, diff));
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

const cell = (text: string) => text.replaceAll('|', '\\|');

/** The diff as markdown: a table of the relations, the rules' outcomes, and sample rows. */
export function renderDiff(summary: DiffSummary, diff?: ProdDiff): string[] {
  const relations = diff?.relations ?? [];
  // Every relation from the file; without it, the summary's (capped) lines.
  const all: DiffLine[] = diff ? relations.map(lineOf) : summary.relations;
  const lines = ['## Diff against prod', ''];
  const changed = all.filter((l) => l.status !== 'unchanged');
  if (changed.length === 0) lines.push('Every relation is unchanged.');
  else {
    lines.push(
      '| relation | status | rows: prod → candidate | by key: added / removed / changed | columns |',
      '|---|---|---|---|---|',
    );
    for (const line of changed) {
      const rows =
        line.before === null || line.after === null
          ? String(line.before ?? line.after ?? '–')
          : `${line.before} → ${line.after} (${changeText(line.before, line.after)})`;
      const about = line.sampledPercent !== undefined ? `~ (${line.sampledPercent}% sample) ` : '';
      const byKey =
        line.added !== undefined
          ? `${about}${line.added} / ${line.removed} / ${line.changed} (${line.key?.join(', ')})`
          : '–';
      const columns = [
        ...(line.columnsAdded ?? []).map((c) => `+${c}`),
        ...(line.columnsRemoved ?? []).map((c) => `−${c}`),
        ...(line.columnsRetyped ?? []).map((c) => `~${c}`),
      ].join(' ');
      lines.push(
        `| \`${line.name}\` | ${line.status}${line.error ? `: ${cell(line.error)}` : ''} | ${rows} | ${byKey} | ${cell(columns) || '–'} |`,
      );
    }
  }
  const unchanged = all.filter((l) => l.status === 'unchanged').map((l) => l.name);
  if (unchanged.length) lines.push('', `Unchanged: ${unchanged.map((n) => `\`${n}\``).join(', ')}.`);
  if (!diff && summary.omitted > 0)
    lines.push('', `… and ${summary.omitted} more relations (the full diff was not readable here).`);
  const outcomes = diff?.audits;
  const { passed, failed, warned, skipped } = summary.rules;
  if (passed + failed + warned + skipped > 0) {
    lines.push('', '### Audit rules', '');
    if (outcomes) {
      const icon = (o: (typeof outcomes)[number]) =>
        o.status === 'passed' ? '✔' : o.status === 'skipped' ? '–' : o.severity === 'warn' ? '⚠' : '✘';
      for (const o of outcomes)
        lines.push(`- ${icon(o)} \`${o.rule}\`${o.relation ? ` on \`${o.relation}\`` : ''}: ${o.message}`);
    } else {
      lines.push(`${passed} passed, ${failed} failed, ${warned} warnings, ${skipped} not checked.`, '');
      for (const finding of summary.findings) lines.push(`- ${describeFinding(finding)}`);
    }
  }
  const sampled = relations.filter(
    (r) => r.samples && r.samples.added.length + r.samples.removed.length + r.samples.changed.length > 0,
  );
  if (sampled.length) {
    lines.push('', '### Sample rows');
    for (const relation of sampled) {
      const { added, removed, changed } = relation.samples!;
      lines.push('', `#### \`${relation.name}\` (${describeLine(lineOf(relation))})`, '');
      for (const [kind, rows] of [
        ['added', added],
        ['removed', removed],
      ] as const)
        if (rows.length)
          lines.push(`${kind}:`, '', '```json', ...rows.map((r) => JSON.stringify(r)), '```', '');
      if (changed.length) {
        lines.push('changed (prod, then candidate):', '', '```json');
        for (const { before, after } of changed)
          lines.push(JSON.stringify(before), JSON.stringify(after), '');
        lines.push('```');
      }
    }
  }
  return lines;
}
