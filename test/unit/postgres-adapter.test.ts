/**
 * The PostgreSQL adapter against the run's real server, each test in a database of its own: backup,
 * replace, restore, the blue/green schema swap and its undo, views outside prod that read it, quoting,
 * listing and fingerprints. Contents are checked with a plain client, not through the adapter.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { type BackupLabel, backupLocationName } from '../../activities/warehouses/adapter.js';
import { PostgresAdapter } from '../../activities/warehouses/postgres/adapter.js';
import type { Relation } from '../../workflows/types.js';
import { createDatabase, dropDatabase, type PostgresServer, withClient } from '../support/postgres.js';

interface Snapshot {
  kind: string;
  rows: number;
  /** md5 over every row's text in sorted order: any changed, added or lost row changes it. */
  md5: string;
}

const label = (createdAt = '2024-05-01T00:00:00.000Z'): BackupLabel => ({ env: 'prod', createdAt });

describe('PostgresAdapter', () => {
  let server: PostgresServer;
  let adapter: PostgresAdapter;
  let statements: string[];
  const rel = (schema: string, identifier: string): Relation => ({
    database: server.database,
    schema,
    identifier,
  });
  const swap = (prod: string, staging: string) => ({
    prod: { database: server.database, schema: prod },
    staging: { database: server.database, schema: staging },
  });
  const sql = <T = Record<string, unknown>>(text: string) =>
    withClient(server, async (client: pg.Client) => (await client.query(text)).rows as T[]);
  const scalar = async (text: string) => Object.values((await sql(text))[0] ?? {})[0];

  /** Every relation of `schema` with its content; views are read like tables. */
  const snapshot = async (schema: string): Promise<Record<string, Snapshot>> => {
    const relations = await sql<{ relname: string; relkind: string }>(
      `SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace ` +
        `WHERE n.nspname = '${schema.replaceAll("'", "''")}' AND c.relkind IN ('r', 'v', 'm') ` +
        `AND c.relname <> '_dbt_deploy_backup' ORDER BY 1`,
    );
    const result: Record<string, Snapshot> = {};
    for (const { relname, relkind } of relations) {
      const name = `"${schema.replaceAll('"', '""')}"."${relname.replaceAll('"', '""')}"`;
      const [content] = await sql<{ n: string; md5: string }>(
        `SELECT count(*) AS n, md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) AS md5 FROM ${name} AS r`,
      );
      result[relname] = { kind: relkind, rows: Number(content?.n), md5: String(content?.md5) };
    }
    return result;
  };
  const schemas = async () =>
    (await sql<{ nspname: string }>(`SELECT nspname FROM pg_namespace ORDER BY 1`)).map((r) => r.nspname);

  beforeEach(async () => {
    server = await createDatabase(inject('postgres'), `pg_adapter_${randomBytes(4).toString('hex')}`);
    await sql(`
      CREATE SCHEMA prod; CREATE SCHEMA staging; CREATE SCHEMA reporting;
      CREATE TABLE prod.orders (id integer PRIMARY KEY, note text NOT NULL DEFAULT 'none');
      INSERT INTO prod.orders SELECT g, 'old ' || g FROM generate_series(1, 10) AS g;
      CREATE VIEW prod.order_count AS SELECT count(*) AS n FROM prod.orders;
      CREATE VIEW reporting.order_count AS SELECT count(*) AS n FROM prod.orders;
      GRANT SELECT ON reporting.order_count TO PUBLIC;
      COMMENT ON VIEW reporting.order_count IS 'read by the dashboard';
      CREATE TABLE staging.orders (id integer PRIMARY KEY, note text NOT NULL DEFAULT 'none');
      INSERT INTO staging.orders SELECT g, 'new ' || g FROM generate_series(1, 12) AS g;
      CREATE VIEW staging.order_count AS SELECT count(*) AS n FROM staging.orders;
      CREATE TABLE staging."odd ""name""" AS SELECT 1 AS "a""b";
    `);
    statements = [];
    adapter = await PostgresAdapter.open(
      {
        engine: 'postgres',
        host: server.host,
        port: server.port,
        user: server.user,
        password: server.password,
        dbname: server.database,
        schema: 'prod',
      },
      (statement) => statements.push(statement.replace(/^\[postgres #\d+\] /, '')),
    );
  });
  afterEach(async () => {
    await adapter.close();
    await dropDatabase(inject('postgres'), server.database);
  });

  it('backs up, replaces and restores prod; restoring twice gives the same prod', async () => {
    const relations = [rel('prod', 'orders'), rel('prod', 'order_count'), rel('prod', 'odd "name"')];
    const backup = await adapter.backup('deploy-1', relations, label());
    expect(backup.entries.map((e) => e.kind)).toEqual(['table', 'view', 'absent']);
    expect(backup.location).toEqual({ database: server.database, schema: backupLocationName('deploy-1') });
    const before = await snapshot('prod');

    await adapter.replaceRelations({
      tables: [
        { from: rel('staging', 'orders'), to: rel('prod', 'orders') },
        { from: rel('staging', 'odd "name"'), to: rel('prod', 'odd "name"') },
      ],
      views: [{ to: rel('prod', 'order_count'), sql: 'SELECT count(*) * 1 AS n FROM prod.orders' }],
      drop: [],
    });
    expect(await scalar('SELECT count(*) FROM prod.orders')).toBe('12');
    // The view outside the change was re-created and reads the new table, not the dropped one.
    expect(await scalar('SELECT n FROM reporting.order_count')).toBe('12');
    expect(statements.some((s) => s.includes(`"prod"."odd ""name"""`))).toBe(true);
    expect(statements.filter((s) => /^DROP (TABLE|VIEW)/.test(s) && s.includes('CASCADE'))).toEqual([]);

    await adapter.restore(backup);
    await adapter.restore(backup);
    expect(await snapshot('prod')).toEqual(before);
    expect(await adapter.relationKind(rel('prod', 'odd "name"'))).toBe('absent');
    expect(await scalar('SELECT n FROM reporting.order_count')).toBe('10');
    // Re-creating someone else's view keeps what they set on it.
    expect(
      await scalar(`SELECT relacl::text FROM pg_class WHERE oid = 'reporting.order_count'::regclass`),
    ).toMatch(/(^|[{,])=r\//);
    expect(await scalar(`SELECT obj_description('reporting.order_count'::regclass, 'pg_class')`)).toBe(
      'read by the dashboard',
    );
    // The copy keeps the table's shape: key and default come along.
    expect(await scalar(`SELECT count(*) FROM pg_index WHERE indrelid = 'prod.orders'::regclass`)).toBe('1');
    expect(
      await scalar(
        `SELECT column_default FROM information_schema.columns WHERE table_schema = 'prod' AND table_name = 'orders' AND column_name = 'note'`,
      ),
    ).toBe("'none'::text");
  });

  it('swaps schemas in one transaction; views elsewhere follow; unswapping twice is a no-op', async () => {
    const prodBefore = await snapshot('prod');
    const stagingBefore = await snapshot('staging');
    const backup = await adapter.swapLocations('deploy-2', [swap('prod', 'staging')], label());

    expect(backup.swapped).toEqual([
      { prod: 'prod', staging: 'staging', backup: backupLocationName('deploy-2') },
    ]);
    expect(backup.entries).toEqual([
      {
        prod: rel('prod', 'orders'),
        kind: 'table',
        copy: rel(backupLocationName('deploy-2'), 'orders'),
      },
      { prod: rel('prod', 'order_count'), kind: 'view' },
      { prod: rel('prod', 'odd "name"'), kind: 'absent' },
    ]);
    const renames = statements.filter((s) => s.startsWith('ALTER SCHEMA'));
    expect(renames).toEqual([
      `ALTER SCHEMA "prod" RENAME TO "${backupLocationName('deploy-2')}"`,
      'ALTER SCHEMA "staging" RENAME TO "prod"',
    ]);
    expect(statements.indexOf('BEGIN')).toBeLessThan(statements.indexOf(renames[0] ?? ''));
    expect(statements.at(-1)).toBe('COMMIT');
    expect(statements.filter((s) => s === 'BEGIN')).toHaveLength(1);

    expect(await snapshot('prod')).toEqual(stagingBefore);
    expect(await schemas()).not.toContain('staging');
    expect(await scalar('SELECT n FROM reporting.order_count')).toBe('12');
    expect(await scalar(`SELECT count(*) FROM ${backupLocationName('deploy-2')}.orders`)).toBe('10');

    await adapter.unswapLocations(backup);
    expect(await snapshot('prod')).toEqual(prodBefore);
    expect(await snapshot('staging')).toEqual(stagingBefore);
    expect(await scalar('SELECT n FROM reporting.order_count')).toBe('10');
    expect(await schemas()).not.toContain(backupLocationName('deploy-2'));

    statements = [];
    await adapter.unswapLocations(backup);
    expect(statements.filter((s) => s.startsWith('ALTER') || s.startsWith('DROP'))).toEqual([]);
    expect(await snapshot('prod')).toEqual(prodBefore);
    expect(await adapter.listBackups()).toEqual([]);
  });

  it('returns the same backup when a committed swap is retried', async () => {
    const first = await adapter.swapLocations('deploy-3', [swap('prod', 'staging')], label());
    statements = [];
    const again = await adapter.swapLocations('deploy-3', [swap('prod', 'staging')], label());
    expect(again).toEqual(first);
    expect(statements.filter((s) => s.startsWith('ALTER'))).toEqual([]);
  });

  it('restores a swap backup by copy, and again', async () => {
    const before = await snapshot('prod');
    const backup = await adapter.swapLocations('deploy-4', [swap('prod', 'staging')], label());
    await adapter.restore(backup);
    await adapter.restore(backup);
    expect(await snapshot('prod')).toEqual(before);
    expect(await scalar('SELECT n FROM reporting.order_count')).toBe('10');
    expect(await snapshot(backupLocationName('deploy-4'))).toEqual(before);
  });

  it('swaps in a first deploy whose prod schema does not exist yet, and undoes it', async () => {
    const stagingBefore = await snapshot('staging');
    const backup = await adapter.swapLocations('first', [swap('analytics', 'staging')], label());
    expect(backup.entries.map((e) => `${e.prod.schema}.${e.prod.identifier}:${e.kind}`)).toEqual([
      'analytics.odd "name":absent',
      'analytics.order_count:absent',
      'analytics.orders:absent',
    ]);
    expect(await snapshot('analytics')).toEqual(stagingBefore);
    await adapter.unswapLocations(backup);
    expect(await snapshot('staging')).toEqual(stagingBefore);
    expect(await snapshot('analytics')).toEqual({});
  });

  it('leaves prod exactly as it was when any part of a change fails', async () => {
    const before = { prod: await snapshot('prod'), reporting: await snapshot('reporting') };
    await expect(
      adapter.replaceRelations({
        tables: [{ from: rel('staging', 'orders'), to: rel('prod', 'orders') }],
        views: [{ to: rel('prod', 'order_count'), sql: 'SELECT nope FROM prod.nowhere' }],
        drop: [],
      }),
    ).rejects.toThrow(/nowhere/);
    expect(statements.at(-1)).toBe('ROLLBACK');
    expect({ prod: await snapshot('prod'), reporting: await snapshot('reporting') }).toEqual(before);
  });

  it('refuses to drop a table a view elsewhere still needs, instead of cascading', async () => {
    const before = await snapshot('prod');
    await expect(
      adapter.replaceRelations({
        tables: [],
        views: [],
        drop: [rel('prod', 'order_count'), rel('prod', 'orders')],
      }),
    ).rejects.toThrow(/reporting.order_count reads relations this change replaces/);
    expect(await snapshot('prod')).toEqual(before);
    expect(await scalar('SELECT n FROM reporting.order_count')).toBe('10');
  });

  it('refuses to swap in a staging view that reads prod', async () => {
    await sql('CREATE VIEW staging.deferred AS SELECT * FROM prod.orders');
    await expect(adapter.swapLocations('deploy-5', [swap('prod', 'staging')], label())).rejects.toThrow(
      /staging.deferred reads the prod schema/,
    );
    expect(await schemas()).toEqual(expect.arrayContaining(['prod', 'staging']));
    expect(await scalar('SELECT count(*) FROM prod.orders')).toBe('10');
  });

  it('quotes odd identifiers everywhere', async () => {
    const odd = 'odd "prod"';
    await sql(`
      CREATE SCHEMA "odd ""prod""";
      CREATE TABLE "odd ""prod"""."odd ""name""" ("a""b" integer);
      INSERT INTO "odd ""prod"""."odd ""name""" VALUES (1), (2);
      CREATE VIEW "odd ""prod"""."it's" AS SELECT "a""b" FROM "odd ""prod"""."odd ""name""";
    `);
    const before = await snapshot(odd);
    const backup = await adapter.backup('odd', [rel(odd, 'odd "name"'), rel(odd, "it's")], label());
    await adapter.replaceRelations({
      tables: [{ from: rel('staging', 'odd "name"'), to: rel(odd, 'odd "name"') }],
      views: [],
      drop: [],
    });
    expect((await adapter.fingerprint(rel(odd, 'odd "name"'))).rows).toBe(1);
    await adapter.restore(backup);
    expect(await snapshot(odd)).toEqual(before);
    expect(await adapter.listRelations({ database: server.database, schema: odd })).toEqual([
      { relation: rel(odd, "it's"), kind: 'view' },
      { relation: rel(odd, 'odd "name"'), kind: 'table' },
    ]);
  });

  it('copies serial and generated columns without tying the copy to the original', async () => {
    await sql(`
      CREATE TABLE prod.events (id serial PRIMARY KEY, amount integer, doubled integer GENERATED ALWAYS AS (amount * 2) STORED);
      INSERT INTO prod.events (amount) SELECT g FROM generate_series(1, 5) AS g;
    `);
    const before = await snapshot('prod');
    const backup = await adapter.backup('serial', [rel('prod', 'events')], label());
    await adapter.restore(backup);
    expect(await snapshot('prod')).toEqual(before);
  });

  it('lists backups newest first, empty and swapped ones included; dropping one twice is harmless', async () => {
    const a = await adapter.backup('deploy-a', [rel('prod', 'orders')], label('2024-01-01T00:00:00.000Z'));
    const b = await adapter.backup('deploy-b', [], {
      ...label('2024-02-01T00:00:00.000Z'),
      operation: 'mirror',
    });
    const c = await adapter.swapLocations(
      'deploy-c',
      [swap('prod', 'staging')],
      label('2024-03-01T00:00:00.000Z'),
    );
    expect(await adapter.listBackups()).toEqual([c, b, a]);
    expect(a.operation).toBe('deploy');
    expect(b.operation).toBe('mirror');

    await adapter.dropBackup(c);
    await adapter.dropBackup(c);
    expect(await adapter.listBackups()).toEqual([b, a]);
    expect(await schemas()).not.toContain(backupLocationName('deploy-c'));
  });

  it('tells tables from views, partitioned and materialized ones included', async () => {
    await sql(`
      CREATE TABLE prod.parted (id integer) PARTITION BY RANGE (id);
      CREATE MATERIALIZED VIEW prod.summary AS SELECT count(*) AS n FROM prod.orders;
    `);
    expect(await adapter.relationKind(rel('prod', 'parted'))).toBe('table');
    expect(await adapter.relationKind(rel('prod', 'summary'))).toBe('view');
    expect(await adapter.relationKind(rel('prod', 'missing'))).toBe('absent');
    const backup = await adapter.backup('mv', [rel('prod', 'summary')], label());
    await adapter.restore(backup);
    expect(await scalar(`SELECT relkind::text FROM pg_class WHERE oid = 'prod.summary'::regclass`)).toBe('m');
  });

  it('re-creates a materialized view elsewhere with its indexes when prod is swapped', async () => {
    await sql(`
      CREATE MATERIALIZED VIEW reporting.order_ids AS SELECT id FROM prod.orders;
      CREATE UNIQUE INDEX order_ids_id ON reporting.order_ids (id);
    `);
    await adapter.swapLocations('mv-swap', [swap('prod', 'staging')], label());
    expect(await scalar('SELECT count(*) FROM reporting.order_ids')).toBe('12');
    expect(await scalar(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'reporting'`)).toBe(
      'CREATE UNIQUE INDEX order_ids_id ON reporting.order_ids USING btree (id)',
    );
  });

  it('fingerprints by content: row order does not matter, a duplicated row does', async () => {
    await sql(`
      CREATE TABLE prod.a (r integer, s text);
      INSERT INTO prod.a SELECT g, 'row ' || g FROM generate_series(1, 5) AS g;
      CREATE TABLE prod.b (r integer, s text);
      INSERT INTO prod.b SELECT g, 'row ' || g FROM generate_series(5, 1, -1) AS g;
      CREATE TABLE prod.c AS SELECT * FROM prod.a UNION ALL SELECT * FROM prod.a WHERE r = 3;
      CREATE TABLE prod.empty (r integer);
    `);
    const a = await adapter.fingerprint(rel('prod', 'a'));
    const b = await adapter.fingerprint(rel('prod', 'b'));
    const c = await adapter.fingerprint(rel('prod', 'c'));
    expect(a.rows).toBe(5);
    expect(b.checksum).toBe(a.checksum);
    expect(c.rows).toBe(6);
    expect(c.checksum).not.toBe(a.checksum);
    expect(await adapter.fingerprint(rel('prod', 'empty'))).toEqual({
      relation: rel('prod', 'empty'),
      rows: 0,
      checksum: '0',
    });
  });
});
