/**
 * The diff and deploy.yml's audit rules through real deploys of the example, written once and run on
 * DuckDB (audits-duckdb.test.ts) and PostgreSQL (audits-postgres.test.ts): a first deploy, a small
 * change every rule lets through, a change that doubles fct_orders and is blocked by `max_row_change`
 * with prod untouched (its checksums), and the same change with the approval gate on, where the
 * approver reads the diff from `dbt-deploy diff`, `status` and `plan --running` before `approve`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decide, deployProgress, deployResult } from '../../client/deploys.js';
import { appendRawOrders } from '../../examples/jaffle_shop/raw-data.js';
import type { ProdDiff } from '../../workflows/diff.js';
import type { DeployResult } from '../../workflows/types.js';
import {
  type Engine,
  type ExampleProject,
  exampleProject,
  keepHistory,
  ROOT,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
} from '../support/harness.js';
import type { TestNamespace } from '../support/namespaces.js';
import { until } from '../support/processes.js';
import { backupSchemas, orderCoverage, PROD } from './scenarios.js';

const CLI = join(ROOT, 'bin', 'dbt-deploy');
/** One deploy of the example, with room for a loaded machine (vitest's default is one deploy's). */
const PER_DEPLOY = 480_000;

/** The rules of docs/audits.md, on the example: one of each kind. */
const AUDITS = (growth: 'error' | 'warn') => `audits:
  - name: orders_growth
    select: fct_orders
    max_row_change: 10%
    severity: ${growth}
  - min_rows: 1
    select: ['tag:mart']
  - no_removed_columns: true
  - no_lost_keys: true
  - name: no_negative_amounts
    select: fct_orders
    sql: select order_id, amount from {{ candidate }} where amount < 0
  - name: customers_kept
    select: dim_customers
    severity: warn
    sql: |
      select customer_id from {{ prod }}
      except
      select customer_id from {{ candidate }}
`;

