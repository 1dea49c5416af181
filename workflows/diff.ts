/**
 * The diff of prod against the candidate, and the audit rules deploy.yml runs on it: the types every
 * side shares and how they read as text. The full diff (sample rows included) is a file in the deploy's
 * artifact folder; only a `DiffSummary` (counts per relation, the rules' outcomes, the file's
 * reference) goes through Temporal history. Pure: the workflow bundle renders the approval gate's
 * details with it, the CLI and the report the rest. See docs/audits.md.
 */
import type { ArtifactRef } from './types.js';

/** deploy.yml `diff`: how much the diff shows and where it stops reading every row. */
export interface DiffSettings {
  /** Sample rows shown per kind (added, removed, changed) and relation; 0 shows none. */
  sampleRows: number;
  /** Relations with more rows than this (prod or candidate) are compared on a sample of their keys. */
  sampleAboveRows: number;
  /** The share of keys (or rows, without a key) compared past `sampleAboveRows`, in percent. */
  samplePercent: number;
}

export const DEFAULT_DIFF_SETTINGS: DiffSettings = {
  sampleRows: 3,
  sampleAboveRows: 10_000_000,
  samplePercent: 10,
};

export type RuleSeverity = 'error' | 'warn';

/** A limit on how far a relation's row count may move: a share of prod's rows, or a number of rows. */
export type RowChangeLimit = { percent: number } | { rows: number };

/** What a rule checks; exactly one per rule. */
export type RuleCheck =
  | { kind: 'max_row_change'; limit: RowChangeLimit }
  | { kind: 'min_rows'; rows: number }
  | { kind: 'no_removed_columns'; allow: string[] }
  | { kind: 'no_lost_keys' }
  | { kind: 'sql'; sql: string };

/** One deploy.yml `audits` entry, checked and normalised before the deploy starts. */
export type AuditRule = RuleCheck & {
  /** As given, or made from the check and the selection (`max_row_change 10% on fct_orders`). */
  name: string;
  /** Which published relations it applies to (names, globs, `tag:`, `config.materialized:`); unset: all. */
  select?: string[];
  severity: RuleSeverity;
};

/** A column as the warehouse's catalogue names and types it. */
export interface DiffColumn {
  name: string;
  type: string;
}

export type RelationDiffStatus =
  /** absent in prod: the publish creates it */
  | 'new'
  /** in prod only: the publish drops it */
  | 'dropped'
  /** rows or columns differ */
  | 'changed'
  /** same columns, same row count and checksum */
  | 'unchanged'
  /** a statement failed; `error` says which and why */
  | 'error';

/** One relation: prod as readers see it now, against the candidate that is about to replace it. */
export interface RelationDiff {
  /** The model (or seed, snapshot) name; the identifier for a relation being dropped. */
  name: string;
  status: RelationDiffStatus;
  materialized: string;
  prod: string;
  candidate: string | null;
  rows: { before: number | null; after: number | null };
  /** The primary key rows are matched by, and where it came from; unset: counts and checksums only. */
  key?: { columns: string[]; from: 'unique_key' | 'unique test' | 'snapshot' };
  /** Why rows are not matched by key (no key declared, a key column missing on one side). */
  keyNote?: string;
  /** Rows matched by key: in the candidate only, in prod only, in both with other values. */
  rowChanges?: { added: number; removed: number; changed: number };
  /** Set when the relation was larger than `sampleAboveRows`: counts are estimates from this share. */
  sampledPercent?: number;
  /** Order-independent checksums over the columns both sides share. */
  checksums?: { before: string; after: string; columns: number };
  columns: {
    added: DiffColumn[];
    removed: DiffColumn[];
    retyped: Array<{ name: string; before: string; after: string }>;
  };
  samples?: {
    added: Array<Record<string, unknown>>;
    removed: Array<Record<string, unknown>>;
    changed: Array<{ before: Record<string, unknown>; after: Record<string, unknown> }>;
  };
  error?: string;
}

export interface RuleOutcome {
  rule: string;
  kind: RuleCheck['kind'];
  severity: RuleSeverity;
  /** Failed and passed decide; `skipped` says why the rule could not apply (new relation, no key). */
  status: 'passed' | 'failed' | 'skipped';
  /** The relation it was checked on; unset for an assertion that names no relation. */
  relation?: string;
  message: string;
  /** For a failed assertion: the first rows it returned. */
  rows?: Array<Record<string, unknown>>;
}

