/**
 * What the workflow and CLI tests share: a fresh copy of the example project with its raw sources, a
 * worker on its own task queue against the run's Temporal server, and an independent look at the
 * warehouse (relations, row counts, checksums) that does not go through the adapter under test.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import pg from 'pg';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import { inject } from 'vitest';
import { temporalCliPath } from '../../client/dev-server.js';
import { createActivities, type DeployActivities } from '../../activities/steps.js';
import { deployResult, newDeployId, type Operation, startDeploy } from '../../client/deploys.js';
import { type DeployOptions, prepareDeploy } from '../../client/preflight.js';
import type { BigQueryRawTarget, RawTarget } from '../../examples/jaffle_shop/raw-data.js';
import { createExampleWorkspace, type ExampleWorkspace } from '../../examples/jaffle_shop/workspace.js';
import { createDeployWorker, quietRuntime } from '../../worker/worker.js';
import type { DeployInput, DeployResult } from '../../workflows/types.js';
import type { TestNamespace } from './namespaces.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export type ExampleProject = ExampleWorkspace;

export type Engine = 'duckdb' | 'postgres' | 'bigquery';

/**
 * A private copy of examples/jaffle_shop with its raw sources loaded: on DuckDB in its own file, on
 * PostgreSQL in a fresh database of the run's server (so test files never see each other's schemas).
 */
export async function exampleProject(engine: Engine = 'duckdb'): Promise<ExampleProject> {
  const dir = join(await mkdtemp(join(tmpdir(), 'dbt-deploy-test-')), 'jaffle_shop');
  if (engine === 'duckdb') return createExampleWorkspace(dir);
  if (engine === 'bigquery') {
    const apiEndpoint = inject('bigqueryEndpoint');
    if (!apiEndpoint)
      throw new Error('the BigQuery emulator is not installed: run `scripts/setup --bigquery`');
    // A project of its own per workspace: the emulator keeps projects apart, so files never meet.
    const projectId = `jaffle-${randomBytes(4).toString('hex')}`;
    return createExampleWorkspace(dir, { bigquery: { projectId, location: 'US', apiEndpoint } });
  }
  const server = inject('postgres');
  const database = `jaffle_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ ...server });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  return createExampleWorkspace(dir, { postgres: { ...server, database } });
}

export interface TestWorker {
  namespace: TestNamespace;
  taskQueue: string;
  client: Client;
  deploy(options: DeployOptions): Promise<DeployResult>;
  rollback(options: DeployOptions & { to?: string }): Promise<DeployResult>;
  /** Starts a deploy without waiting for it: for approvals, aborts and concurrency. */
  start(options: DeployOptions): Promise<{ handle: WorkflowHandle; input: DeployInput }>;
  refreshMirror(options: DeployOptions): Promise<DeployResult>;
  stop(): Promise<void>;
}

/** A worker and client on a task queue of their own; `activities` replaces the real ones (fault injection). */
export async function startTestWorker(
  namespace: TestNamespace,
  activities?: DeployActivities,
): Promise<TestWorker> {
  quietRuntime();
  const address = inject('temporalAddress');
  const taskQueue = `test-${randomBytes(4).toString('hex')}`;
  const { worker, connection } = await createDeployWorker({
    address,
    namespace,
    taskQueue,
    workflowBundle: { codePath: inject('workflowBundlePath') },
    ...(activities ? { activities } : {}),
  });
  const running = worker.run();
  const clientConnection = await Connection.connect({ address });
  const client = new Client({ connection: clientConnection, namespace });
  const start = async (operation: Operation, options: DeployOptions, rollbackTo?: string) => {
    const prepared = prepareDeploy(options);
    const input: DeployInput = {
      ...prepared.input,
      deployId: newDeployId(prepared.input.env),
      ...(rollbackTo ? { rollbackTo } : {}),
    };
    return { handle: await startDeploy(client, input, taskQueue, operation), input };
  };
  const run = async (operation: Operation, options: DeployOptions, rollbackTo?: string) =>
    deployResult((await start(operation, options, rollbackTo)).handle);
  return {
    namespace,
    taskQueue,
    client,
    deploy: (options) => run('deploy', options),
    start: (options) => start('deploy', options),
    rollback: ({ to, ...options }) => run('rollback', { ...options, forRollback: true }, to),
    refreshMirror: (options) => run('mirror-refresh', { ...options, strategy: 'mirror' }),
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
      await clientConnection.close();
    },
  };
}

/**
 * A fault that cannot be produced for real on demand: the named activity fails with a non-retryable
 * error instead of running. Everything else is the real activity.
 */
export function withInjectedFault(activity: keyof DeployActivities, onlyStep?: string): DeployActivities {
  const real = createActivities();
  const original = real[activity] as (request: { stepId: string }) => Promise<unknown>;
  return {
    ...real,
    [activity]: async (request: { stepId: string }) => {
      if (onlyStep && request.stepId !== onlyStep) return original(request);
      throw ApplicationFailure.nonRetryable(`injected fault in ${activity}`, 'InjectedFault');
    },
  };
}

/**
 * Saves the history a deploy just made under .test-runs/histories. Copy one into test/replay/histories
 * to pin it: the replay test then fails on any workflow change that would break deploys in flight.
 */
export async function keepHistory(worker: TestWorker, workflowId: string, name: string): Promise<void> {
  // The Temporal CLI writes the JSON form that Worker.runReplayHistory reads back.
  const { runId } = await worker.client.workflow.getHandle(workflowId).describe();
  const { stdout } = await execa(temporalCliPath(), [
    'workflow',
    'show',
    '--workflow-id',
    workflowId,
    '--run-id',
    runId,
    '--output',
    'json',
    '--address',
    inject('temporalAddress'),
    '--namespace',
    worker.namespace,
  ]);
  const dir = join(ROOT, '.test-runs', 'histories');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${name}.json`), stdout);
}

