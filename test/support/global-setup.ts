/**
 * Starts one Temporal dev server (with its Web UI, for the browser test) and one PostgreSQL cluster
 * for the whole run (parallel servers race and slow a 2-core machine) and bundles the workflows once,
 * so each test file's worker starts without webpack. Test files that need PostgreSQL create their own
 * database on the shared cluster. Test files make their folders under one scratch root of the run;
 * teardown counts what they left there (each file removes its own, see scratch.ts), then removes it.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type DevServer, freePort, startDevServer } from '../../client/dev-server.js';
import { bundleDeployWorkflows } from '../../worker/worker.js';
import { TEST_NAMESPACES } from './namespaces.js';
import { emulatorInstalled, type RunningEmulator, startBigQueryEmulator } from './bigquery.js';
import { type PostgresServer, type RunningPostgres, startPostgres } from './postgres.js';
import { leftovers } from './scratch.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalUiUrl: string;
    workflowBundlePath: string;
    postgres: PostgresServer;
    /** Where test files make their temporary folders (see scratch.ts). */
    scratchRoot: string;
    /**
     * The port of the codec server the UI decodes with (`--ui-codec-endpoint`): the UI test starts it
     * there, with keys of its own; nothing listens on it otherwise.
     */
    uiCodecPort: number;
    /** The BigQuery emulator's endpoint; empty when `scripts/setup --bigquery` has not installed it. */
    bigqueryEndpoint: string;
  }
}

let server: DevServer | undefined;
let postgres: RunningPostgres | undefined;
let scratchRoot: string | undefined;
let emulator: RunningEmulator | undefined;

export async function setup(project: TestProject): Promise<void> {
  const runDir = join(process.cwd(), '.test-runs');
  await mkdir(runDir, { recursive: true });
  scratchRoot = await mkdtemp(join(tmpdir(), 'dbt-deploy-run-'));
  const uiPort = await freePort();
  const uiCodecPort = await freePort();
  const [started, bundle, cluster, bigquery] = await Promise.allSettled([
    startDevServer({
      startupTimeoutMs: 120_000,
      extraNamespaces: TEST_NAMESPACES,
      uiPort,
      uiCodecEndpoint: `http://127.0.0.1:${uiCodecPort}`,
    }),
    bundleDeployWorkflows(),
    startPostgres(),
    emulatorInstalled() ? startBigQueryEmulator() : Promise.resolve(undefined),
  ]);
  // Whatever did start must not outlive a setup that fails.
  if (started.status === 'fulfilled') server = started.value;
  if (cluster.status === 'fulfilled') postgres = cluster.value;
  if (bigquery.status === 'fulfilled') emulator = bigquery.value;
  if (
    started.status === 'rejected' ||
    bundle.status === 'rejected' ||
    cluster.status === 'rejected' ||
    bigquery.status === 'rejected'
  ) {
    await teardown();
    const reasons = [started, bundle, cluster, bigquery].flatMap((r) =>
      r.status === 'rejected' ? [r.reason] : [],
    );
    throw reasons.length === 1 ? reasons[0] : new AggregateError(reasons, 'test setup failed');
  }
  const workflowBundlePath = join(runDir, 'workflow-bundle.js');
  await writeFile(workflowBundlePath, bundle.value.code);
  project.provide('temporalAddress', started.value.address);
  project.provide('temporalUiUrl', started.value.uiUrl ?? `http://127.0.0.1:${uiPort}`);
  project.provide('workflowBundlePath', workflowBundlePath);
  project.provide('uiCodecPort', uiCodecPort);
  project.provide('scratchRoot', scratchRoot);
  const { host, port, user, password, database } = cluster.value;
  project.provide('postgres', { host, port, user, password, database });
  project.provide('bigqueryEndpoint', emulator?.endpoint ?? '');
}

export async function teardown(): Promise<void> {
  await Promise.all([server?.stop(), postgres?.stop(), emulator?.stop()]);
  server = undefined;
  postgres = undefined;
  if (!scratchRoot) return;
  const left = await leftovers(scratchRoot);
  await rm(scratchRoot, { recursive: true, force: true });
  scratchRoot = undefined;
  if (left.length > 0) {
    // Removed anyway, so a failing run does not fill the disk; the count makes the forgetful test visible.
    throw new Error(
      `${left.length} temporary folders were left by tests (not removed through test/support/scratch.ts): ${left.join(', ')}`,
    );
  }
  emulator = undefined;
}
