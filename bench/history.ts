/**
 * How big one deploy's Temporal history is as the project grows: a generated DuckDB project of N
 * tiny models (every fifth a table, the rest views, no refs, no tests: the cheapest dbt can build) is
 * deployed once on a worker of this checkout against a private dev server, and the history is read
 * back from the server through the client. Everything that scales with the models must travel as an
 * artifact reference, so the history should stay flat and every payload far below Temporal's 2 MiB.
 * Prints a markdown table; asserts nothing.
 *
 *   BENCH_MODELS=10,1000,5000 BENCH_STRATEGY=blue-green npx tsx bench/history.ts
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import { startDevServer } from '../client/dev-server.js';
import { deployResult, newDeployId, startDeploy } from '../client/deploys.js';
import { prepareDeploy } from '../client/preflight.js';
import { bundleDeployWorkflows, createDeployWorker, quietRuntime } from '../worker/worker.js';

const { temporal } = proto;

process.env['DBT_SEND_ANONYMOUS_USAGE_STATS'] = 'false';
process.env['DO_NOT_TRACK'] = '1';

const SIZES = (process.env['BENCH_MODELS'] ?? '10,1000,5000').split(',').map(Number);
const STRATEGY = process.env['BENCH_STRATEGY'] ?? 'blue-green';
/** A deploy whose workflow task keeps failing (a payload over the limit) never ends by itself. */
const GIVE_UP_MS = Number(process.env['BENCH_TIMEOUT_MINUTES'] ?? '90') * 60_000;
const COMMAND = `BENCH_MODELS=${SIZES.join(',')} BENCH_STRATEGY=${STRATEGY} npx tsx bench/history.ts`;

interface Row {
  models: number;
  outcome: string;
  seconds: number;
  events: number;
  historyBytes: number;
  largestBytes: number;
  largestIn: string;
  /** The largest input an activity was scheduled with. */
  largestActivityInput: number;
}

/** A dbt project of `models` models that build in one statement each and need nothing upstream. */
async function generateProject(dir: string, models: number): Promise<void> {
  await mkdir(join(dir, 'models'), { recursive: true });
  await writeFile(
    join(dir, 'dbt_project.yml'),
    [
      'name: generated',
      "version: '1.0.0'",
      'config-version: 2',
      'profile: generated',
      "model-paths: ['models']",
      'models:',
      '  generated:',
      '    +materialized: view',
      "    +tags: ['mart']",
      '',
    ].join('\n'),
  );
  const target = (schema: string) =>
    `    ${schema}:\n      type: duckdb\n      path: generated.duckdb\n      schema: ${schema}\n      threads: 4\n`;
  await writeFile(
    join(dir, 'profiles.yml'),
    `generated:\n  target: staging\n  outputs:\n${target('prod')}${target('staging')}`,
  );
  await writeFile(
    join(dir, 'deploy.yml'),
    `strategy: ${STRATEGY}\nenvironments:\n  prod:\n    target: prod\n    staging_target: staging\npublish:\n  tags: [mart]\n`,
  );
  for (let i = 0; i < models; i += 1) {
    const name = `model_${String(i).padStart(5, '0')}`;
    const config = i % 5 === 0 ? "{{ config(materialized='table') }}\n" : '';
    await writeFile(join(dir, 'models', `${name}.sql`), `${config}select ${i} as id, '${name}' as name\n`);
  }
}

/** Every payload in the history (inputs, results, details, markers) with where it sits. */
function payloadsOf(value: unknown, where: string, found: Array<{ bytes: number; where: string }>): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const item of value) payloadsOf(item, where, found);
    return;
  }
  const record = value as Record<string, unknown>;
  if (record['data'] instanceof Uint8Array && 'metadata' in record) {
    const metadata = Object.values((record['metadata'] ?? {}) as Record<string, Uint8Array>);
    found.push({ bytes: record['data'].length + metadata.reduce((n, m) => n + m.length, 0), where });
    return;
  }
  for (const inner of Object.values(record)) payloadsOf(inner, where, found);
}