/** The whole diff: kept as `diff/diff.json` in the deploy's artifact folder. */
export interface ProdDiff {
  deployId: string;
  computedAt: string;
  settings: DiffSettings;
  relations: RelationDiff[];
  audits: RuleOutcome[];
  /** Set when an error-severity rule failed: the reason the publish was blocked. */
  blocked?: string;
}

/** A relation in one line of numbers: what history, the gate and `status` carry. */
export interface DiffLine {
  name: string;
  status: RelationDiffStatus;
  before: number | null;
  after: number | null;
  added?: number;
  removed?: number;
  changed?: number;
  /** The counts are estimated from a sample of this share of keys. */
  sampledPercent?: number;
  key?: string[];
  columnsAdded?: string[];
  columnsRemoved?: string[];
  columnsRetyped?: string[];
  error?: string;
}

/** The rules that did not simply pass, in one line each. */
export interface RuleLine {
  rule: string;
  severity: RuleSeverity;
  status: 'failed' | 'skipped';
  relation?: string;
  message: string;
}

/** What travels through history: small whatever the project's size (see `summarizeDiff`). */
export interface DiffSummary {
  /** The full diff, sample rows included, on the deploy's host (or the shared artifacts folder). */
  ref?: ArtifactRef;
  /** Changed, new, dropped and failed relations first, then unchanged ones, at most `MAX_LINES`. */
  relations: DiffLine[];
  /** Relations left out of `relations` by the cap. */
  omitted: number;
  unchanged: number;
  rules: { passed: number; failed: number; warned: number; skipped: number };
  /** Failed rules (both severities) and skipped ones, at most `MAX_LINES`. */
  findings: RuleLine[];
  blocked?: string;
}

const MAX_LINES = 40;
const ORDER: Record<RelationDiffStatus, number> = { error: 0, changed: 1, new: 2, dropped: 3, unchanged: 4 };

export function lineOf(relation: RelationDiff): DiffLine {
  const { columns } = relation;
  return {
    name: relation.name,
    status: relation.status,
    before: relation.rows.before,
    after: relation.rows.after,
    ...(relation.rowChanges ?? {}),
    ...(relation.sampledPercent !== undefined ? { sampledPercent: relation.sampledPercent } : {}),
    ...(relation.key ? { key: relation.key.columns } : {}),
    ...(columns.added.length ? { columnsAdded: columns.added.map((c) => c.name) } : {}),
    ...(columns.removed.length ? { columnsRemoved: columns.removed.map((c) => c.name) } : {}),
    ...(columns.retyped.length
      ? { columnsRetyped: columns.retyped.map((c) => `${c.name} ${c.before} → ${c.after}`) }
      : {}),
    ...(relation.error ? { error: relation.error.slice(0, 300) } : {}),
  };
}

export function summarizeDiff(diff: ProdDiff, ref?: ArtifactRef): DiffSummary {
  const sorted = [...diff.relations].sort(
    (a, b) => ORDER[a.status] - ORDER[b.status] || a.name.localeCompare(b.name),
  );
  const count = (status: RuleOutcome['status'], severity?: RuleSeverity) =>
    diff.audits.filter((o) => o.status === status && (!severity || o.severity === severity)).length;
  const findings = diff.audits
    .filter((o) => o.status !== 'passed')
    .sort((a, b) => rank(a) - rank(b))
    .slice(0, MAX_LINES)
    .map((o): RuleLine => ({
      rule: o.rule,
      severity: o.severity,
      status: o.status as RuleLine['status'],
      ...(o.relation ? { relation: o.relation } : {}),
      message: o.message.slice(0, 500),
    }));
  return {
    ...(ref ? { ref } : {}),
    relations: sorted.slice(0, MAX_LINES).map(lineOf),
    omitted: Math.max(0, sorted.length - MAX_LINES),
    unchanged: diff.relations.filter((r) => r.status === 'unchanged').length,
    rules: {
      passed: count('passed'),
      failed: count('failed', 'error'),
      warned: count('failed', 'warn'),
      skipped: count('skipped'),
    },
    findings,
    ...(diff.blocked ? { blocked: diff.blocked } : {}),
  };
}

function rank(outcome: RuleOutcome): number {
  if (outcome.status === 'failed') return outcome.severity === 'error' ? 0 : 1;
  return 2;
}

/** `640 → 1,280 rows (+100.0%)`; for a new relation `new: 640 rows`. */
export function rowsText(before: number | null, after: number | null): string {
  if (before === null && after === null) return 'no rows';
  if (before === null) return `new: ${number(after!)} rows`;
  if (after === null) return `dropped: had ${number(before)} rows`;
  return `${number(before)} → ${number(after)} rows (${changeText(before, after)})`;
}