export interface RelationSnapshot {
  kind: 'table' | 'view';
  rows: number;
  /** md5 over every row's text in sorted order: any changed, added or lost row changes it. */
  md5: string;
}

type Read = (sql: string) => Promise<Record<string, unknown>[]>;

/** Where a test looks: a DuckDB file, a project (DuckDB or PostgreSQL), or a raw-data target. */
export type LookTarget = string | ExampleWorkspace | RawTarget;

/**
 * Opens the warehouse for one look with a plain client (not the adapter under test) and closes it,
 * so the worker's next step can have a DuckDB file.
 */
export async function look<T>(target: LookTarget, work: (read: Read) => Promise<T>): Promise<T> {
  const where = typeof target === 'object' && 'raw' in target ? target.raw : target;
  if (typeof where === 'object' && 'bigquery' in where) return work(bigQueryReader(where.bigquery));
  if (typeof where === 'object') {
    const client = new pg.Client(where.postgres);
    await client.connect();
    try {
      return await work(async (sql) => (await client.query<Record<string, unknown>>(sql)).rows);
    } finally {
      await client.end();
    }
  }
  const instance = await DuckDBInstance.create(where);
  const connection = await instance.connect();
  try {
    return await work(async (sql) => (await connection.runAndReadAll(sql)).getRowObjectsJson());
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** A plain BigQuery client on the emulator (or a live project), reading through jobs so errors surface. */
function bigQueryReader(target: BigQueryRawTarget): Read {
  const client = bigQueryOf(target);
  return async (sql) => {
    const [job] = await client.createQueryJob({ query: sql, location: target.location });
    const [rows] = await job.getQueryResults();
    return rows as Record<string, unknown>[];
  };
}

function bigQueryOf(target: BigQueryRawTarget): BigQuery {
  return new BigQuery({
    projectId: target.projectId,
    location: target.location,
    ...(target.apiEndpoint ? { apiEndpoint: target.apiEndpoint, authClient: new PassThroughClient() } : {}),
  });
}

function bigQueryTarget(target: LookTarget): BigQueryRawTarget | undefined {
  const where = typeof target === 'object' && 'raw' in target ? target.raw : target;
  return typeof where === 'object' && 'bigquery' in where ? where.bigquery : undefined;
}

/** BigQuery's relations have no common SQL catalogue across datasets: they are listed by the API. */
async function snapshotDataset(
  target: BigQueryRawTarget,
  dataset: string,
): Promise<Record<string, RelationSnapshot>> {
  let tables;
  try {
    [tables] = await bigQueryOf(target).dataset(dataset).getTables();
  } catch (error) {
    if ((error as { code?: number }).code === 404) return {};
    throw error;
  }
  const read = bigQueryReader(target);
  const snapshot: Record<string, RelationSnapshot> = {};
  for (const table of [...tables].sort((a, b) => String(a.id).localeCompare(String(b.id)))) {
    const name = String(table.id);
    const [content] = await read(
      `SELECT COUNT(*) AS n, TO_HEX(MD5(COALESCE(STRING_AGG(TO_JSON_STRING(r), '|' ORDER BY TO_JSON_STRING(r)), ''))) AS md5 FROM \`${target.projectId}.${dataset}.${name}\` AS r`,
    );
    snapshot[name] = {
      kind: table.metadata?.type === 'VIEW' ? 'view' : 'table',
      rows: Number(content?.['n']),
      md5: String(content?.['md5']),
    };
  }
  return snapshot;
}

/** Every relation of `schema` with its content. */
export async function snapshotSchema(
  target: LookTarget,
  schema: string,
): Promise<Record<string, RelationSnapshot>> {
  const bigquery = bigQueryTarget(target);
  if (bigquery) return snapshotDataset(bigquery, schema);
  return look(target, async (read) => {
    const relations = await read(
      `SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = '${schema}' ORDER BY table_name`,
    );
    const snapshot: Record<string, RelationSnapshot> = {};
    for (const relation of relations) {
      const name = String(relation['table_name']);
      const [content] = await read(
        `SELECT count(*) AS n, md5(coalesce(string_agg(r::VARCHAR, '|' ORDER BY r::VARCHAR), '')) AS md5 FROM "${schema}"."${name}" AS r`,
      );
      snapshot[name] = {
        kind: relation['table_type'] === 'VIEW' ? 'view' : 'table',
        rows: Number(content?.['n']),
        md5: String(content?.['md5']),
      };
    }
    return snapshot;
  });
}

export async function listSchemas(target: LookTarget): Promise<string[]> {
  const bigquery = bigQueryTarget(target);
  if (bigquery) {
    const [datasets] = await bigQueryOf(bigquery).getDatasets();
    return datasets.map((d) => String(d.id)).sort();
  }
  const rows = await look(target, (read) =>
    read(
      "SELECT DISTINCT schema_name FROM information_schema.schemata WHERE schema_name NOT LIKE 'pg_%' AND schema_name <> 'information_schema' ORDER BY 1",
    ),
  );
  return rows.map((r) => String(r['schema_name']));
}
