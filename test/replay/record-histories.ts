/**
 * Records the histories that test/replay pins: every strategy on both engines, a mirror refresh, a
 * rollback, an aborted and a rolled-back deploy, each from a real run (real dbt, DuckDB, PostgreSQL,
 * the run's Temporal dev server). Run it with `npm run record-histories` after a change to workflow
 * code that new histories should cover; it writes test/replay/histories/<engine>-<what>.json and
 * leaves the older histories there, which keep the older code paths replaying.
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decide, deployProgress, deployResult } from '../../client/deploys.js';
import type { DeployResult } from '../../workflows/types.js';
import {
  type Engine,
  type ExampleProject,
  exampleProject,
  keepHistory,
  ROOT,
  startTestWorker,
  type TestWorker,
  withInjectedFault,
} from '../support/harness.js';

const HISTORIES = join(ROOT, 'test', 'replay', 'histories');

async function pin(worker: TestWorker, result: DeployResult, name: string, status: string): Promise<void> {
  expect(result.status, `${name}: ${result.reason}`).toBe(status);
  await keepHistory(worker, result.workflowId, name);
  await copyFile(join(ROOT, '.test-runs', 'histories', `${name}.json`), join(HISTORIES, `${name}.json`));
}

const STRATEGIES = ['blue-green', 'clone-back', 'wap', 'wac'] as const;

describe.each<Engine>(['duckdb', 'postgres'])('histories on %s', (engine) => {
  let project: ExampleProject;
  let worker: TestWorker;

  beforeAll(async () => {
    [project, worker] = await Promise.all([exampleProject(engine), startTestWorker('test-histories')]);
  });
  afterAll(async () => worker?.stop());

  it.each(STRATEGIES)(`${engine}: %s publishes`, async (strategy) => {
    const result = await worker.deploy({ projectDir: project.dir, strategy });
    await pin(worker, result, `${engine}-${strategy}-published`, 'published');
  });

  it(`${engine}: a rollback restores the deploy before`, async () => {
    const result = await worker.rollback({ projectDir: project.dir });
    await pin(worker, result, `${engine}-rollback-published`, 'published');
  });

  it(`${engine}: a mirror refresh publishes the raw layer`, async () => {
    const config = join(project.dir, 'deploy.yml');
    await writeFile(config, `${await readFile(config, 'utf8')}mirror:\n  select: ['tag:raw']\n`);
    const result = await worker.refreshMirror({ projectDir: project.dir });
    await pin(worker, result, `${engine}-mirror-published`, 'published');
  });

  if (engine === 'postgres') return;

  it('duckdb: a fault after publish rolls back', async () => {
    const faulty = await startTestWorker('test-histories', withInjectedFault('verifyProd', 'verify'));
    try {
      const result = await faulty.deploy({ projectDir: project.dir, strategy: 'wac' });
      await pin(faulty, result, 'duckdb-wac-rolled-back', 'rolled_back');
    } finally {
      await faulty.stop();
    }
  });

  it('duckdb: an abort during the build', async () => {
    const { handle } = await worker.start({ projectDir: project.dir, strategy: 'wac' });
    for (;;) {
      const progress = await deployProgress(handle).catch(() => undefined);
      if (progress?.phase === 'building') break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await decide(worker.client, 'jaffle_shop', 'prod', 'abort', { by: 'recorder', note: 'history' });
    await pin(worker, await deployResult(handle), 'duckdb-wac-aborted', 'aborted');
  });
});
