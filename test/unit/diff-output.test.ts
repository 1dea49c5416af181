/**
 * How the diff reads wherever it is shown: the summary history carries (status, the gate's details),
 * the full diff with sample rows (`dbt-deploy diff`), `status` following a deploy to its gate, the
 * terminal result, `plan --running`, and the markdown report with and without the diff file.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../activities/report.js';
import { followDeploy } from '../../client/follow.js';
import { formatResult, formatRunningPlan } from '../../client/report.js';
import { formatDiff, formatDiffSummary, type ProdDiff, summarizeDiff } from '../../workflows/diff.js';
import type { DeployProgress } from '../../workflows/queries.js';
import type { DeployResult } from '../../workflows/types.js';
import { deployInput } from './deploy-input.js';

const columns = { added: [], removed: [], retyped: [] };
const DIFF: ProdDiff = {
  deployId: 'prod-1',
  computedAt: '2026-11-30T15:00:00.000Z',
  settings: { sampleRows: 3, sampleAboveRows: 1000, samplePercent: 10 },
  relations: [
    {
      name: 'util_calendar',
      status: 'unchanged',
      materialized: 'table',
      prod: 'wh.analytics.util_calendar',
      candidate: 'wh.analytics_staging.util_calendar',
      rows: { before: 1096, after: 1096 },
      key: { columns: ['date_day'], from: 'unique test' },
      rowChanges: { added: 0, removed: 0, changed: 0 },
      columns,
    },
    {
      name: 'fct_orders',
      status: 'changed',
      materialized: 'incremental',
      prod: 'wh.analytics.fct_orders',
      candidate: 'wh.analytics_staging.fct_orders',
      rows: { before: 640, after: 1280 },
      key: { columns: ['order_id'], from: 'unique_key' },
      rowChanges: { added: 640, removed: 0, changed: 1 },
      columns: { added: [{ name: 'channel', type: 'VARCHAR' }], removed: [], retyped: [] },
      samples: {
        added: [{ order_id: 641, status: 'placed' }],
        removed: [],
        changed: [
          { before: { order_id: 638, status: 'placed' }, after: { order_id: 638, status: 'shipped' } },
        ],
      },
    },
    {
      name: 'big_events',
      status: 'changed',
      materialized: 'table',
      prod: 'wh.analytics.big_events',
      candidate: 'wh.analytics_staging.big_events',
      rows: { before: 5000, after: 5100 },
      key: { columns: ['event_id'], from: 'unique test' },
      rowChanges: { added: 100, removed: 0, changed: 0 },
      sampledPercent: 10,
      columns,
    },
  ],
  audits: [
    {
      rule: 'orders_growth',
      kind: 'max_row_change',
      severity: 'warn',
      status: 'failed',
      relation: 'fct_orders',
      message: 'fct_orders: 640 → 1,280 rows (+100.0%), more than max_row_change 10%',
    },
    {
      rule: 'min_rows 1',
      kind: 'min_rows',
      severity: 'error',
      status: 'passed',
      relation: 'fct_orders',
      message: 'fct_orders: 1280 rows (at least 1)',
    },
  ],
};
const SUMMARY = summarizeDiff(DIFF);

describe('the diff as text', () => {
  it('summarizes what changes, with estimates marked, and the rules that did not simply pass', () => {
    expect(formatDiffSummary(SUMMARY)).toEqual([
      'diff against prod: 2 relations change, 1 unchanged',
      '  big_events: 5,000 → 5,100 rows (+2.0%); by key (event_id): ~100 added, ~0 removed, ~0 changed (estimated from a 10% sample)',
      '  fct_orders: 640 → 1,280 rows (+100.0%); by key (order_id): 640 added, 0 removed, 1 changed; columns +channel',
      'audit rules: 1 passed, 0 failed, 1 warnings',
      '  warning: rule "orders_growth" on fct_orders: fct_orders: 640 → 1,280 rows (+100.0%), more than max_row_change 10%',
    ]);
  });

  it('prints the sample rows of the full diff: added rows, and what changed in a row by key', () => {
    const lines = formatDiff(DIFF);
    expect(lines).toContain('    + {"order_id":641,"status":"placed"}');
    expect(lines).toContain('    ~ order_id=638: status "placed" → "shipped"');
    expect(lines).toContain(
      '  warning: rule "orders_growth": fct_orders: 640 → 1,280 rows (+100.0%), more than max_row_change 10%',
    );
    expect(lines).toContain('  passed: rule "min_rows 1": fct_orders: 1280 rows (at least 1)');
  });

  it('keeps history small: at most 40 relation lines, the rest counted', () => {
    const many: ProdDiff = {
      ...DIFF,
      relations: Array.from({ length: 100 }, (_, i) => ({
        ...DIFF.relations[1]!,
        name: `m${i}`,
        samples: undefined,
      })),
    };
    const summary = summarizeDiff(many);
    expect(summary.relations).toHaveLength(40);
    expect(summary.omitted).toBe(60);
    expect(JSON.stringify(summary).length).toBeLessThan(20_000);
  });
});

describe('where the diff is shown', () => {
  const progress = (withDiff: boolean): DeployProgress => ({
    strategy: 'wac',
    phase: withDiff ? 'awaiting-approval' : 'auditing',
    step: null,
    steps: [
      { id: 'select', title: 'Select the models', status: 'completed' },
      {
        id: 'diff',
        title: 'Diff every relation to publish against "prod"',
        status: withDiff ? 'completed' : 'running',
      },
      { id: 'backup', title: 'Back up', status: 'pending' },
    ],
    startedAt: new Date().toISOString(),
    elapsedMs: 0,
    diff: withDiff ? SUMMARY : null,
    approval: withDiff
      ? { waitingSince: 'now', deadline: '2026-12-01T00:00:00.000Z', onTimeout: 'abort' }
      : null,
  });

  it('status prints the diff once, when the diff step has run, with the way to its sample rows', async () => {
    let calls = 0;
    // A stand-in for the workflow handle: the progress query, then the description (no pending activity).
    const handle = {
      query: async () => progress(++calls > 2),
      describe: async () => ({ raw: { pendingActivities: [] } }),
    } as unknown as WorkflowHandle;
    const printed: string[] = [];
    const stop = followDeploy(handle, { print: (line) => printed.push(line) }, 5);
    await new Promise((resolve) => setTimeout(resolve, 100));
    stop();
    const text = printed.join('\n');
    expect(text.match(/diff against prod: 2 relations change/g)).toHaveLength(1);
    expect(text).toContain('fct_orders: 640 → 1,280 rows (+100.0%)');
    expect(text).toContain('with sample rows of each change: dbt-deploy diff --env <env>');
    expect(text.indexOf('running: Diff every relation')).toBeLessThan(text.indexOf('diff against prod'));
  });

  it('plan --running shows the steps as they stand and the diff', () => {
    const text = formatRunningPlan('prod-1', progress(true));
    expect(text).toMatch(
      /^deploy prod-1 \(wac\) is awaiting-approval: waiting for approval until 2026-12-01/,
    );
    expect(text).toContain('✔ 2. Diff every relation to publish against "prod"');
    expect(text).toContain('  fct_orders: 640 → 1,280 rows (+100.0%)');
  });

  const result: DeployResult = {
    deployId: 'prod-1',
    workflowId: 'dbt-deploy-jaffle_shop-prod',
    env: 'prod',
    strategy: 'wac',
    status: 'failed',
    reason: 'audit failed, prod untouched: rule "orders_growth": …',
    published: [],
    audit: null,
    backup: null,
    steps: [],
    artifactsDir: '/tmp/a',
    startedAt: '2026-11-30T15:00:00.000Z',
    finishedAt: '2026-11-30T15:01:00.000Z',
    diff: SUMMARY,
  };

  it('the terminal result ends with the diff', () => {
    expect(formatResult(result)).toContain('  diff against prod: 2 relations change, 1 unchanged');
  });

  it('the report has a table, every rule and the sample rows from the diff file; the summary without it', () => {
    const full = renderReport(deployInput(), result, DIFF);
    expect(full).toContain('## Diff against prod');
    expect(full).toContain(
      '| `fct_orders` | changed | 640 → 1280 (+100.0%) | 640 / 0 / 1 (order_id) | +channel |',
    );
    expect(full).toContain(
      '| `big_events` | changed | 5000 → 5100 (+2.0%) | ~ (10% sample) 100 / 0 / 0 (event_id) | – |',
    );
    expect(full).toContain('Unchanged: `util_calendar`.');
    expect(full).toContain('- ⚠ `orders_growth` on `fct_orders`: fct_orders: 640 → 1,280 rows');
    expect(full).toContain('- ✔ `min_rows 1` on `fct_orders`');
    expect(full).toContain('{"order_id":641,"status":"placed"}');
    const fromSummary = renderReport(deployInput(), result);
    expect(fromSummary).toContain('| `fct_orders` | changed |');
    expect(fromSummary).toContain('1 passed, 0 failed, 1 warnings, 0 not checked.');
    expect(fromSummary).not.toContain('### Sample rows');
  });
});
