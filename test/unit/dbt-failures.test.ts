/**
 * Transient or fatal, told by dbt's own result: real dbt runs that fail for real (a refused
 * connection, a connection the server drops mid-query, a DuckDB file another process holds, a
 * compilation error, a failing model), each classified by `runDbt` as the step's retry needs.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  classifyDbtFailure,
  DbtInvocationError,
  type DbtOutcome,
  DbtTransientError,
  runDbt,
} from '../../activities/dbt.js';
import { freePort } from '../../client/dev-server.js';

describe('dbt failures, transient or fatal', () => {
  const server = inject('postgres');
  const schema = `dbt_failures_${randomBytes(3).toString('hex')}`;
  let root: string;
  let project: string;
  let run: (target: string, select: string, name: string) => Promise<DbtOutcome>;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dbt-failures-'));
    project = join(root, 'ok');
    await mkdir(join(project, 'models'), { recursive: true });
    const closedPort = await freePort();
    await writeFile(join(project, 'dbt_project.yml'), 'name: failures\nversion: "1.0"\nprofile: failures\n');
    await writeFile(
      join(project, 'profiles.yml'),
      [
        'failures:',
        '  target: pg',
        '  outputs:',
        '    pg:',
        `      {type: postgres, host: ${server.host}, port: ${server.port}, user: ${server.user}, password: "${server.password}", dbname: ${server.database}, schema: ${schema}, threads: 1}`,
        '    closed:',
        `      {type: postgres, host: 127.0.0.1, port: ${closedPort}, user: x, password: x, dbname: x, schema: x, threads: 1, connect_timeout: 5}`,
        '    duck:',
        `      {type: duckdb, path: "${join(root, 'held.duckdb')}", schema: main, threads: 1}`,
      ].join('\n'),
    );
    await writeFile(join(project, 'models', 'fine.sql'), 'select 1 as a\n');
    await writeFile(join(project, 'models', 'missing.sql'), 'select * from a_table_nobody_made\n');
    await writeFile(
      join(project, 'models', 'slow.sql'),
      "{{ config(materialized='table') }} select pg_sleep(120)::text as slept\n",
    );
    run = (target, select, name) =>
      runDbt({
        projectDir: project,
        profilesDir: project,
        args: ['build', '--target', target, '--select', select],
        targetPath: join(root, 'runs', name),
      });
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('a refused connection (dbt exits 2 with a Database Error) is transient', async () => {
    const failed = run('closed', 'fine', 'refused');
    const started = Date.now();
    await expect(failed).rejects.toBeInstanceOf(DbtTransientError);
    console.log(`refused: ${Date.now() - started} ms`);
    await expect(failed).rejects.toThrow(/exit 2\): [\s\S]*Database Error[\s\S]*Connection refused/);
  });

  it('a connection the server drops mid-query (dbt exits 1, the node errors) is transient', async () => {
    const failed = run('pg', 'slow', 'dropped');
    // The real thing: the server terminates the backend running the model, as a restart or failover does.
    const admin = new pg.Client({ ...server });
    await admin.connect();
    try {
      for (let terminated = 0; terminated === 0;) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        const { rowCount } = await admin.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()",
        );
        terminated = rowCount ?? 0;
      }
    } finally {
      await admin.end();
    }
    await expect(failed).rejects.toThrow(/lost its connection at model\.failures\.slow: Database Error/);
    await expect(failed).rejects.toBeInstanceOf(DbtTransientError);
  });

  it('a DuckDB file held by another process (an IO Error: could not set lock) is transient', async () => {
    const holder = await DuckDBInstance.create(join(root, 'held.duckdb'));
    const connection = await holder.connect();
    try {
      const failed = run('duck', 'fine', 'locked');
      await expect(failed).rejects.toThrow(/exit 2\): [\s\S]*IO Error: Could not set lock on file/);
      await expect(failed).rejects.toBeInstanceOf(DbtTransientError);
    } finally {
      connection.closeSync();
      holder.closeSync();
    }
  });

  it('a failing model (a Runtime Error from the SQL, exit 1) is returned for the audit, not retried', async () => {
    const outcome = await run('duck', 'missing', 'missing');
    expect(outcome.exitCode).toBe(1);
    expect(outcome.progress.failed).toBe(1);
  });

  it('a compilation error (dbt exits 2 as for a refused connection) is fatal', async () => {
    const broken = join(root, 'broken');
    await mkdir(join(broken, 'models'), { recursive: true });
    await writeFile(join(broken, 'dbt_project.yml'), 'name: failures\nversion: "1.0"\nprofile: failures\n');
    await writeFile(
      join(broken, 'profiles.yml'),
      `failures:\n  target: duck\n  outputs:\n    duck: {type: duckdb, path: "${join(root, 'broken.duckdb')}", schema: main, threads: 1}\n`,
    );
    await writeFile(join(broken, 'models', 'bad.sql'), "select {{ ref('bad' }} as a\n");
    const failed = runDbt({
      projectDir: broken,
      profilesDir: broken,
      args: ['build', '--target', 'duck'],
      targetPath: join(root, 'runs', 'compile'),
    });
    await expect(failed).rejects.toBeInstanceOf(DbtInvocationError);
    await expect(failed).rejects.toThrow(/exit 2\): [\s\S]*Compilation Error in model bad/);
  });

  it('classifies by dbt error type first: the same words in a compilation error are not a connection', () => {
    expect(classifyDbtFailure('Encountered an error:\nDatabase Error\n  connection refused')).toEqual({
      kind: 'transient',
      type: 'Database Error',
    });
    expect(classifyDbtFailure("Compilation Error in model m\n  'connection refused' is undefined")).toEqual({
      kind: 'fatal',
      type: 'Compilation Error',
    });
    expect(classifyDbtFailure('Database Error in model m\n  relation "x" does not exist').kind).toBe('fatal');
    expect(classifyDbtFailure('Encountered an error:\nIO Error: Could not set lock on file "f"').kind).toBe(
      'transient',
    );
  });
});