export function auditScenario(
  engine: Exclude<Engine, 'bigquery'>,
  namespace: TestNamespace,
  strategy: 'wac' | 'blue-green',
): void {
  describe.sequential(`the diff and the audit rules in ${strategy} deploys on ${engine}`, () => {
    let project: ExampleProject;
    let worker: TestWorker;
    const config = () => join(project.dir, 'deploy.yml');
    let original: string;
    const setAudits = (growth: 'error' | 'warn') => writeFile(config(), `${original}${AUDITS(growth)}`);
    const deploy = () => worker.deploy({ projectDir: project.dir, strategy });
    const diffOf = (result: DeployResult, name: string) =>
      result.diff?.relations.find((l) => l.name === name);
    const details = async (result: DeployResult): Promise<ProdDiff> =>
      (
        JSON.parse(await readFile(join(result.artifactsDir, 'report.json'), 'utf8')) as {
          diffDetails: ProdDiff;
        }
      ).diffDetails;
    const cli = (args: string[]) =>
      execa(CLI, [...args, '--project-dir', project.dir], {
        reject: false,
        all: true,
        env: {
          TEMPORAL_ADDRESS: inject('temporalAddress'),
          TEMPORAL_NAMESPACE: worker.namespace,
          DBT_DEPLOY_TASK_QUEUE: worker.taskQueue,
        },
      });

    beforeAll(async () => {
      [project, worker] = await Promise.all([exampleProject(engine), startTestWorker(namespace)]);
      original = await readFile(config(), 'utf8');
      await setAudits('error');
    });
    afterAll(async () => worker?.stop());

    it(
      'diffs a first deploy against an empty prod: every relation new, nothing to compare the rules with',
      async () => {
        const result = await deploy();

        expect(result.status, result.reason).toBe('published');
        expect(diffOf(result, 'fct_orders')).toMatchObject({ status: 'new', before: null, after: 600 });
        expect(result.diff?.rules.failed).toBe(0);
        expect(result.diff?.findings).toContainEqual(
          expect.objectContaining({ rule: 'orders_growth', status: 'skipped' }),
        );
        expect(result.steps.find((s) => s.id === 'diff')).toMatchObject({ status: 'completed' });
        expect(await readFile(result.report!, 'utf8')).toContain('## Diff against prod');
      },
      PER_DEPLOY,
    );

    it(
      'lets a small change through every rule, with rows matched by key and sample rows in the report',
      async () => {
        await appendRawOrders(project.raw, { orders: 40 });

        const result = await deploy();

        expect(result.status, result.reason).toBe('published');
        expect(diffOf(result, 'fct_orders')).toMatchObject({
          status: 'changed',
          before: 600,
          after: 640,
          added: 40,
          removed: 0,
          key: ['order_id'],
        });
        expect(result.diff?.rules).toMatchObject({ failed: 0, warned: 0 });
        const full = await details(result);
        const orders = full.relations.find((r) => r.name === 'fct_orders')!;
        expect(orders.key).toEqual({ columns: ['order_id'], from: 'unique_key' });
        expect(orders.samples?.added.map((r) => Number(r['order_id']))).toEqual([601, 602, 603]);
        // The snapshot keeps its history by dbt's own version id.
        expect(full.relations.find((r) => r.name === 'customers_snapshot')?.key?.columns).toEqual([
          'dbt_scd_id',
        ]);
        expect(full.audits.filter((o) => o.status === 'failed')).toEqual([]);
        expect(full.audits.map((o) => o.rule)).toEqual(
          expect.arrayContaining([
            'orders_growth',
            'min_rows 1 on tag:mart',
            'no_lost_keys',
            'no_negative_amounts',
          ]),
        );
      },
      PER_DEPLOY,
    );

    it(
      'blocks the deploy that doubles fct_orders with max_row_change, naming the rule and both counts, prod untouched',
      async () => {
        const before = await snapshotSchema(project, PROD);
        const backups = await backupSchemas(project);
        await appendRawOrders(project.raw, { orders: 640 });

        const result = await deploy();

        expect(result.status).toBe('failed');
        expect(result.reason).toBe(
          'audit failed, prod untouched: rule "orders_growth": fct_orders: 640 → 1,280 rows (+100.0%), more than max_row_change 10%',
        );
        expect(result.steps.find((s) => s.id === 'diff')?.status).toBe('failed');
        expect(result.steps.filter((s) => s.status === 'completed').map((s) => s.id)).not.toContain('backup');
        expect(result.diff?.blocked).toBe(result.reason);
        // Prod's relations, row counts and checksums are what they were; no backup was taken.
        expect(await snapshotSchema(project, PROD)).toEqual(before);
        expect(await backupSchemas(project)).toEqual(backups);
        expect((await orderCoverage(project)).rows).toBe(640);
        if (engine === 'duckdb') await keepHistory(worker, result.workflowId, `${strategy}-audit-blocked`);
      },
      PER_DEPLOY,
    );

    it(
      'with the gate on, shows the diff to the approver (diff, status, plan --running) before approve, then publishes',
      async () => {
        await setAudits('warn');
        const { handle } = await worker.start({ projectDir: project.dir, strategy, requireApproval: true });
        // `status` follows the deploy from its start, as an approver's terminal would.
        const status = cli(['status']);
        let followed = '';
        status.all?.on('data', (chunk: Buffer) => (followed += chunk.toString()));
        await waitForGate(handle);

        const shown = await cli(['diff']);
        expect(shown.exitCode, shown.all).toBe(0);
        expect(shown.stdout).toMatch(/^deploy prod-\S+ \(\S+\) waits for approval until /);
        expect(shown.stdout).toContain(
          'fct_orders: 640 → 1,280 rows (+100.0%); by key (order_id): 640 added, 0 removed',
        );
        expect(shown.stdout).toContain(
          'warning: rule "orders_growth": fct_orders: 640 → 1,280 rows (+100.0%), more than max_row_change 10%',
        );
        // The sample rows come from the diff file, readable here: the first orders the doubling added.
        expect(shown.stdout).toMatch(/\+ \{"order_id":641,/);
        expect(shown.stdout).toContain('publish it with `dbt-deploy approve --env prod`');
        const json = JSON.parse((await cli(['diff', '--json'])).stdout) as ProdDiff;
        expect(json.relations.find((r) => r.name === 'fct_orders')?.rowChanges?.added).toBe(640);

        await until(
          'status shows the diff at the gate',
          async () =>
            followed.includes('waiting for approval until') &&
            followed.includes('fct_orders: 640 → 1,280 rows (+100.0%)'),
          60_000,
        ).catch((error: Error) => {
          throw new Error(`${error.message}; status printed:\n${followed}`);
        });
        expect(followed).toContain('warning: rule "orders_growth"');
        expect(followed).toContain('with sample rows of each change: dbt-deploy diff --env <env>');
        const running = await cli(['plan', '--running']);
        expect(running.stdout).toMatch(/is awaiting-approval: waiting for approval until/);
        expect(running.stdout).toMatch(/✔ \d+\. Diff every relation to publish against "prod"/);
        expect(running.stdout).toContain('fct_orders: 640 → 1,280 rows (+100.0%)');
        expect(running.stdout).toContain('warning: rule "orders_growth"');

        await decide(worker.client, 'jaffle_shop', 'prod', 'approve', { by: 'ana@data', note: 'a big day' });
        const result = await deployResult(handle);
        expect(result.status, result.reason).toBe('published');
        expect((await orderCoverage(project)).rows).toBe(1280);
        expect(result.diff?.rules.warned).toBeGreaterThanOrEqual(1);
        const ended = await status;
        expect(ended.exitCode, ended.all).toBe(0);
        expect(ended.stdout).toContain('PUBLISHED');
        const report = await readFile(result.report!, 'utf8');
        expect(report).toContain('⚠ `orders_growth` on `fct_orders`');
        expect(report).toMatch(
          /\| `fct_orders` \| changed \| 640 → 1280 \(\+100\.0%\) \| 640 \/ 0 \/ \d+ \(order_id\) \|/,
        );
      },
      2 * PER_DEPLOY,
    );
  });
}

async function waitForGate(handle: WorkflowHandle): Promise<void> {
  await until(
    'the deploy waits at the approval gate',
    async () => (await deployProgress(handle).catch(() => undefined))?.phase === 'awaiting-approval',
    PER_DEPLOY,
  );
}
