/**
 * The chaos run's tables: outcomes per fault kind, per engine and strategy, and every trial with what
 * broke. Markdown, so the same text prints on the terminal and lands in docs/reliability.md.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { describeFault, EXTRA_FAULT_KINDS, FAULT_KINDS, type TrialSpec } from './faults.js';
import type { TrialOutcome, TrialStatus } from './trial.js';

const STATUSES: TrialStatus[] = ['published', 'rolled_back', 'aborted', 'failed', 'hung', 'setup-failed'];

export function formatTables(outcomes: TrialOutcome[]): string {
  const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  const counts = (subset: TrialOutcome[]) => [
    subset.length,
    subset.filter((o) => o.fired).length,
    ...STATUSES.map((s) => subset.filter((o) => o.status === s).length),
    subset.filter((o) => o.breaks.length > 0).length,
  ];
  const header = ['trials', 'fired', ...STATUSES, 'invariants broken'];
  const lines = [
    row(['fault', ...header]),
    row(['---', ...header.map(() => '---:')]),
    ...[...FAULT_KINDS, ...EXTRA_FAULT_KINDS]
      .filter((kind) => FAULT_KINDS.includes(kind as never) || outcomes.some((o) => o.spec.kind === kind))
      .map((kind) => row([kind, ...counts(outcomes.filter((o) => o.spec.kind === kind))])),
    row(['**all**', ...counts(outcomes).map((n) => `**${n}**`)]),
    '',
    row(['engine', 'strategy', 'trials', 'published', 'not published', 'invariants broken']),
    row(['---', '---', '---:', '---:', '---:', '---:']),
  ];
  const combos = new Map<string, TrialOutcome[]>();
  for (const o of outcomes) {
    const key = `${o.spec.engine}|${o.spec.strategy}`;
    combos.set(key, [...(combos.get(key) ?? []), o]);
  }
  for (const [key, subset] of [...combos].sort(([a], [b]) => a.localeCompare(b))) {
    const [engine, strategy] = key.split('|');
    const published = subset.filter((o) => o.status === 'published').length;
    lines.push(
      row([
        engine!,
        strategy!,
        subset.length,
        published,
        subset.length - published,
        subset.filter((o) => o.breaks.length > 0).length,
      ]),
    );
  }
  const failing = outcomes.filter((o) => o.breaks.length > 0 || o.status === 'setup-failed');
  lines.push('', `### Failing trials (${failing.length})`, '');
  if (failing.length === 0) lines.push('None: every invariant held in every trial.');
  else {
    lines.push(row(['trial', 'engine', 'strategy', 'fault', 'fired', 'status', 'what broke']));
    lines.push(row(['---', '---', '---', '---', '---', '---', '---']));
    for (const o of failing)
      lines.push(
        row([
          trialName(o.spec),
          o.spec.engine,
          o.spec.strategy,
          describeFault(o.spec),
          o.fired ?? 'no',
          o.status,
          cell([...o.breaks, ...(o.status === 'setup-failed' ? [o.reason ?? ''] : [])].join('; ')),
        ]),
      );
  }
  lines.push('', '<details><summary>Every trial</summary>', '');
  lines.push(row(['trial', 'engine', 'strategy', 'fault', 'fired', 'status', 's', 'reason']));
  lines.push(row(['---', '---', '---', '---', '---', '---', '---:', '---']));
  for (const o of outcomes)
    lines.push(
      row([
        trialName(o.spec),
        o.spec.engine,
        o.spec.strategy,
        describeFault(o.spec),
        o.fired ?? 'no',
        o.status,
        o.seconds,
        cell((o.reason ?? '').slice(0, 160)),
      ]),
    );
  lines.push('', '</details>');
  return lines.join('\n');
}

export function trialName(spec: TrialSpec): string {
  return `${spec.seed}/${spec.index}`;
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

const BEGIN = '<!-- chaos:begin (written by `npm run chaos`; edit outside these markers) -->';
const END = '<!-- chaos:end -->';

/** Replaces the generated part of the document; what people wrote around it stays. */
export async function writeReliabilityDoc(path: string, generated: string): Promise<void> {
  const existing = await readFile(path, 'utf8').catch(() => '');
  const [head, rest] = existing.includes(BEGIN) ? existing.split(BEGIN) : [`# Reliability\n\n`, END];
  const tail = rest?.includes(END) ? rest.slice(rest.indexOf(END) + END.length) : '\n';
  await writeFile(path, `${head}${BEGIN}\n${generated}\n${END}${tail}`);
}
