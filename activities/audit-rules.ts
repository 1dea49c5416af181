/**
 * deploy.yml's audit rules: checked completely before a deploy starts (every error names its key),
 * then run by the diff step on the diff of prod against the candidate and, for `sql` assertions, in the
 * warehouse. A failing `error` rule blocks the publish the way a failing dbt test does; a `warn` rule
 * is shown at the approval gate and in the report, and blocks nothing. See docs/audits.md.
 */
import { z } from 'zod';
import {
  type AuditRule,
  DEFAULT_DIFF_SETTINGS,
  type DiffSettings,
  type RelationDiff,
  type RowChangeLimit,
  type RuleCheck,
  type RuleOutcome,
  rowsText,
} from '../workflows/diff.js';
import type { Relation } from '../workflows/types.js';
import type { DiffPair, DiffStatements } from './warehouses/shared/diff-sql.js';

export const CHECKS = ['max_row_change', 'min_rows', 'no_removed_columns', 'no_lost_keys', 'sql'] as const;

/** Selectors the rules understand: a name or glob, `tag:`, `config.materialized:`, `resource_type:`. */
const SELECTOR = /^(?:(?:tag|config\.materialized|resource_type):[\w.-]+|[\w*?.-]+)$/;
const PLACEHOLDER = /\{\{([^}]*)\}\}/g;
const KNOWN_PLACEHOLDER = /^\s*(prod|candidate)(?:\.([A-Za-z_][\w$]*))?\s*$/;
const PERCENT = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/;

const RuleSchema = z
  .strictObject({
    name: z.string().min(1).optional(),
    select: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    severity: z.enum(['error', 'warn']).default('error'),
    max_row_change: z.unknown().optional(),
    min_rows: z.unknown().optional(),
    no_removed_columns: z.unknown().optional(),
    no_lost_keys: z.unknown().optional(),
    sql: z.unknown().optional(),
  })
  .superRefine((rule, ctx) => {
    const fail = (key: string, message: string) =>
      ctx.addIssue({ code: 'custom', message, path: key ? [key] : [] });
    const given = CHECKS.filter((check) => rule[check] !== undefined);
    if (given.length !== 1) {
      fail(
        '',
        given.length === 0
          ? `a rule needs one check: ${CHECKS.join(', ')}`
          : `one check per rule, this one has ${given.join(' and ')} (write them as separate rules)`,
      );
      return;
    }
    for (const selector of selectorsOf(rule.select))
      if (!SELECTOR.test(selector))
        fail(
          'select',
          `"${selector}" is not a selector audit rules understand (a model name or glob such as fct_*, tag:<tag>, config.materialized:<materialization>, resource_type:<model|seed|snapshot>)`,
        );
    const problem = checkProblem(rule);
    if (problem) fail(given[0]!, problem);
    if (rule.sql !== undefined && !rule.name)
      fail('name', 'an sql assertion needs a name: a blocked deploy cites it in its reason');
  });

function checkProblem(rule: Record<string, unknown>): string | undefined {
  const value = (key: string) => JSON.stringify(rule[key]);
  if (rule['max_row_change'] !== undefined && !rowChangeLimitOf(rule['max_row_change']))
    return `${value('max_row_change')} is not a limit: write a share of prod's rows such as 10% or a number of rows such as 500`;
  if (
    rule['min_rows'] !== undefined &&
    !(Number.isInteger(rule['min_rows']) && Number(rule['min_rows']) >= 0)
  )
    return `${value('min_rows')} is not a number of rows (a whole number, 0 or more)`;
  const columns = rule['no_removed_columns'];
  if (columns !== undefined && columns !== true && !allowListOf(columns))
    return `${value('no_removed_columns')}: write true, or {allow: [column, ...]} to let those columns go`;
  if (rule['no_lost_keys'] !== undefined && rule['no_lost_keys'] !== true)
    return `${value('no_lost_keys')}: write true (leave the rule out to turn it off)`;
  const sql = rule['sql'];
  if (sql !== undefined) {
    if (typeof sql !== 'string' || !sql.trim())
      return 'expected the text of a SELECT that returns no rows when all is well';
    for (const [whole, inside] of sql.matchAll(PLACEHOLDER))
      if (!KNOWN_PLACEHOLDER.test(inside ?? ''))
        return `unknown placeholder ${whole}: use {{ prod }} and {{ candidate }} (the relation the rule is checked on) or {{ prod.<model> }}, {{ candidate.<model> }}`;
  }
  return undefined;
}

export const AuditsSchema = z.array(RuleSchema).superRefine((rules, ctx) => {
  const seen = new Map<string, number>();
  for (const [index, rule] of rules.entries()) {
    const name = ruleName(rule);
    const earlier = seen.get(name);
    if (earlier !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: [index, 'name'],
        message: `"${name}" is also the name of audits.${earlier}: give each rule its own name`,
      });
    seen.set(name, index);
  }
});

