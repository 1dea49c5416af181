/**
 * The payload codec as a server operator sees it: a deploy of the example on DuckDB with the codec on
 * publishes as usual, and its history, read raw with the Temporal CLI (no keys), holds no project name,
 * no vars and no paths, only sealed payloads naming their key. A failing operation's error messages and
 * stack traces are sealed too. The codec server opens the same payloads for a browser of the UI's origin,
 * and keys rotate: the newest seals, every listed key opens what it sealed.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AesGcmCodec, type CodecKey, parseCodecKeys, projectAlias } from '../../client/codec.js';
import { type CodecServer, payloadToJson, startCodecServer } from '../../client/codec-server.js';
import { deployResult, startDeploy } from '../../client/deploys.js';
import { deployHistory } from '../../client/history.js';
import { prepareDeploy } from '../../client/preflight.js';
import type { DeployResult } from '../../workflows/types.js';
import {
  type ExampleProject,
  exampleProject,
  ROOT,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
} from '../support/harness.js';
import { rawHistoryText } from '../support/raw-history.js';

const key = (id: string): CodecKey => ({ id, key: randomBytes(32) });
const UI_ORIGIN = 'http://127.0.0.1:8233';

describe('encrypted payloads', () => {
  const [oldKey, newKey] = [key('2025-01'), key('2026-06')];
  const codec = new AesGcmCodec([oldKey, newKey]);
  const canary = `vars-canary-${randomBytes(4).toString('hex')}`;
  let project: ExampleProject;
  let worker: TestWorker;
  let server: CodecServer;
  let result: DeployResult;
  let runId: string;

  beforeAll(async () => {
    // Its own bundle: the shared one seals no failures of the workflows themselves.
    [project, worker] = await Promise.all([
      exampleProject(),
      startTestWorker('test-codec', undefined, { codec, ownBundle: true }),
    ]);
    server = await startCodecServer({ codec, port: 0, origins: [UI_ORIGIN] });
  });
  afterAll(async () => {
    await worker?.stop();
    await server?.close();
  });

  it('deploys as usual, and the raw history holds no project name, vars or paths', async () => {
    result = await worker.deploy({ projectDir: project.dir, vars: `{canary_var: ${canary}}` });
    expect(result.status).toBe('published');
    ({ runId } = await worker.client.workflow.getHandle(result.workflowId).describe());
    const prod = await snapshotSchema(project.database, 'analytics');
    expect(prod['fct_orders']?.rows).toBe(600);
    // The client opens what it reads: the result names the real project; the ids use its alias.
    expect(result.workflowId).toBe(`dbt-deploy-${projectAlias('jaffle_shop')}-prod`);
    expect(result.published).toContain('jaffle_shop.analytics.fct_orders');

    const raw = await rawHistoryText(worker.namespace, result.workflowId, runId);
    expect(raw).toContain('binary/encrypted');
    expect(raw).toContain(newKey.id);
    // The steps' titles are the activities' summaries: sealed too.
    const title = result.steps[0]!.title;
    for (const clear of [
      'jaffle_shop',
      canary,
      project.dir,
      inject('scratchRoot'),
      ROOT,
      'fct_orders',
      title,
    ])
      expect(raw.includes(clear), `"${clear}" in the raw history`).toBe(false);

    // `dbt-deploy history` finds the deploy by the alias the search attributes hold.
    const [line] = await deployHistory(worker.client, 'jaffle_shop', 'prod');
    expect(line).toMatchObject({ deployId: result.deployId, status: 'published' });
  }, 600_000);

  it('seals the error messages and stack traces of an operation that fails', async () => {
    // A rollback to a deploy that never was fails at once, with an error that names what it looked for.
    const { input } = prepareDeploy({ projectDir: project.dir, forRollback: true });
    const handle = await startDeploy(
      worker.client,
      { ...input, deployId: 'prod-never-was', rollbackTo: 'prod-19990101t000000-dead' },
      worker.taskQueue,
      'rollback',
    );
    const failed = await deployResult(handle);
    expect(failed.status).toBe('failed');
    expect(failed.reason).toContain('prod-19990101t000000-dead');

    const raw = await rawHistoryText(worker.namespace, handle.workflowId, (await handle.describe()).runId);
    expect(raw).toContain('Encoded failure');
    for (const clear of ['prod-19990101t000000-dead', 'jaffle_shop', ROOT, project.dir])
      expect(raw.includes(clear), `"${clear}" in the raw history`).toBe(false);
  });

  it("opens the history's payloads through the codec server for the UI's origin only", async () => {
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    try {
      // A client without the codec reads what the server stores.
      const plain = new Client({ connection, namespace: worker.namespace });
      const history = await plain.workflow.getHandle(result.workflowId, runId).fetchHistory();
      const sealed = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      expect(Buffer.from(sealed!.metadata!['encoding']!).toString()).toBe('binary/encrypted');
      const body = JSON.stringify({ payloads: [payloadToJson(sealed as Payload)] });

      const decoded = await fetch(`${server.url}/decode`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Namespace': worker.namespace, Origin: UI_ORIGIN },
        body,
      });
      expect(decoded.status).toBe(200);
      expect(decoded.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
      const [opened] = ((await decoded.json()) as { payloads: Array<{ data: string }> }).payloads;
      const input = JSON.parse(Buffer.from(opened!.data, 'base64').toString('utf8')) as Record<
        string,
        unknown
      >;
      expect(input).toMatchObject({
        project: 'jaffle_shop',
        projectDir: project.dir,
        vars: `{canary_var: ${canary}}`,
      });

      // The browser's preflight: answered for the UI, refused for any other page.
      const preflight = (origin: string) =>
        fetch(`${server.url}/decode`, {
          method: 'OPTIONS',
          headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' },
        });
      const allowed = await preflight(UI_ORIGIN);
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-headers')).toContain('X-Namespace');
      const other = await preflight('http://evil.example');
      expect(other.status).toBe(403);
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      const refused = await fetch(`${server.url}/decode`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Origin: 'http://evil.example' },
        body,
      });
      expect(refused.status).toBe(403);

      // /encode seals with the newest key; what it seals /decode opens again.
      const clear = {
        metadata: { encoding: 'anNvbi9wbGFpbg==' },
        data: Buffer.from('"hello"').toString('base64'),
      };
      const encoded = (await (
        await fetch(`${server.url}/api/encode`, {
          method: 'POST',
          body: JSON.stringify({ payloads: [clear] }),
        })
      ).json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
      expect(Buffer.from(encoded.payloads[0]!.metadata['encryption-key-id']!, 'base64').toString()).toBe(
        newKey.id,
      );
      const reopened = (await (
        await fetch(`${server.url}/decode`, { method: 'POST', body: JSON.stringify(encoded) })
      ).json()) as { payloads: Array<{ data: string }> };
      expect(Buffer.from(reopened.payloads[0]!.data, 'base64').toString()).toBe('"hello"');
    } finally {
      await connection.close();
    }
  });

  it('rotates keys: the newest seals, each listed key opens what it sealed, a dropped key is named', async () => {
    const clear: Payload = {
      metadata: { encoding: Buffer.from('json/plain') },
      data: Buffer.from('{"a":1}'),
    };
    const [byOld] = await new AesGcmCodec([oldKey]).encode([clear]);
    const [byNew] = await codec.encode([clear]);
    expect(Buffer.from(byOld!.metadata!['encryption-key-id']!).toString()).toBe(oldKey.id);
    expect(Buffer.from(byNew!.metadata!['encryption-key-id']!).toString()).toBe(newKey.id);
    for (const sealed of [byOld!, byNew!]) {
      const [opened] = await codec.decode([sealed]);
      expect(Buffer.from(opened!.data!).toString()).toBe('{"a":1}');
    }
    await expect(new AesGcmCodec([newKey]).decode([byOld!])).rejects.toThrow(
      `sealed with codec key "${oldKey.id}", which is not among the keys given (${newKey.id})`,
    );
    // A payload that is not sealed passes through: histories from before the codec stay readable.
    expect(await codec.decode([clear])).toEqual([clear]);
    // The keys file: `<id>:<base64>` a line, oldest first; mistakes are named without the key.
    const line = `${oldKey.id}:${oldKey.key.toString('base64')}`;
    expect(parseCodecKeys(`# keys\n${line}\n`, 'keys').map((k) => k.id)).toEqual([oldKey.id]);
    expect(() => parseCodecKeys('k1:c2hvcnQ=', 'keys')).toThrow('key "k1" is 5 bytes, AES-256 needs 32');
    expect(() => parseCodecKeys(`${line}\n${line}`, 'keys')).toThrow(`key id "${oldKey.id}" is listed twice`);
  });
});
