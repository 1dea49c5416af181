/**
 * `dbt-deploy worker --metrics`: the Temporal SDK's Prometheus endpoint, off unless asked for. A worker
 * started with the flag runs an operation (a rollback to a deploy that never was: it fails at once,
 * without dbt), and its loopback endpoint then serves the SDK's workflow and activity metrics for the
 * worker's task queue. A bad address is refused before anything starts.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { execa } from 'execa';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { deployResult, startDeploy } from '../../client/deploys.js';
import { freePort } from '../../client/dev-server.js';
import { prepareDeploy } from '../../client/preflight.js';
import { type ExampleProject, exampleProject, ROOT } from '../support/harness.js';
import { killGroup, until, waitForLine } from '../support/processes.js';

const NAMESPACE = 'test-metrics';

describe('worker metrics', () => {
  const taskQueue = `metrics-${randomBytes(4).toString('hex')}`;
  let project: ExampleProject;
  const env = () => ({
    ...process.env,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: NAMESPACE,
    DBT_DEPLOY_TASK_QUEUE: taskQueue,
  });

  beforeAll(async () => {
    project = await exampleProject();
  });

  it('serves the SDK metrics on the address given, with the workflow and activity counters', async () => {
    const port = await freePort();
    const worker = execa(join(ROOT, 'bin', 'dbt-deploy'), ['worker', '--metrics', `127.0.0.1:${port}`], {
      env: env(),
      reject: false,
      all: true,
      detached: true,
    });
    try {
      await waitForLine(worker, '"message":"worker polling"', 180_000);
      const connection = await Connection.connect({ address: inject('temporalAddress') });
      try {
        const client = new Client({ connection, namespace: NAMESPACE });
        const { input } = prepareDeploy({ projectDir: project.dir, forRollback: true });
        const handle = await startDeploy(
          client,
          { ...input, deployId: 'prod-metrics', rollbackTo: 'prod-19990101t000000-none' },
          taskQueue,
          'rollback',
        );
        expect((await deployResult(handle)).status).toBe('failed');
      } finally {
        await connection.close();
      }

      // The steps run on the worker's own host queue, `<taskQueue>@<host>-...`: both count.
      const queue = `task_queue="${taskQueue}`;
      let text = '';
      // The exporter reads the counters when scraped; the last completion may land a moment later.
      await until(
        'the failed workflow is counted',
        async () => {
          text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          return text.split('\n').some((l) => l.startsWith('temporal_workflow_failed') && l.includes(queue));
        },
        60_000,
      );
      const names = new Set(
        text
          .split('\n')
          .filter((l) => l.includes(queue))
          .map((l) => l.split(/[{ ]/)[0]),
      );
      expect([...names]).toEqual(
        expect.arrayContaining([
          'temporal_workflow_failed',
          'temporal_workflow_task_execution_latency_bucket',
          'temporal_activity_execution_failed',
          'temporal_worker_task_slots_available',
        ]),
      );
    } finally {
      killGroup(worker, 'SIGTERM');
      await worker;
    }
    expect(worker.exitCode).toBe(0);
  }, 300_000);

  it('refuses an address it cannot bind, before connecting', async () => {
    const bad = await execa(join(ROOT, 'bin', 'dbt-deploy'), ['worker', '--metrics', 'localhost:9464'], {
      env: env(),
      reject: false,
      all: true,
    });
    expect(bad.exitCode).toBe(2);
    expect(bad.all).toContain(
      '--metrics takes an IP address and a port, e.g. 127.0.0.1:9464 (got "localhost:9464")',
    );
  });
});