/** deploy.yml `diff`; when absent the deploy carries nothing and the step uses `DEFAULT_DIFF_SETTINGS`. */
export const DiffConfigSchema = z.strictObject({
  /** Rows shown per kind (added, removed, changed) and relation. */
  sample_rows: z.number().int().min(0).max(100).default(DEFAULT_DIFF_SETTINGS.sampleRows),
  /** Past this many rows (prod or candidate) a relation's keys are compared on a sample. */
  sample_above_rows: z.number().int().min(1).default(DEFAULT_DIFF_SETTINGS.sampleAboveRows),
  /** The share of keys compared past that size, in percent. */
  sample_percent: z.number().gt(0).max(100).default(DEFAULT_DIFF_SETTINGS.samplePercent),
});

type RuleConfig = z.infer<typeof RuleSchema>;

/** The rules as the deploy carries them: one check each, named, severity and selection explicit. */
export function auditRulesOf(rules: RuleConfig[] | undefined): AuditRule[] {
  return (rules ?? []).map((rule) => {
    const select = selectorsOf(rule.select);
    return {
      ...checkOf(rule),
      name: ruleName(rule),
      ...(select.length ? { select } : {}),
      severity: rule.severity,
    };
  });
}

export function diffSettingsOf(config: z.infer<typeof DiffConfigSchema>): DiffSettings {
  return {
    sampleRows: config.sample_rows,
    sampleAboveRows: config.sample_above_rows,
    samplePercent: config.sample_percent,
  };
}

function checkOf(rule: RuleConfig): RuleCheck {
  if (rule.max_row_change !== undefined)
    return { kind: 'max_row_change', limit: rowChangeLimitOf(rule.max_row_change)! };
  if (rule.min_rows !== undefined) return { kind: 'min_rows', rows: Number(rule.min_rows) };
  if (rule.no_removed_columns !== undefined)
    return { kind: 'no_removed_columns', allow: allowListOf(rule.no_removed_columns) ?? [] };
  if (rule.no_lost_keys !== undefined) return { kind: 'no_lost_keys' };
  return { kind: 'sql', sql: String(rule.sql) };
}

function ruleName(rule: RuleConfig): string {
  if (rule.name) return rule.name;
  const select = selectorsOf(rule.select);
  const on = select.length ? ` on ${select.join(' ')}` : '';
  const check = CHECKS.find((c) => rule[c] !== undefined) ?? 'rule';
  const value = check === 'max_row_change' || check === 'min_rows' ? ` ${String(rule[check]).trim()}` : '';
  return `${check}${value}${on}`;
}

function selectorsOf(select: string | string[] | undefined): string[] {
  if (select === undefined) return [];
  return Array.isArray(select) ? select : [select];
}

function rowChangeLimitOf(value: unknown): RowChangeLimit | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? { rows: value } : undefined;
  if (typeof value !== 'string') return undefined;
  const percent = PERCENT.exec(value);
  if (percent) return { percent: Number(percent[1]) };
  return /^\s*\d+\s*$/.test(value) ? { rows: Number(value) } : undefined;
}

function allowListOf(value: unknown): string[] | undefined {
  if (value === true) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  const allow = (value as { allow?: unknown }).allow;
  if (keys.length !== 1 || !Array.isArray(allow) || allow.length === 0) return undefined;
  return allow.every((c) => typeof c === 'string' && c.length > 0) ? (allow as string[]) : undefined;
}

export function limitText(limit: RowChangeLimit): string {
  return 'percent' in limit ? `${limit.percent}%` : `${limit.rows} rows`;
}

/** A relation the diff step compared, with what the rules select on. */
export interface AuditTarget {
  name: string;
  resourceType: string;
  materialized: string;
  tags: string[];
  prod: Relation;
  candidate: Relation;
  diff: RelationDiff;
  /** What the diff compared rows on; the `no_lost_keys` rule reads the key from it. */
  pair?: DiffPair;
}

export function selects(
  rule: Pick<AuditRule, 'select'>,
  target: Omit<AuditTarget, 'diff' | 'pair' | 'prod' | 'candidate'>,
): boolean {
  if (!rule.select) return true;
  return rule.select.some((selector) => {
    const [method, value] = selector.includes(':')
      ? (selector.split(/:(.*)/s) as [string, string])
      : ['', selector];
    switch (method) {
      case 'tag':
        return target.tags.includes(value);
      case 'config.materialized':
        return target.materialized === value;
      case 'resource_type':
        return target.resourceType === value;
      default:
        return glob(value).test(target.name);
    }
  });
}