/** `+100.0%`, `-12.5%`, `±0`; from an empty prod any row is `+∞`. */
export function changeText(before: number, after: number): string {
  if (before === after) return '±0';
  if (before === 0) return '+∞%';
  const percent = ((after - before) / before) * 100;
  return `${percent > 0 ? '+' : ''}${percent.toFixed(1)}%`;
}

/** `1,280`: grouped by hand, the workflow sandbox renders this too. */
function number(value: number): string {
  return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** One relation in one line, for terminals, the gate and the report. */
export function describeLine(line: DiffLine): string {
  const parts = [`${line.name}: ${rowsText(line.before, line.after)}`];
  if (line.added !== undefined) {
    const about = line.sampledPercent !== undefined ? '~' : '';
    parts.push(
      `by key (${line.key?.join(', ')}): ${about}${line.added} added, ${about}${line.removed} removed, ${about}${line.changed} changed` +
        (line.sampledPercent !== undefined ? ` (estimated from a ${line.sampledPercent}% sample)` : ''),
    );
  }
  const columns = [
    ...(line.columnsAdded ?? []).map((c) => `+${c}`),
    ...(line.columnsRemoved ?? []).map((c) => `-${c}`),
    ...(line.columnsRetyped ?? []).map((c) => `~${c}`),
  ];
  if (columns.length) parts.push(`columns ${columns.join(' ')}`);
  if (line.status === 'unchanged') parts.push('unchanged');
  if (line.error) parts.push(`diff failed: ${line.error}`);
  return parts.join('; ');
}

export function describeFinding(finding: RuleLine): string {
  const what =
    finding.status === 'skipped' ? 'not checked' : finding.severity === 'warn' ? 'warning' : 'BLOCKS';
  return `${what}: rule "${finding.rule}"${finding.relation ? ` on ${finding.relation}` : ''}: ${finding.message}`;
}

/**
 * The diff as plain lines: what `status` prints while a deploy waits at the gate, what the Temporal UI
 * shows there, and what `dbt-deploy diff` prints when the full diff file is not readable.
 */
export function formatDiffSummary(summary: DiffSummary): string[] {
  const changed = summary.relations.filter((l) => l.status !== 'unchanged');
  const lines = [
    `diff against prod: ${changed.length + (summary.omitted > 0 ? '+' : '')} relations change, ${summary.unchanged} unchanged`,
    ...changed.map((l) => `  ${describeLine(l)}`),
  ];
  if (summary.omitted > 0) lines.push(`  … ${summary.omitted} more relations in the full diff`);
  const { passed, failed, warned, skipped } = summary.rules;
  if (passed + failed + warned + skipped > 0) {
    lines.push(
      `audit rules: ${passed} passed, ${failed} failed, ${warned} warnings${skipped ? `, ${skipped} not checked` : ''}`,
      ...summary.findings.map((f) => `  ${describeFinding(f)}`),
    );
  }
  return lines;
}

/** The full diff as plain lines: every relation, every rule's outcome, the sample rows. */
export function formatDiff(diff: ProdDiff): string[] {
  const lines = [`diff against prod (computed ${diff.computedAt}):`];
  for (const relation of diff.relations) {
    lines.push(`  ${describeLine(lineOf(relation))}`);
    if (relation.keyNote && relation.status === 'changed') lines.push(`    ${relation.keyNote}`);
    const samples = relation.samples;
    if (!samples) continue;
    for (const row of samples.added) lines.push(`    + ${JSON.stringify(row)}`);
    for (const row of samples.removed) lines.push(`    - ${JSON.stringify(row)}`);
    for (const { before, after } of samples.changed) {
      const changed = Object.keys({ ...before, ...after }).filter(
        (k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]),
      );
      const key = relation.key?.columns
        .map((k) => `${k}=${JSON.stringify(before[k] ?? after[k])}`)
        .join(', ');
      lines.push(
        `    ~ ${key ? `${key}: ` : ''}${changed.map((k) => `${k} ${JSON.stringify(before[k])} → ${JSON.stringify(after[k])}`).join(', ')}`,
      );
    }
  }
  if (diff.audits.length) {
    lines.push('audit rules:');
    for (const outcome of diff.audits) {
      const mark =
        outcome.status === 'passed'
          ? 'passed'
          : outcome.status === 'skipped'
            ? 'not checked'
            : outcome.severity === 'warn'
              ? 'warning'
              : 'BLOCKS';
      lines.push(`  ${mark}: rule "${outcome.rule}": ${outcome.message}`);
    }
  }
  if (diff.blocked) lines.push(`blocked: ${diff.blocked}`);
  return lines;
}
