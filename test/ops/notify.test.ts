/**
 * The notification hook (deploy.yml `notify`) against a webhook receiver on loopback: a deploy of the
 * example on DuckDB with the approval gate on tells the webhook that it waits, then how it ended. The
 * receiver answers the ending with 500 each time, as a broken webhook would: the deploy still publishes.
 * The URL's token comes from the worker's environment and reaches neither the body nor the history.
 */
import { randomBytes } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NotificationBody } from '../../activities/notify.js';
import { decide, deployResult } from '../../client/deploys.js';
import {
  type ExampleProject,
  exampleProject,
  keepHistory,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
} from '../support/harness.js';
import { until } from '../support/processes.js';
import { rawHistoryText } from '../support/raw-history.js';

interface Received {
  path: string;
  contentType: string | undefined;
  body: NotificationBody;
}

describe('the notification webhook', () => {
  const token = `hook-token-${randomBytes(6).toString('hex')}`;
  const received: Received[] = [];
  let receiver: Server;
  let project: ExampleProject;
  let worker: TestWorker;

  beforeAll(async () => {
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as NotificationBody;
        received.push({ path: request.url ?? '', contentType: request.headers['content-type'], body });
        // The wait is acknowledged; every ending is refused, as by a webhook that is down.
        response.writeHead(body.event === 'awaiting_approval' ? 200 : 500).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.address() as AddressInfo;
    // The worker runs in this process: its environment is this one.
    process.env['DBT_DEPLOY_TEST_HOOK_TOKEN'] = token;
    [project, worker] = await Promise.all([exampleProject(), startTestWorker('test-notify')]);
    await appendFile(
      join(project.dir, 'deploy.yml'),
      `notify:\n  webhook: "http://127.0.0.1:${port}/hooks/{{ env_var('DBT_DEPLOY_TEST_HOOK_TOKEN') }}"\n`,
    );
  });
  afterAll(async () => {
    await worker?.stop();
    await new Promise((resolve) => receiver?.close(resolve));
    delete process.env['DBT_DEPLOY_TEST_HOOK_TOKEN'];
  });

  it('tells the webhook that the deploy waits for approval, then how it ended; a failing webhook changes nothing', async () => {
    const { handle, input } = await worker.start({ projectDir: project.dir, requireApproval: true });
    await until('the webhook hears of the approval wait', async () => received.length > 0, 480_000);

    const [waiting] = received;
    expect(waiting!.path).toBe(`/hooks/${token}`);
    expect(waiting!.contentType).toBe('application/json');
    expect(waiting!.body).toMatchObject({
      event: 'awaiting_approval',
      project: 'jaffle_shop',
      env: 'prod',
      deployId: input.deployId,
      workflowId: handle.workflowId,
      approval: { onTimeout: 'abort', approve: 'dbt-deploy approve --env prod' },
    });
    expect(waiting!.body.text).toContain('waits for approval');
    expect(waiting!.body.text).toContain('`dbt-deploy approve --env prod`');
    expect(waiting!.body.result).toBeUndefined();

    await decide(worker.client, 'jaffle_shop', 'prod', 'approve', { by: 'hook-tester' });
    const result = await deployResult(handle);
    expect(result.status).toBe('published');
    // Prod holds the deploy, as if no webhook had been configured.
    const prod = await snapshotSchema(project.database, 'analytics');
    expect(prod['fct_orders']?.rows).toBe(600);

    // The ending was sent three times (the retry policy), each answered 500; the deploy did not wait longer.
    const endings = received.filter((r) => r.body.event !== 'awaiting_approval');
    expect(endings).toHaveLength(3);
    for (const ending of endings) {
      expect(ending.body.event).toBe('published');
      // The result object the client got, report path included.
      expect(ending.body.result).toEqual(result);
      expect(ending.body.text).toMatch(/^✅ jaffle_shop → prod: published — wac deploy prod-/);
      expect(ending.body.text).toContain('approved by hook-tester');
    }

    // The token lives in the worker's environment only: not in a body, not in the history.
    for (const { body } of received) expect(JSON.stringify(body)).not.toContain(token);
    const history = await rawHistoryText(worker.namespace, handle.workflowId);
    expect(history).toContain("{{ env_var('DBT_DEPLOY_TEST_HOOK_TOKEN') }}");
    // What the failing webhook left in history names its origin only, never the URL's path.
    expect(history).toMatch(/the webhook at http:\/\/127\.0\.0\.1:\d+ answered 500/);
    expect(history).not.toMatch(/answered 500[^\n]*\/hooks/);
    // The history does hold the hook's URL, but only as deploy.yml wrote it (the template).
    expect(history.includes(token)).toBe(false);
    // Pinned as test/replay/histories/duckdb-wac-notified.json: the notify-webhook marker keeps replaying.
    await keepHistory(worker, handle.workflowId, 'duckdb-wac-notified');
  }, 600_000);
});