function glob(pattern: string): RegExp {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${source}$`, 'i');
}

/** Where the rules run their statements: the warehouse session of the diff step. */
export interface RuleRunner {
  query(sql: string): Promise<Array<Record<string, unknown>>>;
  quoteRelation(relation: Relation): string;
  statements: DiffStatements;
}

/** Rows an assertion's failure shows. */
const ASSERTION_ROWS = 5;
const INCREMENTAL = new Set(['incremental', 'snapshot']);

/** Runs every rule on the relations it selects; the order follows deploy.yml, then the relations. */
export async function evaluateRules(
  rules: AuditRule[],
  targets: AuditTarget[],
  runner: RuleRunner,
): Promise<RuleOutcome[]> {
  const outcomes: RuleOutcome[] = [];
  for (const rule of rules) {
    // Only incremental models and snapshots keep rows from one deploy to the next.
    const selected = targets.filter(
      (t) => selects(rule, t) && (rule.kind !== 'no_lost_keys' || INCREMENTAL.has(t.materialized)),
    );
    const outcome = (
      status: RuleOutcome['status'],
      message: string,
      relation?: string,
      rows?: RuleOutcome['rows'],
    ) =>
      outcomes.push({
        rule: rule.name,
        kind: rule.kind,
        severity: rule.severity,
        status,
        ...(relation ? { relation } : {}),
        message,
        ...(rows?.length ? { rows } : {}),
      });
    if (rule.kind === 'sql') {
      await assertion(rule, selected, targets, runner, outcome);
      continue;
    }
    if (selected.length === 0) {
      const what = rule.kind === 'no_lost_keys' ? 'incremental model or snapshot' : 'relation';
      outcome('skipped', `selects no ${what} of this deploy (${rule.select?.join(' ') ?? 'all'})`);
      continue;
    }
    for (const target of selected) {
      const { diff } = target;
      // Counts may have come back before the statement that failed; columns and keys did not.
      const needs =
        rule.kind === 'min_rows' || rule.kind === 'max_row_change' ? diff.rows.after === null : true;
      if (diff.status === 'error' && needs) {
        outcome('failed', `${target.name}: the diff could not be computed (${diff.error})`, target.name);
        continue;
      }
      const result = await check(rule, target, runner);
      outcome(result.status, result.message, target.name);
    }
  }
  return outcomes;
}

type Outcome = (
  status: RuleOutcome['status'],
  message: string,
  relation?: string,
  rows?: RuleOutcome['rows'],
) => void;

async function check(
  rule: AuditRule,
  target: AuditTarget,
  runner: RuleRunner,
): Promise<{ status: RuleOutcome['status']; message: string }> {
  const { diff } = target;
  const { before, after } = diff.rows;
  const isNew = diff.status === 'new';
  switch (rule.kind) {
    case 'min_rows':
      if (after === null)
        return { status: 'failed', message: `${target.name}: the candidate could not be counted` };
      return after >= rule.rows
        ? { status: 'passed', message: `${target.name}: ${after} rows (at least ${rule.rows})` }
        : { status: 'failed', message: `${target.name}: ${after} rows, fewer than min_rows ${rule.rows}` };
    case 'max_row_change': {
      if (isNew)
        return { status: 'skipped', message: `${target.name} is new in prod: no row count to compare with` };
      if (before === null || after === null)
        return {
          status: 'failed',
          message: `${target.name}: the rows could not be counted (${diff.error ?? 'no count'})`,
        };
      const moved = Math.abs(after - before);
      const over =
        'percent' in rule.limit
          ? before === 0
            ? moved > 0
            : (moved / before) * 100 > rule.limit.percent
          : moved > rule.limit.rows;
      const text = `${target.name}: ${rowsText(before, after)}`;
      return over
        ? { status: 'failed', message: `${text}, more than max_row_change ${limitText(rule.limit)}` }
        : { status: 'passed', message: `${text}, within ${limitText(rule.limit)}` };
    }
    case 'no_removed_columns': {
      if (isNew) return { status: 'skipped', message: `${target.name} is new in prod: no columns to lose` };
      const allowed = new Set(rule.allow.map((c) => c.toLowerCase()));
      const lost = diff.columns.removed.filter((c) => !allowed.has(c.name.toLowerCase())).map((c) => c.name);
      return lost.length
        ? { status: 'failed', message: `${target.name} loses columns ${lost.join(', ')} that prod has` }
        : { status: 'passed', message: `${target.name} keeps every column prod has` };
    }
    case 'no_lost_keys': {
      if (isNew) return { status: 'skipped', message: `${target.name} is new in prod: no rows to lose` };
      if (!diff.key || !target.pair?.key)
        return {
          status: 'skipped',
          message: `${target.name} has no key to count lost rows by (${diff.keyNote ?? 'no unique_key and no unique test'})`,
        };
      // On a sampled diff the removed count is an estimate: the whole relation is checked instead.
      const lost =
        diff.sampledPercent === undefined && diff.rowChanges
          ? diff.rowChanges.removed
          : Number(field((await runner.query(runner.statements.lostKeys(target.pair)))[0], 'lost'));
      const key = diff.key.columns.join(', ');
      return lost > 0
        ? {
            status: 'failed',
            message: `${target.name} loses ${lost} of the ${before} rows prod has by key (${key})`,
          }
        : { status: 'passed', message: `${target.name} keeps every key prod has (${key})` };
    }
    case 'sql':
      throw new Error('assertions are run by `assertion`');
  }
}

/** An sql rule: per selected relation when it names `{{ prod }}` or `{{ candidate }}`, else once. */
async function assertion(
  rule: Extract<AuditRule, { kind: 'sql' }>,
  selected: AuditTarget[],
  all: AuditTarget[],
  runner: RuleRunner,
  outcome: Outcome,
): Promise<void> {
  const placeholders = [...rule.sql.matchAll(PLACEHOLDER)].map(([, inside]) =>
    KNOWN_PLACEHOLDER.exec(inside ?? '')!,
  );
  const perRelation = placeholders.some((m) => m[2] === undefined);
  const runs: Array<AuditTarget | undefined> = perRelation ? selected : [undefined];
  if (runs.length === 0) {
    outcome('skipped', `selects no relation of this deploy (${rule.select?.join(' ') ?? 'all'})`);
    return;
  }
  for (const target of runs) {
    let sql: string;
    try {
      sql = render(rule.sql, target, all, runner);
    } catch (error) {
      const skipped = error instanceof NotInProd;
      outcome(skipped ? 'skipped' : 'failed', messageOf(error), target?.name);
      continue;
    }
    try {
      const rows = await runner.query(runner.statements.assertion(sql, ASSERTION_ROWS));
      const where = target ? `${target.name}: ` : '';
      if (rows.length === 0) outcome('passed', `${where}returned no rows`, target?.name);
      else
        outcome(
          'failed',
          `${where}returned ${rows.length === ASSERTION_ROWS ? `${ASSERTION_ROWS} or more rows` : `${rows.length} rows`}, first ${JSON.stringify(plain(rows[0]))}`,
          target?.name,
          rows.map(plain),
        );
    } catch (error) {
      outcome(
        'failed',
        `${target ? `${target.name}: ` : ''}the assertion failed to run: ${messageOf(error)}`,
        target?.name,
      );
    }
  }
}

class NotInProd extends Error {}

/** The assertion with its placeholders replaced by the quoted relations. */
export function render(
  sql: string,
  target: AuditTarget | undefined,
  all: AuditTarget[],
  runner: Pick<RuleRunner, 'quoteRelation'>,
): string {
  return sql.replace(PLACEHOLDER, (_whole, inside: string) => {
    const [, side, model] = KNOWN_PLACEHOLDER.exec(inside)!;
    const named =
      model === undefined ? target : all.find((t) => t.name.toLowerCase() === model.toLowerCase());
    if (!named) throw new Error(`{{ ${side}.${model} }}: ${model} is not published by this deploy`);
    if (side === 'prod' && named.diff.status === 'new')
      throw new NotInProd(
        `${named.name} is new in prod: {{ ${side}${model ? `.${model}` : ''} }} does not exist yet`,
      );
    return runner.quoteRelation(side === 'prod' ? named.prod : named.candidate);
  });
}

/** The reason a deploy is blocked: every failing error rule, named, with what it found. */
export function blockedBy(outcomes: RuleOutcome[]): string | undefined {
  const failed = outcomes.filter((o) => o.status === 'failed' && o.severity === 'error');
  if (failed.length === 0) return undefined;
  const listed = failed.slice(0, 3).map((o) => `rule "${o.rule}": ${o.message}`);
  const more = failed.length > 3 ? `; and ${failed.length - 3} more failures in the diff` : '';
  return `audit failed, prod untouched: ${listed.join('; ')}${more}`;
}

/** A column of a result row, whatever case the engine gave its name (Snowflake answers in upper case). */
export function field(row: Record<string, unknown> | undefined, name: string): unknown {
  if (!row) return undefined;
  if (name in row) return row[name];
  const found = Object.keys(row).find((k) => k.toLowerCase() === name);
  return found === undefined ? undefined : row[found];
}

/** A row as JSON can carry it: big integers as text, long text cut. */
export function plain(row: Record<string, unknown> | undefined): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(row ?? {}).map(([k, v]) => {
      if (typeof v === 'bigint') return [k, v.toString()];
      if (typeof v === 'string' && v.length > 200) return [k, `${v.slice(0, 200)}…`];
      if (v instanceof Date) return [k, v.toISOString()];
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && 'value' in v)
        return [k, String((v as { value: unknown }).value)];
      return [k, v];
    }),
  );
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}
