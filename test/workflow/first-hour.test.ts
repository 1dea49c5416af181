/**
 * What a new user meets in the first hour, on the example project, DuckDB, the real worker and dbt:
 * a deploy that fails because a source table is missing says which node failed with dbt's words,
 * counts what was skipped and names the source and its loader; every run carries a summary and
 * details for the Temporal UI (manual and scheduled) and its outcome once it ends; `publish.select`
 * publishes any dbt selection (path, fqn, a YAML selector), and one that selects nothing is refused
 * before the build, prod untouched.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skippedCount } from '../../activities/audit-reason.js';
import { deployResult } from '../../client/deploys.js';
import { formatResult } from '../../client/report.js';
import { changeSchedule, createSchedule } from '../../client/schedules.js';
import { prepareDeploy } from '../../client/preflight.js';
import { loadRawData } from '../../examples/jaffle_shop/raw-data.js';
import type { DeployResult } from '../../workflows/types.js';
import {
  type ExampleProject,
  exampleProject,
  look,
  type RelationSnapshot,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
} from '../support/harness.js';

const PROD = 'analytics';
/** A test's time limit: a deploy on a busy 2-core machine can take minutes; vitest's default is one deploy. */
const TIME = 600_000;
const GIT_SHA = '0123456789abcdef0123456789abcdef01234567';

/** The example's deploy.yml with `publish` replaced. */
const deployYml = (publish: string) =>
  [
    'strategy: wac',
    'environments:',
    '  prod: {target: prod, staging_target: staging, audit_target: audit}',
    `publish: ${publish}`,
    '',
  ].join('\n');

