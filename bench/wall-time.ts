/**
 * `npx tsx bench/wall-time.ts` (and `npm run bench`): what a deploy costs beyond the dbt build it runs. For each project and
 * strategy on DuckDB, paired runs of a bare `dbt build --target staging` (as a user would type it in
 * the project) and a whole deploy through Temporal, with the median of each, their ratio, and how
 * many times the deploy started dbt. Projects: the example (examples/jaffle_shop) and a generated one
 * whose build takes about a minute (one slow table under a few models). Prints a table; asserts nothing.
 *
 * BENCH_RUNS (pairs per row, default 5), BENCH_PROJECTS (`example,slow`), BENCH_STRATEGIES
 * (`wac,blue-green`), BENCH_SLOW_ROWS (rows the slow model hashes, default 4e9) tune it.
 */
import { cpus } from 'node:os';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { DBT_ENV, dbtBin } from '../activities/dbt.js';
import { deployResult, newDeployId, startDeploy } from '../client/deploys.js';
import { startDevServer } from '../client/dev-server.js';
import { prepareDeploy } from '../client/preflight.js';
import { createExampleWorkspace } from '../examples/jaffle_shop/workspace.js';
import { bundleDeployWorkflows, createDeployWorker, quietRuntime } from '../worker/worker.js';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 5);
const PROJECTS = (process.env['BENCH_PROJECTS'] ?? 'example,slow').split(',');
const STRATEGIES = (process.env['BENCH_STRATEGIES'] ?? 'wac,blue-green').split(',');
const SLOW_ROWS = process.env['BENCH_SLOW_ROWS'] ?? '4000000000';

interface Row {
  project: string;
  strategy: string;
  bare: number[];
  deploy: number[];
  starts: number[];
  /** Per run: seconds from each activity's scheduling to its completion, in history order. */
  steps: Array<Array<[string, number]>>;
}

let lastSteps: Array<[string, number]> = [];

/** Where a deploy's time went: each activity, from scheduled to completed, read from its history. */
async function activityTimes(handle: WorkflowHandle): Promise<Array<[string, number]>> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, { name: string; at: number }>();
  const times: Array<[string, number]> = [];
  const seconds = (event: NonNullable<typeof history.events>[number]) =>
    Number(event.eventTime?.seconds ?? 0) + (event.eventTime?.nanos ?? 0) / 1e9;
  for (const event of history.events ?? []) {
    const attributes = event.activityTaskScheduledEventAttributes;
    if (attributes)
      scheduled.set(String(event.eventId), {
        name: attributes.activityType?.name ?? '?',
        at: seconds(event),
      });
    const done = event.activityTaskCompletedEventAttributes;
    const start = done && scheduled.get(String(done.scheduledEventId));
    if (start) times.push([start.name, seconds(event) - start.at]);
  }
  return times;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** A project whose build is dominated by one slow table, with views and tables around it as usual. */
async function slowProject(dir: string): Promise<void> {
  await mkdir(join(dir, 'models'), { recursive: true });
  await writeFile(
    join(dir, 'dbt_project.yml'),
    [
      'name: slow',
      "version: '1.0'",
      'config-version: 2',
      'profile: slow',
      'models:',
      '  slow:',
      '    +materialized: table',
      "    +tags: ['mart']",
    ].join('\n'),
  );
  const target = (schema: string) => ({ type: 'duckdb', path: 'slow.duckdb', schema, threads: 4 });
  await writeFile(
    join(dir, 'profiles.yml'),
    JSON.stringify({
      slow: {
        target: 'staging',
        outputs: { prod: target('analytics'), staging: target('analytics_staging') },
      },
    }),
  );
  await writeFile(
    join(dir, 'deploy.yml'),
    'strategy: wac\nenvironments:\n  prod:\n    target: prod\n    staging_target: staging\npublish:\n  tags: [mart]\n',
  );
  const models: Record<string, string> = {
    'base.sql': "{{ config(materialized='view') }} select range as id from range(1000)",
    'heavy.sql': `select sum(hash(i)) as h, count(*) as n from range(0, ${SLOW_ROWS}) t(i)`,
    'summary.sql': "select h, n, (select count(*) from {{ ref('base') }}) as ids from {{ ref('heavy') }}",
    'report.sql': "{{ config(materialized='view') }} select * from {{ ref('summary') }}",
  };
  for (const [name, sql] of Object.entries(models)) await writeFile(join(dir, 'models', name), `${sql}\n`);
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

/** Every dbt invocation of a deploy logs into `<its target path>/logs`: one folder per dbt start. */
async function dbtStarts(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isDirectory() && entry.name === 'logs').length;
}

