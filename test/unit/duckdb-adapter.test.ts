/** The DuckDB adapter against a real DuckDB file: backup, publish, restore, fingerprint, quoting. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DuckDbAdapter } from '../../activities/warehouses/duckdb/adapter.js';
import type { Relation } from '../../workflows/types.js';
import { snapshotSchema } from '../support/harness.js';

const LABEL = { env: 'prod', createdAt: '2026-11-25T00:00:00.000Z' };
const rel = (schema: string, identifier: string): Relation => ({ database: 'wh', schema, identifier });

describe('DuckDbAdapter', () => {
  let path: string;
  let adapter: DuckDbAdapter;
  let statements: string[];

  /** Opens the test file, recording each statement sent without the adapter's numbering prefix. */
  const open = () =>
    DuckDbAdapter.open({ engine: 'duckdb', path, database: 'wh', schema: 'prod' }, (sql) =>
      statements.push(sql.replace(/^\[duckdb #\d+\] /, '')),
    );

  beforeEach(async () => {
    path = join(await mkdtemp(join(tmpdir(), 'duckdb-adapter-')), 'wh.duckdb');
    const instance = await DuckDBInstance.create(path);
    const connection = await instance.connect();
    await connection.run(`
      CREATE SCHEMA prod; CREATE SCHEMA staging;
      CREATE TABLE prod.orders AS SELECT range AS id, 'old' AS note FROM range(10);
      CREATE VIEW prod.order_count AS SELECT count(*) AS n FROM prod.orders;
      CREATE TABLE staging.orders AS SELECT range AS id, 'new' AS note FROM range(12);
      CREATE TABLE staging."odd ""name""" AS SELECT 1 AS x;
    `);
    connection.closeSync();
    instance.closeSync();
    statements = [];
    adapter = await open();
  });
  afterEach(async () => adapter.close());

  it('publishes tables in one transaction and restores the previous prod from the backup', async () => {
    const relations = [rel('prod', 'orders'), rel('prod', 'order_count'), rel('prod', 'odd "name"')];
    const backup = await adapter.backup('prod-1', relations, LABEL);
    expect(backup.entries.map((e) => e.kind)).toEqual(['table', 'view', 'absent']);
    await adapter.close();
    const before = await snapshotSchema(path, 'prod');
    adapter = await open();

    await adapter.replaceRelations({
      views: [],
      drop: [],
      tables: [
        { from: rel('staging', 'orders'), to: rel('prod', 'orders') },
        { from: rel('staging', 'odd "name"'), to: rel('prod', 'odd "name"') },
      ],
    });
    expect((await adapter.fingerprint(rel('prod', 'orders'))).rows).toBe(12);
    expect(statements).toContain('BEGIN TRANSACTION');
    expect(statements.some((s) => s.includes('"wh"."prod"."odd ""name"""'))).toBe(true);

    await adapter.restore(backup);
    await adapter.restore(backup); // a compensation may run twice: the second changes nothing
    await adapter.close();
    expect(await snapshotSchema(path, 'prod')).toEqual(before);
    adapter = await open();
    expect(await adapter.relationKind(rel('prod', 'odd "name"'))).toBe('absent');
  });

  it('rolls the whole publish back when one copy fails', async () => {
    await expect(
      adapter.replaceRelations({
        views: [],
        drop: [],
        tables: [
          { from: rel('staging', 'orders'), to: rel('prod', 'orders') },
          { from: rel('staging', 'missing'), to: rel('prod', 'missing') },
        ],
      }),
    ).rejects.toThrow(/missing/);
    expect(statements.at(-1)).toBe('ROLLBACK');
    expect((await adapter.fingerprint(rel('prod', 'orders'))).rows).toBe(10);
  });

  it('fingerprints by content, not by row order', async () => {
    const staging = await adapter.fingerprint(rel('staging', 'orders'));
    await adapter.replaceRelations({
      views: [],
      drop: [],
      tables: [{ from: rel('staging', 'orders'), to: rel('prod', 'orders') }],
    });
    expect(await adapter.fingerprint(rel('prod', 'orders'))).toEqual({
      ...staging,
      relation: rel('prod', 'orders'),
    });
    expect((await adapter.fingerprint(rel('prod', 'order_count'))).checksum).not.toBe('0');
  });

  it('drops a backup completely', async () => {
    const backup = await adapter.backup('prod-2', [rel('prod', 'orders')], LABEL);
    await adapter.dropBackup(backup);
    await adapter.dropBackup(backup);
    expect(await adapter.relationKind({ ...backup.location, identifier: '_dbt_deploy_backup' })).toBe(
      'absent',
    );
  });

  it('replaces tables, views and drops in one change, all or nothing', async () => {
    await adapter.replaceRelations({
      tables: [{ from: rel('staging', 'orders'), to: rel('prod', 'orders') }],
      views: [{ to: rel('prod', 'big_orders'), sql: 'SELECT * FROM "wh"."prod"."orders" WHERE id > 9' }],
      drop: [rel('prod', 'order_count')],
    });
    expect(await adapter.relationKind(rel('prod', 'order_count'))).toBe('absent');
    expect((await adapter.fingerprint(rel('prod', 'big_orders'))).rows).toBe(2);
    await adapter.close();
    const before = await snapshotSchema(path, 'prod');
    adapter = await open();

    await expect(
      adapter.replaceRelations({
        tables: [{ from: rel('staging', 'odd "name"'), to: rel('prod', 'orders') }],
        views: [{ to: rel('prod', 'broken'), sql: 'SELECT * FROM nowhere' }],
        drop: [],
      }),
    ).rejects.toThrow(/nowhere/);
    await adapter.close();
    expect(await snapshotSchema(path, 'prod')).toEqual(before);
    adapter = await open();
  });

  it('lists backups newest first with what they hold, and refuses a schema swap', async () => {
    await adapter.backup('prod-a', [rel('prod', 'orders')], {
      env: 'prod',
      createdAt: '2026-11-25T01:00:00Z',
    });
    await adapter.backup('prod-b', [rel('prod', 'orders'), rel('prod', 'gone')], {
      env: 'prod',
      operation: 'rollback',
      createdAt: '2026-11-25T02:00:00Z',
    });
    const backups = await adapter.listBackups();
    expect(backups.map((b) => [b.deployId, b.operation, b.entries.length])).toEqual([
      ['prod-b', 'rollback', 2],
      ['prod-a', 'deploy', 1],
    ]);
    expect(backups[0]?.entries[1]).toEqual({ prod: rel('prod', 'gone'), kind: 'absent' });
    await expect(adapter.swapLocations()).rejects.toThrow(/cannot rename schemas/);
  });
});
