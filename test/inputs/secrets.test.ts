/**
 * Credentials stay on the worker. A PostgreSQL profile whose password comes from `env_var()` (a
 * distinctive one, on a role made for this test) deploys twice through the real CLI and the real
 * `dbt-deploy worker`, once publishing and once failing its audit; then the raw history of both runs
 * (every payload decoded, as `temporal workflow show --output json` gives it), the reports, the
 * artifact folders and the worker's own logs are searched for the password: it must be nowhere.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { temporalCliPath } from '../../client/dev-server.js';
import type { DeployResult } from '../../workflows/types.js';
import { type ExampleProject, exampleProject, ROOT } from '../support/harness.js';
import { withClient } from '../support/postgres.js';

const CLI = join(ROOT, 'bin', 'dbt-deploy');
const NAMESPACE = 'test-secrets';
const SECRET_ENV = 'DBT_DEPLOY_TEST_PGPASSWORD';

describe('no secret from the profile in history, reports, artifacts or worker logs', () => {
  const suffix = randomBytes(4).toString('hex');
  const role = `deployer_${suffix}`;
  // Distinctive, so a hit cannot be a coincidence; URL-safe, so no quoting question hides it.
  const password = `Zebra-Quokka-${randomBytes(9).toString('base64url')}-pw`;
  const taskQueue = `secrets-${suffix}`;
  let project: ExampleProject;
  let worker: ResultPromise<{ reject: false; all: true; stdin: 'ignore' }>;
  let connection: Connection;
  const env = () => ({
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: NAMESPACE,
    DBT_DEPLOY_TASK_QUEUE: taskQueue,
    [SECRET_ENV]: password,
    DBT_SEND_ANONYMOUS_USAGE_STATS: 'false',
    DO_NOT_TRACK: '1',
  });

  beforeAll(async () => {
    project = await exampleProject('postgres');
    const server = inject('postgres');
    const database = project.raw as { postgres: { database: string } };
    await withClient(server, async (client) => {
      await client.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${password}'`);
      await client.query(`ALTER DATABASE ${database.postgres.database} OWNER TO ${role}`);
    });
    const profiles = join(project.dir, 'profiles.yml');
    await writeFile(
      profiles,
      (await readFile(profiles, 'utf8'))
        .replace(/user: \S+/g, `user: ${role}`)
        .replace(/password: \S+/g, `password: "{{ env_var('${SECRET_ENV}') }}"`),
    );
    expect(await readFile(profiles, 'utf8')).not.toContain(password);
    worker = execa(CLI, ['worker'], { reject: false, all: true, stdin: 'ignore', env: env() });
    connection = await Connection.connect({ address: inject('temporalAddress') });
  });

  afterAll(async () => {
    worker?.kill('SIGTERM');
    await worker;
    await connection?.close();
    await withClient(inject('postgres'), (client) => client.query(`DROP ROLE IF EXISTS ${role}`)).catch(
      () => undefined,
    );
  });

  it('finds the password nowhere after a published and a failed deploy', async () => {
    const deploy = async (...args: string[]) => {
      const run = await execa(CLI, ['deploy', '--project-dir', project.dir, '--json', ...args], {
        reject: false,
        env: env(),
      });
      const last = run.stdout.trim().split('\n').at(-1) ?? '';
      expect(last, run.stderr).toMatch(/^\{/);
      return { run, result: JSON.parse(last) as DeployResult };
    };
    const published = await deploy();
    expect(published.result.status, published.result.reason).toBe('published');
    const failed = await deploy('--vars', '{break_audit: true}');
    expect(failed.result.status).toBe('failed');

    const client = new Client({ connection, namespace: NAMESPACE });
    const places: Record<string, string> = {};
    for await (const execution of client.workflow.list({
      query: `WorkflowId = '${published.result.workflowId}'`,
    })) {
      const { stdout } = await execa(temporalCliPath(), [
        'workflow',
        'show',
        '--workflow-id',
        execution.workflowId,
        '--run-id',
        execution.runId,
        '--output',
        'json',
        '--address',
        inject('temporalAddress'),
        '--namespace',
        NAMESPACE,
      ]);
      places[`history ${execution.runId} (raw)`] = stdout;
      places[`history ${execution.runId} (payloads decoded)`] = decodedPayloads(JSON.parse(stdout)).join(
        '\n',
      );
      const description = await client.workflow.getHandle(execution.workflowId, execution.runId).describe();
      places[`memo and search attributes ${execution.runId}`] = JSON.stringify({
        memo: description.memo,
        attributes: description.typedSearchAttributes,
      });
    }
    expect(Object.keys(places).filter((p) => p.endsWith('(raw)'))).toHaveLength(2);
    // The decoding works: the deploy's input (its id among it) is readable in the decoded payloads.
    const decoded = Object.entries(places).filter(([p]) => p.endsWith('(payloads decoded)'));
    expect(decoded.some(([, text]) => text.includes(published.result.deployId))).toBe(true);
    for (const { result, run } of [published, failed]) {
      places[`CLI output of ${result.deployId}`] = run.all ?? `${run.stdout}\n${run.stderr}`;
      expect(result.report).toBeDefined();
      for (const file of await filesUnder(result.artifactsDir)) places[file] = await readFile(file, 'latin1');
    }
    expect(Object.keys(places).some((p) => p.endsWith('report.json'))).toBe(true);
    expect(Object.keys(places).some((p) => p.endsWith('report.md'))).toBe(true);
    worker.kill('SIGTERM');
    const stopped = await worker;
    places['worker logs'] = String(stopped.all);
    expect(places['worker logs']).toMatch(/"message":"worker polling"/);

    const leaks = Object.entries(places)
      .filter(([, text]) => text.includes(password))
      .map(([where]) => where);
    // The published deploy proves the worker and dbt rendered the env_var() and logged in with it.
    expect(leaks).toEqual([]);
  });
});

/** Every payload's `data` in a history JSON, base64-decoded to text; the raw text shows them encoded. */
function decodedPayloads(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) decodedPayloads(item, found);
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'data' && typeof value === 'string')
        found.push(Buffer.from(value, 'base64').toString('utf8'));
      else decodedPayloads(value, found);
    }
  }
  return found;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}
