/**
 * The diff of prod against a candidate, and every audit rule on it, against real data on DuckDB and on
 * the run's PostgreSQL: for each rule a candidate it must pass and one it must block, with prod's
 * checksum the same before and after (the diff and the rules only read). The tables are made here, so
 * every count is known: prod holds orders 1..100, and each candidate changes them in one known way.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditRulesOf, AuditsSchema, blockedBy, evaluateRules } from '../../activities/audit-rules.js';
import { auditTargets, diffRelation, diffStatementsFor, type DiffTarget } from '../../activities/diff.js';
import type { WarehouseAdapter } from '../../activities/warehouses/adapter.js';
import { DuckDbAdapter } from '../../activities/warehouses/duckdb/adapter.js';
import { PostgresAdapter } from '../../activities/warehouses/postgres/adapter.js';
import { DEFAULT_DIFF_SETTINGS, type DiffSettings } from '../../workflows/diff.js';
import type { Fingerprint, Relation } from '../../workflows/types.js';
import { createDatabase, dropDatabase } from '../support/postgres.js';
import { scratchDir } from '../support/scratch.js';

type Engine = 'duckdb' | 'postgres';

async function open(
  engine: Engine,
): Promise<{ adapter: WarehouseAdapter; database: string; close(): Promise<void> }> {
  if (engine === 'duckdb') {
    const path = join(await scratchDir('diff-rules-', inject('scratchRoot')), 'wh.duckdb');
    const adapter = await DuckDbAdapter.open({ engine: 'duckdb', path, database: 'wh', schema: 'prod' });
    return { adapter, database: 'wh', close: () => adapter.close() };
  }
  const server = await createDatabase(inject('postgres'), `diff_rules_${randomBytes(4).toString('hex')}`);
  const adapter = await PostgresAdapter.open({
    engine: 'postgres',
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    dbname: server.database,
    schema: 'prod',
  });
  return {
    adapter,
    database: server.database,
    close: async () => {
      await adapter.close();
      await dropDatabase(inject('postgres'), server.database);
    },
  };
}

/** Orders `from`..`to`: `amount` as the given numeric type, `status` and one more text column. */
const orders = (
  from: number,
  to: number,
  options: { amount?: string; status?: string; extra?: string } = {},
) =>
  `SELECT g.id AS order_id, g.id % 10 AS customer_id, CAST(g.id AS ${options.amount ?? 'NUMERIC(18,2)'}) AS amount, ` +
  `CAST(${options.status ?? "'placed'"} AS VARCHAR) AS status, CAST('x' AS VARCHAR) AS ${options.extra ?? 'legacy'} ` +
  `FROM generate_series(${from}, ${to}) AS g(id)`;

const SETUP = [
  'CREATE SCHEMA prod',
  'CREATE SCHEMA cand',
  `CREATE TABLE prod.orders AS ${orders(1, 100)}`,
  `CREATE TABLE cand.same AS ${orders(1, 100)}`,
  // Orders 1 and 2 gone, 101..105 new, 10, 20 and 30 shipped; `legacy` replaced by `note`, amount retyped.
  `CREATE TABLE cand.grown AS ${orders(3, 105, {
    amount: 'NUMERIC(12,2)',
    status: "CASE WHEN g.id IN (10, 20, 30) THEN 'shipped' ELSE 'placed' END",
    extra: 'note',
  })}`,
  `CREATE TABLE cand.doubled AS ${orders(1, 200)}`,
  `CREATE TABLE cand.emptied AS ${orders(1, 0)}`,
  `CREATE TABLE cand.negative AS ${orders(1, 100)} UNION ALL SELECT 101, 1, CAST(-5 AS NUMERIC(18,2)), CAST('placed' AS VARCHAR), CAST('x' AS VARCHAR)`,
];

