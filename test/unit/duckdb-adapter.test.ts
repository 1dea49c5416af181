/** The DuckDB adapter against a real DuckDB file: backup, publish, restore, fingerprint, quoting. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DuckDbAdapter } from '../../activities/warehouses/duckdb.js';
import type { Relation } from '../../workflows/types.js';
import { snapshotSchema } from '../support/harness.js';

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
    const backup = await adapter.backup('prod-1', relations);
    expect(backup.entries.map((e) => e.kind)).toEqual(['table', 'view', 'absent']);
    await adapter.close();
    const before = await snapshotSchema(path, 'prod');
    adapter = await open();

    await adapter.publishTables([
      { from: rel('staging', 'orders'), to: rel('prod', 'orders') },
      { from: rel('staging', 'odd "name"'), to: rel('prod', 'odd "name"') },
    ]);
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
      adapter.publishTables([
        { from: rel('staging', 'orders'), to: rel('prod', 'orders') },
        { from: rel('staging', 'missing'), to: rel('prod', 'missing') },
      ]),
    ).rejects.toThrow(/missing/);
    expect(statements.at(-1)).toBe('ROLLBACK');
    expect((await adapter.fingerprint(rel('prod', 'orders'))).rows).toBe(10);
  });

  it('fingerprints by content, not by row order', async () => {
    const staging = await adapter.fingerprint(rel('staging', 'orders'));
    await adapter.publishTables([{ from: rel('staging', 'orders'), to: rel('prod', 'orders') }]);
    expect(await adapter.fingerprint(rel('prod', 'orders'))).toEqual({
      ...staging,
      relation: rel('prod', 'orders'),
    });
    expect((await adapter.fingerprint(rel('prod', 'order_count'))).checksum).not.toBe('0');
  });

  it('drops a backup completely', async () => {
    const backup = await adapter.backup('prod-2', [rel('prod', 'orders')]);
    await adapter.dropBackup(backup);
    await adapter.dropBackup(backup);
    expect(await adapter.relationKind({ ...backup.location, identifier: '_dbt_deploy_backup' })).toBe(
      'absent',
    );
  });
});