/** Waits for the result, or gives up on a deploy whose workflow task keeps failing. */
async function outcomeOf(handle: WorkflowHandle): Promise<string> {
  const result = deployResult(handle).then(
    (r) => `${r.status}${r.reason ? `: ${r.reason.slice(0, 80)}` : ''}`,
    (error: unknown) => `error: ${error instanceof Error ? error.message.slice(0, 80) : String(error)}`,
  );
  const started = Date.now();
  for (;;) {
    const done = await Promise.race([result, new Promise((r) => setTimeout(r, 15_000, undefined))]);
    if (typeof done === 'string') return done;
    const history = await handle.fetchHistory();
    const stuck = (history.events ?? []).find((e) => e.workflowTaskFailedEventAttributes);
    if (stuck || Date.now() - started > GIVE_UP_MS) {
      const failure = stuck?.workflowTaskFailedEventAttributes?.failure?.message ?? 'timed out';
      await handle.terminate('bench: the deploy cannot go on').catch(() => undefined);
      return `stuck: ${failure.slice(0, 100)}`;
    }
  }
}

async function measure(client: Client, taskQueue: string, models: number): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), `dbt-deploy-history-${models}-`));
  try {
    await generateProject(dir, models);
    const prepared = prepareDeploy({ projectDir: dir });
    const input = { ...prepared.input, deployId: newDeployId(prepared.input.env) };
    const start = performance.now();
    const handle = await startDeploy(client, input, taskQueue);
    const outcome = await outcomeOf(handle);
    const seconds = (performance.now() - start) / 1000;
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const found: Array<{ bytes: number; where: string }> = [];
    let largestActivityInput = 0;
    for (const event of events) {
      const type = temporal.api.enums.v1.EventType[event.eventType ?? 0] ?? 'unknown';
      const attributes = Object.entries(event).find(([k]) => k.endsWith('EventAttributes'))?.[1];
      const before = found.length;
      payloadsOf(attributes, type.replace('EVENT_TYPE_', ''), found);
      const scheduled = event.activityTaskScheduledEventAttributes;
      if (scheduled) {
        const bytes = found.slice(before).reduce((n, p) => n + p.bytes, 0);
        largestActivityInput = Math.max(largestActivityInput, bytes);
      }
    }
    const largest = found.reduce((a, b) => (b.bytes > a.bytes ? b : a), { bytes: 0, where: '-' });
    return {
      models,
      outcome,
      seconds,
      events: events.length,
      historyBytes: temporal.api.history.v1.History.encode(history).finish().length,
      largestBytes: largest.bytes,
      largestIn: largest.where,
      largestActivityInput,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

quietRuntime();
const server = await startDevServer({ startupTimeoutMs: 120_000 });
const taskQueue = `bench-history-${process.pid}`;
const { worker, connection } = await createDeployWorker({
  address: server.address,
  namespace: server.namespace,
  taskQueue,
  workflowBundle: await bundleDeployWorkflows(),
});
const running = worker.run();
const clientConnection = await Connection.connect({ address: server.address });
const client = new Client({ connection: clientConnection, namespace: server.namespace });
const rows: Row[] = [];
try {
  for (const models of SIZES) {
    const row = await measure(client, taskQueue, models);
    rows.push(row);
    console.error(JSON.stringify(row));
  }
} finally {
  worker.shutdown();
  await running;
  await connection.close();
  await clientConnection.close();
  await server.stop();
}

const smallest = rows[0]?.historyBytes ?? 1;
console.log(`### History of one ${STRATEGY} deploy (DuckDB, generated project)\n`);
console.log(`\`${COMMAND}\` — ${cpus().length} cores; read from the server with \`fetchHistory()\`\n`);
console.log(
  '| models | outcome | deploy wall time | events | history bytes | vs smallest | largest payload | largest activity input |',
);
console.log('|---:|---|---:|---:|---:|---:|---|---:|');
for (const r of rows) {
  console.log(
    `| ${r.models} | ${r.outcome} | ${r.seconds.toFixed(0)} s | ${r.events} | ${kb(r.historyBytes)} | ` +
      `${(r.historyBytes / smallest).toFixed(2)}× | ${kb(r.largestBytes)} (${r.largestIn}) | ${kb(r.largestActivityInput)} |`,
  );
}