const started = new Date();
const scratch = await mkdtemp(join(tmpdir(), 'dbt-deploy-wall-time-'));
quietRuntime();
const [server, bundle] = await Promise.all([startDevServer(), bundleDeployWorkflows()]);
const taskQueue = 'bench-wall-time';
const { worker, connection } = await createDeployWorker({
  address: server.address,
  namespace: server.namespace,
  taskQueue,
  workflowBundle: bundle,
});
const running = worker.run();
const clientConnection = await Connection.connect({ address: server.address });
const client = new Client({ connection: clientConnection, namespace: server.namespace });
const rows: Row[] = [];
try {
  for (const project of PROJECTS) {
    for (const strategy of STRATEGIES) {
      const dir = join(scratch, `${project}-${strategy}`);
      if (project === 'example') await createExampleWorkspace(dir);
      else await slowProject(dir);
      const bare = () =>
        execa(dbtBin(), ['build', '--target', 'staging', '--profiles-dir', '.'], {
          cwd: dir,
          env: DBT_ENV,
        });
      const deploy = async () => {
        const prepared = prepareDeploy({ projectDir: dir, strategy });
        const input = { ...prepared.input, deployId: newDeployId(prepared.input.env) };
        const handle = await startDeploy(client, input, taskQueue);
        const result = await deployResult(handle);
        if (result.status !== 'published')
          throw new Error(`${strategy} deploy ${result.status}: ${result.reason}`);
        lastSteps = await activityTimes(handle);
        return join(dir, 'target', 'dbt-deploy', input.deployId);
      };
      // Not counted: the first build parses from scratch and the first deploy creates prod.
      await bare();
      await deploy();
      const row: Row = { project, strategy, bare: [], deploy: [], starts: [], steps: [] };
      for (let run = 0; run < RUNS; run += 1) {
        row.bare.push(await timed(bare));
        let artifacts = '';
        row.deploy.push(
          await timed(async () => {
            artifacts = await deploy();
          }),
        );
        row.starts.push(await dbtStarts(artifacts));
        row.steps.push(lastSteps);
      }
      rows.push(row);
      console.error(`${project} ${strategy}: bare ${row.bare.map((s) => s.toFixed(1)).join(' ')}`);
      console.error(`${project} ${strategy}: deploy ${row.deploy.map((s) => s.toFixed(1)).join(' ')}`);
    }
  }
} finally {
  worker.shutdown();
  await running;
  await connection.close();
  await clientConnection.close();
  await server.stop();
  await rm(scratch, { recursive: true, force: true });
}

const command = [
  `BENCH_RUNS=${RUNS}`,
  `BENCH_PROJECTS=${PROJECTS.join(',')}`,
  `BENCH_STRATEGIES=${STRATEGIES.join(',')}`,
  ...(PROJECTS.includes('slow') ? [`BENCH_SLOW_ROWS=${SLOW_ROWS}`] : []),
  'npx tsx bench/wall-time.ts',
].join(' ');
console.log(
  `Deploy wall time against a bare \`dbt build --target staging\` of the same project, DuckDB, ` +
    `${cpus().length} cores, ${started.toISOString()}`,
);
console.log('');
console.log(
  '| project | strategy | engine | bare build median (s) | deploy median (s) | ratio | dbt starts per deploy | N |',
);
console.log('|---|---|---|---:|---:|---:|---:|---:|');
for (const row of rows) {
  const bare = median(row.bare);
  const deploy = median(row.deploy);
  console.log(
    `| ${row.project} | ${row.strategy} | duckdb | ${bare.toFixed(1)} | ${deploy.toFixed(1)} | ${(deploy / bare).toFixed(2)} | ${median(row.starts)} | ${row.bare.length} |`,
  );
}
console.log('');
console.log('Where the median deploy of each row spent its time (activity scheduled to completed, seconds):');
console.log('');
for (const row of rows) {
  const middle = row.deploy.indexOf(median(row.deploy));
  const steps = row.steps[middle] ?? [];
  console.log(
    `- ${row.project} ${row.strategy}: ${steps.map(([name, time]) => `${name} ${time.toFixed(1)}`).join(', ')}`,
  );
}
console.log('');
console.log(`Reproduce: \`${command}\``);
