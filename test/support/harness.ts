/**
 * What the workflow and CLI tests share: a fresh copy of the example project with its raw sources, a
 * worker on its own task queue against the run's Temporal server, and an independent look at the
 * warehouse (relations, row counts, checksums) that does not go through the adapter under test.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { Client, Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { inject } from 'vitest';
import { createActivities, type DeployActivities } from '../../activities/steps.js';
import { deployResult, newDeployId, startDeploy } from '../../client/deploys.js';
import { type DeployOptions, prepareDeploy } from '../../client/preflight.js';
import { createExampleWorkspace, type ExampleWorkspace } from '../../examples/jaffle_shop/workspace.js';
import { createDeployWorker, quietRuntime } from '../../worker/worker.js';
import type { DeployResult } from '../../workflows/types.js';
import type { TestNamespace } from './namespaces.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export type ExampleProject = ExampleWorkspace;

/** A private copy of examples/jaffle_shop with its raw sources loaded. */
export async function exampleProject(): Promise<ExampleProject> {
  return createExampleWorkspace(join(await mkdtemp(join(tmpdir(), 'dbt-deploy-test-')), 'jaffle_shop'));
}

export interface TestWorker {
  namespace: TestNamespace;
  taskQueue: string;
  client: Client;
  deploy(options: DeployOptions): Promise<DeployResult>;
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
  return {
    namespace,
    taskQueue,
    client,
    async deploy(options) {
      const prepared = prepareDeploy(options);
      const input = { ...prepared.input, deployId: newDeployId(prepared.input.env) };
      return deployResult(await startDeploy(client, input, taskQueue));
    },
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
export function withInjectedFault(activity: keyof DeployActivities): DeployActivities {
  const real = createActivities();
  return {
    ...real,
    [activity]: async () => {
      throw ApplicationFailure.nonRetryable(`injected fault in ${activity}`, 'InjectedFault');
    },
  };
}

export interface RelationSnapshot {
  kind: 'table' | 'view';
  rows: number;
  /** md5 over every row's text in sorted order: any changed, added or lost row changes it. */
  md5: string;
}

type Read = (sql: string) => Promise<Record<string, unknown>[]>;

/** Opens the file for one look and closes it, so the worker's next step can have it. */
async function readDuckDb<T>(database: string, look: (read: Read) => Promise<T>): Promise<T> {
  const instance = await DuckDBInstance.create(database);
  const connection = await instance.connect();
  try {
    return await look(async (sql) => (await connection.runAndReadAll(sql)).getRowObjectsJson());
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Every relation of `schema` with its content, read with a plain DuckDB connection. */
export async function snapshotSchema(
  database: string,
  schema: string,
): Promise<Record<string, RelationSnapshot>> {
  return readDuckDb(database, async (read) => {
    const relations = await read(
      `SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = '${schema}' ORDER BY table_name`,
    );
    const snapshot: Record<string, RelationSnapshot> = {};
    for (const relation of relations) {
      const name = String(relation['table_name']);
      const [content] = await read(
        `SELECT count(*)::BIGINT AS n, md5(coalesce(string_agg(r::VARCHAR, '|' ORDER BY r::VARCHAR), '')) AS md5 FROM "${schema}"."${name}" AS r`,
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

export async function listSchemas(database: string): Promise<string[]> {
  const rows = await readDuckDb(database, (read) =>
    read('SELECT DISTINCT schema_name FROM information_schema.schemata ORDER BY 1'),
  );
  return rows.map((r) => String(r['schema_name']));
}