describe.sequential('the first hour with the example on DuckDB', () => {
  let project: ExampleProject;
  let worker: TestWorker;
  const prod = () => snapshotSchema(project.database, PROD);
  const setPublish = (publish: string) => writeFile(join(project.dir, 'deploy.yml'), deployYml(publish));

  beforeAll(async () => {
    [project, worker] = await Promise.all([exampleProject(), startTestWorker('test-first-hour')]);
  });
  afterAll(async () => worker?.stop());

  /** Runs a deploy to its end and returns its result with the handle of its run. */
  async function deploy(
    options: Parameters<TestWorker['start']>[0],
  ): Promise<{ result: DeployResult; handle: WorkflowHandle }> {
    const { handle } = await worker.start({ projectDir: project.dir, ...options });
    return { result: await deployResult(handle), handle };
  }

  /** The run's markdown in the UI's "current details" (the SDK's built-in metadata query). */
  async function currentDetails(handle: WorkflowHandle): Promise<string> {
    const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    return metadata.currentDetails ?? '';
  }

  it(
    'a missing source table: the failed model first with dbt`s message, the skipped ones counted, the source and its loader named',
    async () => {
      await look(project.database, (read) => read('DROP TABLE raw.orders'));

      const { result, handle } = await deploy({ gitSha: GIT_SHA });

      expect(result.status).toBe('failed');
      const reason = result.reason ?? '';
      // The one node that failed, with dbt's own words, before anything else.
      expect(reason).toMatch(
        /^audit failed, prod untouched: 1 failed: raw_orders \(error\): Catalog Error: Table with name "?(raw\.)?orders"? does not exist/,
      );
      // What dbt skipped because of it is counted, not listed.
      const skipped = skippedCount(result.audit!);
      expect(skipped).toBeGreaterThan(10);
      expect(reason).toContain(`; ${skipped} skipped because of them; `);
      expect(reason).not.toMatch(/not_null_raw_orders_id|stg_orders \(skipped\)/);
      // The cause, and how it gets fixed: the source and the loader its YAML names.
      expect(reason).toContain('the source table shop.orders ("jaffle_shop"."raw"."orders") does not exist');
      expect(reason).toContain('npm run example:sources');
      expect(result.audit?.blocking[0]).toMatchObject({ name: 'raw_orders', status: 'error' });
      expect(result.steps.find((s) => s.id === 'audit')?.summary).toBe(
        `1 failed, ${skipped} skipped: raw_orders (error)`,
      );
      expect(await prod()).toEqual({});

      // The terminal report: the failure with its message on one line, then one line for the skipped.
      const report = formatResult(result).split('\n');
      expect(report.filter((l) => l.startsWith('    failed: '))).toEqual([
        expect.stringMatching(/^ {4}failed: raw_orders \(error\): Catalog Error: .*orders.* does not exist/),
      ]);
      expect(report).toContain(
        `    skipped because of them: ${skipped} (see run_results.json in the artifacts)`,
      );

      // In the UI: a summary and details fixed at the start, the outcome in the current details.
      const description = await handle.describe();
      expect(await description.staticSummary()).toBe(
        `Deploy jaffle_shop to prod with wac: ${result.deployId}, git ${GIT_SHA.slice(0, 12)}`,
      );
      const details = (await description.staticDetails()) ?? '';
      expect(details).toContain(`| deploy id | \`${result.deployId}\` |`);
      expect(details).toContain(`| git sha | \`${GIT_SHA}\` |`);
      expect(details).toContain('| strategy | wac |');
      expect(details).toContain('| publishes | the models tagged mart, utils |');
      expect((await currentDetails(handle)).split('\n')[0]).toMatch(
        new RegExp(
          `^\\*\\*Outcome: failed\\*\\* in [\\d.]+ s \\(deploy ${result.deployId}, git ${GIT_SHA}\\): audit failed`,
        ),
      );

      await loadRawData(project.raw);
    },
    TIME,
  );

  it(
    'publish.select by path and fqn: wac publishes exactly those models (with the seed and the snapshot)',
    async () => {
      await setPublish('{select: [path:models/marts/dim_customers.sql, fqn:jaffle_shop.marts.fct_orders]}');

      const { result, handle } = await deploy({});

      expect(result.status, result.reason).toBe('published');
      expect(result.steps[0]).toMatchObject({
        id: 'check-publish',
        status: 'completed',
        summary: '2 models to publish: dim_customers, fct_orders',
      });
      expect(Object.keys(await prod()).sort()).toEqual([
        'customer_segments',
        'customers_snapshot',
        'dim_customers',
        'fct_orders',
      ]);
      expect(result.published.map((r) => r.split('.').at(-1)).sort()).toEqual([
        'customer_segments',
        'customers_snapshot',
        'dim_customers',
        'fct_orders',
      ]);
      const description = await handle.describe();
      expect(await description.staticSummary()).toBe(
        `Deploy jaffle_shop to prod with wac: ${result.deployId}`,
      );
      expect(await description.staticDetails()).toContain(
        '| publishes | the models selected by path:models/marts/dim_customers.sql fqn:jaffle_shop.marts.fct_orders |',
      );
      expect((await currentDetails(handle)).split('\n')[0]).toMatch(
        /^\*\*Outcome: published\*\* in [\d.]+ s \(deploy .*\): 4 relations in prod$/,
      );
    },
    TIME,
  );

  it(
    'a selection that matches nothing is refused before the build, prod untouched',
    async () => {
      const before = await prod();
      await setPublish('{select: [path:models/nothing_here]}');

      const { result } = await deploy({});

      expect(result.status).toBe('failed');
      expect(result.reason).toMatch(
        /^publish\.select \[path:models\/nothing_here\] selects no model of jaffle_shop to publish: stopped before the build, prod untouched/,
      );
      expect(result.steps.map((s) => [s.id, s.status])).toEqual([
        ['check-publish', 'failed'],
        ['build', 'skipped'],
        ['audit', 'skipped'],
        ['select', 'skipped'],
        ['diff', 'skipped'],
        ['backup', 'skipped'],
        ['publish-tables', 'skipped'],
        ['publish-views', 'skipped'],
        ['verify', 'skipped'],
      ]);
      expect(result.audit).toBeNull();
      expect(await prod()).toEqual(before);
    },
    TIME,
  );

  it(
    'a YAML selector of selectors.yml: wap rebuilds only what it selects in prod; nothing else changes',
    async () => {
      await writeFile(
        join(project.dir, 'selectors.yml'),
        'selectors:\n  - name: calendar\n    definition: {method: path, value: models/utils}\n',
      );
      await setPublish('{select: calendar}');
      const before = await prod();

      const { result } = await deploy({ strategy: 'wap' });

      expect(result.status, result.reason).toBe('published');
      expect(result.steps[0]?.summary).toBe('1 models to publish: util_calendar');
      const after = await prod();
      const changed = Object.keys(after)
        .filter((name) => !sameRelation(before[name], after[name]))
        .sort();
      // The selected model is new in prod; wap rebuilds the seed and the snapshot with every deploy,
      // and their rows stay the same (no source changed).
      expect(changed).toEqual(['util_calendar']);
      expect(Object.keys(after).sort()).toEqual([...Object.keys(before), 'util_calendar'].sort());
    },
    TIME,
  );

  it(
    'the same YAML selector with wac: what it selects is compiled for prod before the build and published with the seed and the snapshot',
    async () => {
      const { result } = await deploy({});

      expect(result.status, result.reason).toBe('published');
      expect(result.steps[0]?.summary).toBe('1 models to publish: util_calendar');
      expect(result.published.map((r) => r.split('.').at(-1)).sort()).toEqual([
        'customer_segments',
        'customers_snapshot',
        'util_calendar',
      ]);
      const staging = await snapshotSchema(project.database, 'analytics_staging');
      const after = await prod();
      for (const name of ['customer_segments', 'customers_snapshot', 'util_calendar'])
        expect(after[name], name).toEqual(staging[name]);
    },
    TIME,
  );

  it(
    'a scheduled deploy carries the same summary and details, and the schedule its own',
    async () => {
      const { input } = prepareDeploy({ projectDir: project.dir, gitSha: GIT_SHA });
      const handle = worker.client.workflow.getHandle('dbt-deploy-jaffle_shop-prod');
      const previous = (await handle.describe()).runId;
      await createSchedule(worker.client, input, '0 6 1 1 *', worker.taskQueue);
      try {
        const schedule = await worker.client.schedule.getHandle('dbt-deploy-jaffle_shop-prod').describe();
        expect(schedule.action).toMatchObject({
          staticSummary: `Scheduled deploy of jaffle_shop to prod with wac: cron "0 6 1 1 *", git ${GIT_SHA.slice(0, 12)}`,
        });
        await changeSchedule(worker.client, 'jaffle_shop', 'prod', 'trigger');
        const run = await waitFor(async () => {
          const described = await handle.describe();
          return described.runId !== previous ? described : undefined;
        });
        const result = await deployResult(worker.client.workflow.getHandle(run.workflowId, run.runId));
        expect(result.status).toBe('published');
        const description = await worker.client.workflow.getHandle(run.workflowId, run.runId).describe();
        expect(await description.staticSummary()).toBe(
          `Scheduled deploy of jaffle_shop to prod with wac: ${result.deployId}, git ${GIT_SHA.slice(0, 12)}`,
        );
        const details = (await description.staticDetails()) ?? '';
        expect(details).toContain(`| deploy id | \`${result.deployId}\` |`);
        expect(details).toContain('| started by | schedule `dbt-deploy-jaffle_shop-prod` |');
      } finally {
        await changeSchedule(worker.client, 'jaffle_shop', 'prod', 'delete');
      }
    },
    TIME,
  );
});

function sameRelation(a: RelationSnapshot | undefined, b: RelationSnapshot | undefined): boolean {
  return a !== undefined && b !== undefined && a.kind === b.kind && a.rows === b.rows && a.md5 === b.md5;
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = await probe().catch(() => undefined);
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error('timed out waiting for the scheduled deploy to start');
}