describe.each<Engine>(['duckdb', 'postgres'])('the diff and the audit rules on %s', (engine) => {
  let adapter: WarehouseAdapter;
  let database: string;
  let close: () => Promise<void>;
  let prodBefore: Fingerprint;
  const rel = (schema: string, identifier: string): Relation => ({ database, schema, identifier });
  const target = (name: string, overrides: Partial<DiffTarget> = {}): DiffTarget => ({
    name,
    resourceType: 'model',
    materialized: 'incremental',
    tags: ['mart'],
    prod: rel('prod', 'orders'),
    candidate: rel('cand', name),
    key: { columns: ['order_id'], from: 'unique_key' },
    ...overrides,
  });
  const diff = (t: DiffTarget, settings: Partial<DiffSettings> = {}) =>
    diffRelation(adapter, diffStatementsFor(adapter.engine), t, { ...DEFAULT_DIFF_SETTINGS, ...settings });
  /** Runs rules written as in deploy.yml on the named candidates: their outcomes, and what blocks. */
  const audit = async (yaml: unknown[], targets: DiffTarget[], settings: Partial<DiffSettings> = {}) => {
    const rules = auditRulesOf(AuditsSchema.parse(yaml));
    const diffs = [];
    for (const t of targets) diffs.push(await diff(t, settings));
    const outcomes = await evaluateRules(rules, auditTargets(targets, diffs), {
      query: (sql) => adapter.query(sql),
      quoteRelation: (r) => adapter.dialect.quoteRelation(r),
      statements: diffStatementsFor(adapter.engine),
    });
    return { outcomes, blocked: blockedBy(outcomes), status: outcomes.map((o) => o.status) };
  };

  beforeAll(async () => {
    ({ adapter, database, close } = await open(engine));
    for (const statement of SETUP) await adapter.query(statement);
    prodBefore = await adapter.fingerprint(rel('prod', 'orders'));
  });
  afterAll(async () => {
    // Whatever ran above, prod is what it was: the diff and every rule only read.
    expect(await adapter.fingerprint(rel('prod', 'orders'))).toEqual(prodBefore);
    await close();
  });

  describe('the diff', () => {
    it('finds nothing between identical relations, from the checksums alone', async () => {
      const { diff: same } = await diff(target('same'));
      expect(same).toMatchObject({
        status: 'unchanged',
        rows: { before: 100, after: 100 },
        key: { columns: ['order_id'], from: 'unique_key' },
        rowChanges: { added: 0, removed: 0, changed: 0 },
        columns: { added: [], removed: [], retyped: [] },
      });
      expect(same.checksums?.before).toBe(same.checksums?.after);
      expect(same.samples).toBeUndefined();
    });

    it('counts rows added, removed and changed by key, columns added, removed and retyped, with samples', async () => {
      const { diff: grown } = await diff(target('grown'));
      expect(grown.status).toBe('changed');
      expect(grown.rows).toEqual({ before: 100, after: 103 });
      expect(grown.rowChanges).toEqual({ added: 5, removed: 2, changed: 3 });
      expect(grown.columns.added.map((c) => c.name)).toEqual(['note']);
      expect(grown.columns.removed.map((c) => c.name)).toEqual(['legacy']);
      expect(grown.columns.retyped).toEqual([
        engine === 'duckdb'
          ? { name: 'amount', before: 'DECIMAL(18,2)', after: 'DECIMAL(12,2)' }
          : { name: 'amount', before: 'numeric(18,2)', after: 'numeric(12,2)' },
      ]);
      const samples = grown.samples!;
      expect(samples.added.map((r) => Number(r['order_id']))).toEqual([101, 102, 103]);
      expect(samples.removed.map((r) => Number(r['order_id']))).toEqual([1, 2]);
      expect(
        samples.changed.map((c) => [Number(c.before['order_id']), c.before['status'], c.after['status']]),
      ).toEqual([
        [10, 'placed', 'shipped'],
        [20, 'placed', 'shipped'],
        [30, 'placed', 'shipped'],
      ]);
    });

    it('without a key compares counts and checksums only', async () => {
      const { diff: keyless } = await diff(target('doubled', { key: undefined }));
      expect(keyless.status).toBe('changed');
      expect(keyless.rows).toEqual({ before: 100, after: 200 });
      expect(keyless.rowChanges).toBeUndefined();
      expect(keyless.keyNote).toMatch(/no unique_key and no unique test/);
      expect(keyless.checksums?.before).not.toBe(keyless.checksums?.after);
    });

    it('past sample_above_rows compares a deterministic sample of keys and scales the counts', async () => {
      const { diff: sampled } = await diff(target('grown'), { sampleAboveRows: 50, samplePercent: 50 });
      expect(sampled.sampledPercent).toBe(50);
      const { added, removed, changed } = sampled.rowChanges!;
      // Estimates from half the keys: even numbers, near the true 5, 2 and 3.
      for (const [estimate, truth] of [
        [added, 5],
        [removed, 2],
        [changed, 3],
      ] as const) {
        expect(estimate % 2).toBe(0);
        expect(estimate).toBeLessThanOrEqual(truth * 2);
      }
      // The same keys fall in the same buckets on both sides: an identical pair stays identical.
      const { diff: same } = await diff(target('same'), { sampleAboveRows: 50, samplePercent: 50 });
      expect(same).toMatchObject({ status: 'unchanged', sampledPercent: 50 });
    });

    it('tells a relation new in prod and one the publish drops', async () => {
      const { diff: created } = await diff(target('same', { prod: rel('prod', 'not_yet') }));
      expect(created).toMatchObject({ status: 'new', rows: { before: null, after: 100 } });
      const { diff: dropped } = await diff(target('orders', { candidate: null }));
      expect(dropped).toMatchObject({ status: 'dropped', rows: { before: 100, after: null } });
    });
  });

  describe('max_row_change', () => {
    it('passes a change within the limit and blocks one past it, naming the rule and both counts', async () => {
      const rule = [{ name: 'orders_growth', max_row_change: '10%' }];
      expect((await audit(rule, [target('grown')])).status).toEqual(['passed']);
      const { blocked, status } = await audit(rule, [target('doubled')]);
      expect(status).toEqual(['failed']);
      expect(blocked).toBe(
        'audit failed, prod untouched: rule "orders_growth": doubled: 100 → 200 rows (+100.0%), more than max_row_change 10%',
      );
    });

    it('takes a number of rows too, and leaves a relation new in prod alone', async () => {
      expect((await audit([{ max_row_change: 5 }], [target('grown')])).status).toEqual(['passed']);
      expect((await audit([{ max_row_change: 2 }], [target('grown')])).blocked).toMatch(
        /rule "max_row_change 2": grown: 100 → 103 rows \(\+3\.0%\), more than max_row_change 2 rows/,
      );
      const created = target('doubled', { prod: rel('prod', 'not_yet') });
      expect((await audit([{ max_row_change: '10%' }], [created])).status).toEqual(['skipped']);
    });
  });

  describe('min_rows', () => {
    it('passes a candidate with rows and blocks an empty one', async () => {
      expect((await audit([{ min_rows: 1 }], [target('same')])).blocked).toBeUndefined();
      expect((await audit([{ min_rows: 1 }], [target('emptied')])).blocked).toMatch(
        /rule "min_rows 1": emptied: 0 rows, fewer than min_rows 1/,
      );
    });
  });

  describe('no_removed_columns', () => {
    it('blocks a candidate that loses a column, unless that column is allowed to go', async () => {
      expect((await audit([{ no_removed_columns: true }], [target('same')])).status).toEqual(['passed']);
      expect((await audit([{ no_removed_columns: true }], [target('grown')])).blocked).toMatch(
        /rule "no_removed_columns": grown loses columns legacy that prod has/,
      );
      const allowed = await audit([{ no_removed_columns: { allow: ['LEGACY'] } }], [target('grown')]);
      expect(allowed.status).toEqual(['passed']);
    });
  });

  describe('no_lost_keys', () => {
    it('blocks an incremental model that loses keys prod has, and passes one that keeps them', async () => {
      expect((await audit([{ no_lost_keys: true }], [target('doubled')])).status).toEqual(['passed']);
      expect((await audit([{ no_lost_keys: true }], [target('grown')])).blocked).toMatch(
        /rule "no_lost_keys": grown loses 2 of the 100 rows prod has by key \(order_id\)/,
      );
    });

    it('counts lost keys exactly even when the diff sampled', async () => {
      const sampled = await audit([{ no_lost_keys: true }], [target('grown')], {
        sampleAboveRows: 10,
        samplePercent: 1,
      });
      expect(sampled.blocked).toMatch(/grown loses 2 of the 100 rows/);
    });

    it('applies to incremental models and snapshots only, and says when it cannot check', async () => {
      const table = await audit([{ no_lost_keys: true }], [target('grown', { materialized: 'table' })]);
      expect(table.outcomes[0]).toMatchObject({
        status: 'skipped',
        message: expect.stringMatching(/selects no incremental model/),
      });
      const keyless = await audit([{ no_lost_keys: true }], [target('grown', { key: undefined })]);
      expect(keyless.outcomes[0]).toMatchObject({
        status: 'skipped',
        message: expect.stringMatching(/has no key/),
      });
      expect(keyless.blocked).toBeUndefined();
    });
  });

  describe('sql assertions', () => {
    const negative = {
      name: 'no_negative_amounts',
      sql: 'select order_id, amount from {{ candidate }} where amount < 0',
    };

    it('pass when they return no rows and block with the rows they return', async () => {
      expect((await audit([negative], [target('same')])).status).toEqual(['passed']);
      const { blocked, outcomes } = await audit([negative], [target('negative')]);
      expect(blocked).toMatch(
        /rule "no_negative_amounts": negative: returned 1 rows, first \{"order_id":.*101/,
      );
      expect(Number(outcomes[0]?.rows?.[0]?.['amount'])).toBe(-5);
    });

    it('compare the candidate with prod through {{ prod }}, and name other relations', async () => {
      const keysKept = {
        name: 'prod_keys_kept',
        sql: 'select order_id from {{ prod }} except select order_id from {{ candidate }}',
      };
      expect((await audit([keysKept], [target('doubled')])).status).toEqual(['passed']);
      expect((await audit([keysKept], [target('grown')])).blocked).toMatch(
        /rule "prod_keys_kept": grown: returned 2 rows/,
      );
      const named = {
        name: 'same_as_the_copy',
        sql: '(select * from {{ candidate.same }} except select * from {{ prod.same }}) union all (select * from {{ prod.same }} except select * from {{ candidate.same }})',
      };
      const once = await audit([named], [target('same'), target('grown')]);
      expect(once.outcomes).toHaveLength(1);
      expect(once.status).toEqual(['passed']);
    });

    it('report an assertion that does not run as failed, naming the error', async () => {
      const broken = { name: 'broken', sql: 'select no_such_column from {{ candidate }}' };
      const { outcomes, blocked } = await audit([broken], [target('same')]);
      expect(outcomes[0]?.message).toMatch(/the assertion failed to run/);
      expect(blocked).toMatch(/rule "broken"/);
    });
  });

  describe('severity and selection', () => {
    it('a warn rule that fails is reported but blocks nothing', async () => {
      const { outcomes, blocked } = await audit(
        [{ name: 'orders_growth', max_row_change: '10%', severity: 'warn' }],
        [target('doubled')],
      );
      expect(outcomes[0]).toMatchObject({ status: 'failed', severity: 'warn' });
      expect(blocked).toBeUndefined();
    });

    it('applies a rule only to the relations its selectors name (glob, tag:, config.materialized:)', async () => {
      const targets = [target('doubled', { tags: ['raw'], materialized: 'table' }), target('same')];
      const byGlob = await audit([{ max_row_change: '10%', select: 'sa*' }], targets);
      expect(byGlob.outcomes.map((o) => o.relation)).toEqual(['same']);
      const byTag = await audit([{ max_row_change: '10%', select: ['tag:raw'] }], targets);
      expect(byTag.outcomes.map((o) => [o.relation, o.status])).toEqual([['doubled', 'failed']]);
      const byMaterialization = await audit(
        [{ min_rows: 1, select: 'config.materialized:incremental' }],
        targets,
      );
      expect(byMaterialization.outcomes.map((o) => o.relation)).toEqual(['same']);
    });
  });
});

describe('the rules are checked before a deploy starts', () => {
  const problem = (rules: unknown) => {
    const parsed = AuditsSchema.safeParse(rules);
    return parsed.success
      ? undefined
      : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)[0];
  };

  it.each([
    [[{ select: 'fct_orders' }], /^0: a rule needs one check: max_row_change/],
    [
      [{ min_rows: 1, max_row_change: '5%' }],
      /^0: one check per rule, this one has max_row_change and min_rows/,
    ],
    [
      [{ max_row_change: 'ten' }],
      /^0\.max_row_change: "ten" is not a limit: write a share of prod's rows such as 10%/,
    ],
    [[{ max_row_change: 0.1 }], /^0\.max_row_change: 0\.1 is not a limit/],
    [[{ min_rows: -1 }], /^0\.min_rows: -1 is not a number of rows/],
    [[{ no_removed_columns: { allow: [] } }], /^0\.no_removed_columns: .*write true, or \{allow: \[column/],
    [[{ no_lost_keys: false }], /^0\.no_lost_keys: false: write true/],
    [[{ sql: 'select 1' }], /^0\.name: an sql assertion needs a name/],
    [[{ name: 'x', sql: 'select * from {{ this }}' }], /^0\.sql: unknown placeholder \{\{ this \}\}/],
    [
      [{ min_rows: 1, select: 'fct_orders+' }],
      /^0\.select: "fct_orders\+" is not a selector audit rules understand/,
    ],
    [[{ min_rows: 1 }, { min_rows: 1 }], /^1\.name: "min_rows 1" is also the name of audits\.0/],
  ])('%j', (rules, message) => {
    expect(problem(rules)).toMatch(message);
  });

  it('accepts every rule of the docs and names each', () => {
    const rules = auditRulesOf(
      AuditsSchema.parse([
        { name: 'orders_growth', select: 'fct_orders', max_row_change: '10%' },
        { min_rows: 1 },
        { no_removed_columns: { allow: ['legacy_flag'] }, severity: 'warn' },
        { no_lost_keys: true },
        { name: 'no_negative', sql: 'select * from {{ candidate }} where amount < 0' },
      ]),
    );
    expect(rules.map((r) => [r.name, r.kind, r.severity])).toEqual([
      ['orders_growth', 'max_row_change', 'error'],
      ['min_rows 1', 'min_rows', 'error'],
      ['no_removed_columns', 'no_removed_columns', 'warn'],
      ['no_lost_keys', 'no_lost_keys', 'error'],
      ['no_negative', 'sql', 'error'],
    ]);
    expect(rules[0]).toMatchObject({ select: ['fct_orders'], limit: { percent: 10 } });
  });
});
