/**
 * Starts one Temporal dev server for the whole run (parallel servers race and slow a 2-core machine)
 * and bundles the workflows once, so each test file's worker starts without webpack.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type DevServer, startDevServer } from '../../client/dev-server.js';
import { bundleDeployWorkflows } from '../../worker/worker.js';
import { TEST_NAMESPACES } from './namespaces.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
  }
}

let server: DevServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  const runDir = join(process.cwd(), '.test-runs');
  await mkdir(runDir, { recursive: true });
  const [started, bundle] = await Promise.all([
    startDevServer({ startupTimeoutMs: 120_000, extraNamespaces: TEST_NAMESPACES }),
    bundleDeployWorkflows(),
  ]);
  server = started;
  const workflowBundlePath = join(runDir, 'workflow-bundle.js');
  await writeFile(workflowBundlePath, bundle.code);
  project.provide('temporalAddress', server.address);
  project.provide('workflowBundlePath', workflowBundlePath);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
