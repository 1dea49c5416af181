/**
 * dbt forked from the warm server (activities/dbt-process.ts), on a real DuckDB project: each call sees
 * only its own environment, runs as a `dbt build` process that `pgrep` finds, and is gone within
 * seconds when it is cancelled or when the process standing in for it is killed.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDbt } from '../../activities/dbt.js';
import { until } from '../support/processes.js';

describe('dbt forked from a warm server', () => {
  let project: string;
  let database: string;

  beforeAll(async () => {
    project = await mkdtemp(join(tmpdir(), 'fork-server-test-'));
    database = join(project, 'probe.duckdb');
    await mkdir(join(project, 'models'), { recursive: true });
    await writeFile(join(project, 'dbt_project.yml'), 'name: forked\nversion: "1.0"\nprofile: forked\n');
    await writeFile(
      join(project, 'profiles.yml'),
      `forked:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: ${database}\n      schema: main\n`,
    );
    // What the call's environment says, or "unset": a variable of one call must not reach the next.
    await writeFile(
      join(project, 'models', 'probe.sql'),
      '{{ config(materialized=\'table\') }} select \'{{ env_var("PROBE", "unset") }}\' as seen\n',
    );
    // Busy far longer than any test waits (a count over 10^12 rows), selected only where a test wants it.
    await writeFile(
      join(project, 'models', 'slow.sql'),
      "{{ config(materialized='table') }} select count(*) as n from range(1000000000000)\n",
    );
  });

  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  const build = (select: string, env: Record<string, string> = {}, signal?: AbortSignal) =>
    runDbt({
      projectDir: project,
      profilesDir: project,
      args: ['build', '--select', select],
      targetPath: join(project, 'target', `${select}-${Date.now()}`),
      env,
      engine: 'duckdb',
      ...(signal ? { signal } : {}),
    });

  async function seen(): Promise<string> {
    const instance = await DuckDBInstance.create(database);
    const connection = await instance.connect();
    try {
      const reader = await connection.runAndReadAll('select seen from main.probe');
      return String(reader.getRowObjectsJson()[0]?.['seen']);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  }

  /** The processes running `dbt build` in this project: the stand-in and the forked dbt. */
  function dbtBuilds(): number[] {
    try {
      return execFileSync('pgrep', ['-f', `dbt build .*${project}`], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  }

  it('gives each call its own environment, and nothing of the one before', async () => {
    expect((await build('probe', { PROBE: 'first' })).exitCode).toBe(0);
    expect(await seen()).toBe('first');
    expect((await build('probe')).exitCode).toBe(0);
    expect(await seen()).toBe('unset');
    expect((await build('probe', { PROBE: 'third' })).exitCode).toBe(0);
    expect(await seen()).toBe('third');
  });

  it('stops dbt within seconds when the call is cancelled', async () => {
    const abort = new AbortController();
    const running = build('slow', {}, abort.signal);
    // The stand-in and the forked dbt; then long enough for dbt to be in its query.
    await until('dbt build to run', async () => dbtBuilds().length === 2, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    abort.abort();
    await expect(running).rejects.toThrow('dbt was cancelled');
    await until('no dbt build left', async () => dbtBuilds().length === 0, 10_000);
  });

  it('kills the forked dbt when the process standing in for it is killed', async () => {
    const running = build('slow');
    // The stand-in is this process's child; the forked dbt is the fork server's.
    const standIn = async () => {
      try {
        const found = execFileSync('pgrep', ['-P', String(process.pid), '-f', `dbt build .*${project}`], {
          encoding: 'utf8',
        });
        return Number(found.split('\n')[0]);
      } catch {
        return undefined;
      }
    };
    await until('the stand-in to run', async () => (await standIn()) !== undefined, 60_000);
    await until('the forked dbt to run', async () => dbtBuilds().length === 2, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    process.kill((await standIn())!, 'SIGKILL');
    await expect(running).rejects.toThrow('dbt build was stopped by SIGKILL');
    await until('no dbt build left', async () => dbtBuilds().length === 0, 10_000);
  });
});
