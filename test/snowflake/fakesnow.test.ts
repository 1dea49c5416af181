/**
 * The Snowflake adapter end to end against fakesnow (a local stand-in, see test/support/fakesnow.ts),
 * for what fakesnow really runs: connecting from a profile target through snowflake-sdk, information
 * schema lookups, a backup (fakesnow's CLONE is a full copy, not zero-copy), listing it account-wide,
 * retention, view re-creation. Contents are checked with a plain driver session, not the adapter.
 * Swaps, COPY GRANTS on tables, grants, HASH_AGG and time travel are not run here: fakesnow lacks them
 * (the statement tests and the live suite cover them).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import snowflake from 'snowflake-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { connectionFor, type SnowflakeConnection } from '../../activities/profiles.js';
import { SnowflakeAdapter } from '../../activities/warehouses/snowflake/adapter.js';
import { staleBackups } from '../../activities/warehouses/shared/retention.js';
import type { Relation } from '../../workflows/types.js';
import { type Fakesnow, fakesnowInstalled, startFakesnow } from '../support/fakesnow.js';

const rel = (schema: string, identifier: string): Relation => ({ database: 'db1', schema, identifier });
const at = (hour: number) => `2026-11-30T${String(hour).padStart(2, '0')}:00:00.000Z`;

describe.skipIf(!fakesnowInstalled())('SnowflakeAdapter on fakesnow', () => {
  let fake: Fakesnow;
  let dir: string;
  let target: SnowflakeConnection;
  let plain: snowflake.Connection;
  let statements: string[];
  let adapter: SnowflakeAdapter;

  const query = (sqlText: string) =>
    new Promise<Array<Record<string, unknown>>>((resolve, reject) =>
      plain.execute({
        sqlText,
        complete: (error, _s, rows) =>
          error ? reject(error) : resolve((rows ?? []) as Array<Record<string, unknown>>),
      }),
    );

  beforeAll(async () => {
    fake = await startFakesnow();
    dir = await mkdtemp(join(tmpdir(), 'fakesnow-'));
    // The profile as a dbt-snowflake user writes it, pointed at the stand-in by host, port and protocol.
    await writeFile(
      join(dir, 'profiles.yml'),
      stringify({
        jaffle_shop: {
          target: 'prod',
          outputs: {
            prod: {
              type: 'snowflake',
              account: 'fakesnow',
              user: 'deployer',
              password: "{{ env_var('FAKESNOW_TEST_PASSWORD', 'not-a-secret') }}",
              role: 'transformer',
              warehouse: 'transforming',
              database: 'db1',
              schema: 'analytics',
              host: fake.host,
              port: fake.port,
              protocol: 'http',
            },
          },
        },
      }),
    );
    target = connectionFor(dir, dir, 'jaffle_shop', 'prod') as SnowflakeConnection;
    plain = snowflake.createConnection({
      account: 'fakesnow',
      username: 'u',
      password: 'p',
      database: 'DB1',
      accessUrl: `http://${fake.host}:${fake.port}`,
    });
    await new Promise<void>((resolve, reject) => plain.connect((e) => (e ? reject(e) : resolve())));
    for (const sqlText of [
      'CREATE DATABASE IF NOT EXISTS DB1',
      'CREATE SCHEMA IF NOT EXISTS DB1.ANALYTICS',
      'CREATE TABLE DB1.ANALYTICS.ORDERS AS SELECT * FROM (VALUES (1, 10), (2, 20), (3, 30)) AS t(ID, AMOUNT)',
      'CREATE VIEW DB1.ANALYTICS.ORDER_COUNT AS SELECT COUNT(*) AS N FROM DB1.ANALYTICS.ORDERS',
    ])
      await query(sqlText);
    statements = [];
    adapter = await SnowflakeAdapter.open(target, (s) => statements.push(s), {
      deployId: 'prod-1',
      step: 'backupProd',
    });
  }, 120_000);

  afterAll(async () => {
    await adapter?.close();
    await new Promise<void>((resolve) => (plain ? plain.destroy(() => resolve()) : resolve()));
    await fake?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('connects from the profile target and reads the catalog, folding dbt names to upper case', async () => {
    expect(await adapter.relationKind(rel('analytics', 'orders'))).toBe('table');
    expect(await adapter.relationKind(rel('analytics', 'order_count'))).toBe('view');
    expect(await adapter.relationKind(rel('analytics', 'missing'))).toBe('absent');
    expect(
      (await adapter.listRelations({ database: 'db1', schema: 'analytics' })).map(
        (r) => r.relation.identifier,
      ),
    ).toEqual(['ORDER_COUNT', 'ORDERS']);
    // Every statement goes through one execute(), numbered, with nothing from the profile but names.
    expect(statements.every((s) => /^\[snowflake #\d+\] /.test(s))).toBe(true);
    expect(statements.join('\n')).not.toContain('not-a-secret');
  });

  it('keeps a backup (a clone; a copy on fakesnow) with its manifest, lists it and drops only it', async () => {
    const backup = await adapter.backup(
      'prod-1',
      [rel('analytics', 'orders'), rel('analytics', 'order_count'), rel('analytics', 'new_one')],
      {
        env: 'prod',
        createdAt: at(1),
      },
    );
    expect(backup.entries.map((e) => e.kind)).toEqual(['table', 'view', 'absent']);
    const copy = backup.entries[0]?.copy;
    expect(copy).toBeDefined();
    const [row] = await query(
      `SELECT COUNT(*) AS N, SUM(AMOUNT) AS S FROM DB1."${String(copy?.schema).toUpperCase()}"."${String(copy?.identifier).toUpperCase()}"`,
    );
    expect([Number(row?.['N']), Number(row?.['S'])]).toEqual([3, 60]);
    expect(statements.some((s) => /CREATE TABLE .* CLONE "DB1"\."ANALYTICS"\."ORDERS"$/.test(s))).toBe(true);

    await adapter.backup('prod-2', [rel('analytics', 'orders')], { env: 'prod', createdAt: at(2) });
    await adapter.backup('mirror-1', [rel('analytics', 'orders')], {
      env: 'prod',
      operation: 'mirror',
      createdAt: at(3),
    });
    const listed = await adapter.listBackups();
    expect(listed.map((b) => [b.deployId, b.operation])).toEqual([
      ['mirror-1', 'mirror'],
      ['prod-2', 'deploy'],
      ['prod-1', 'deploy'],
    ]);
    expect(listed[2]?.entries[1]).toEqual({ prod: rel('analytics', 'order_count'), kind: 'view' });

    // Retention with keep 1: the older deploy backup goes, the mirror refresh does not evict prod-2.
    for (const stale of staleBackups(listed, 'prod', 1)) await adapter.dropBackup(stale);
    expect((await adapter.listBackups()).map((b) => b.deployId)).toEqual(['mirror-1', 'prod-2']);
    const schemas = (await query('SELECT schema_name FROM DB1.information_schema.schemata')).map((r) =>
      String(r['SCHEMA_NAME']),
    );
    expect(schemas.filter((s) => s.startsWith('DBT_DEPLOY_BACKUP__'))).toHaveLength(2);
    expect(schemas).toContain('ANALYTICS');
  });

  it('re-creates a view from SQL compiled for prod, reading a table of the same change', async () => {
    await query(
      'CREATE TABLE DB1.ANALYTICS.BIG_ORDERS_SRC AS SELECT * FROM DB1.ANALYTICS.ORDERS WHERE AMOUNT > 15',
    );
    await adapter.replaceRelations({
      tables: [],
      views: [{ to: rel('analytics', 'big_orders'), sql: 'select * from db1.analytics.big_orders_src;' }],
      drop: [],
    });
    const rows = await query('SELECT COUNT(*) AS N FROM DB1.ANALYTICS.BIG_ORDERS');
    expect(Number(rows[0]?.['N'])).toBe(2);
    expect(await adapter.relationKind(rel('analytics', 'big_orders'))).toBe('view');
  });
});
