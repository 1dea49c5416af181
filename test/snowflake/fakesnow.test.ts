/**
 * Snowflake end to end on fakesnow (a local stand-in, see test/support/fakesnow.ts), for what fakesnow
 * really runs of a deploy: dbt-snowflake builds the example into a prod and a staging database (`host`,
 * `port`, `protocol: http`), the worker connects from the same profile targets through snowflake-sdk,
 * reads what dbt built from information_schema, re-creates a staging view from the SQL dbt compiled
 * for prod, keeps backups (fakesnow's table CLONE is a full copy, not zero-copy) and applies retention.
 * Contents are checked with a plain driver session, not the adapter.
 *
 * Not run here, because fakesnow fakes or lacks them (FACTS §5): SWAP, database and schema clones
 * (a database clone is silently empty), COPY GRANTS on clones, grants, HASH_AGG, time travel. The
 * statement tests and the live suite cover those.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import snowflake from 'snowflake-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { appendRawOrders, loadRawData } from '../../examples/jaffle_shop/raw-data.js';
import { EXAMPLE_DIR } from '../../examples/jaffle_shop/workspace.js';
import type { Manifest } from '../../activities/artifacts.js';
import { dbtBin } from '../../activities/dbt.js';
import { connectionFor, type SnowflakeConnection } from '../../activities/profiles.js';
import {
  buildRelationMap,
  MAPPED_RESOURCES,
  type RelationMap,
  TABLE_MATERIALIZATIONS,
} from '../../activities/relation-map.js';
import { staleBackups } from '../../activities/warehouses/shared/retention.js';
import { StatementCounter } from '../../activities/warehouses/shared/statement-log.js';
import { SnowflakeAdapter } from '../../activities/warehouses/snowflake/adapter.js';
import { SnowflakeSession } from '../../activities/warehouses/snowflake/connection.js';
import { repointView } from '../../activities/warehouses/snowflake/statements.js';
import type { Relation } from '../../workflows/types.js';
import { type Fakesnow, fakesnowInstalled, startFakesnow } from '../support/fakesnow.js';
import { scratchDir } from '../support/scratch.js';
import { EVERY_MODEL } from '../workflow/scenarios.js';

const PROD = 'jaffle';
const STAGING = 'jaffle_staging';
const RAW = 'jaffle_raw';
/** The example's views (the rest are tables, seeds and the snapshot). */
const VIEWS = ['customer_revenue', 'stg_customers', 'stg_orders', 'stg_payments'];
const FIRST_ORDERS = 600;
const NEW_ORDERS = 50;
const at = (hour: number) => `2026-11-30T${String(hour).padStart(2, '0')}:00:00.000Z`;
/** dbt on fakesnow can stall in the connector's retries: never wait on it for ever. */
const DBT_TIMEOUT_MS = 180_000;

describe.skipIf(!fakesnowInstalled())(
  'Snowflake on fakesnow: dbt-snowflake builds, the worker deploys',
  () => {
    let fake: Fakesnow;
    let dir: string;
    let prodTarget: SnowflakeConnection;
    let plain: snowflake.Connection;
    let map: RelationMap;
    let stagingManifest: Manifest;
    let statements: string[];
    let adapter: SnowflakeAdapter;

    const query = (sqlText: string) =>
      new Promise<Array<Record<string, unknown>>>((resolve, reject) =>
        plain.execute({
          sqlText,
          complete: (error, _s, rows) =>
            error
              ? reject(error)
              : resolve(
                  ((rows ?? []) as Array<Record<string, unknown>>).map((row) =>
                    Object.fromEntries(Object.entries(row).map(([k, v]) => [k.toLowerCase(), v])),
                  ),
                ),
        }),
      );
    const count = async (from: string, column = 'count(*)') =>
      Number((await query(`SELECT ${column} AS n FROM ${from}`))[0]?.['n']);
    const dbt = (args: string[]) =>
      execa(dbtBin(), [...args, '--profiles-dir', dir, '--project-dir', dir], {
        cwd: dir,
        env: { DBT_SEND_ANONYMOUS_USAGE_STATS: 'false', DO_NOT_TRACK: '1' },
        timeout: DBT_TIMEOUT_MS,
        all: true,
      });
    const manifestOf = async (targetPath: string) =>
      JSON.parse(await readFile(join(dir, targetPath, 'manifest.json'), 'utf8')) as Manifest;
    const model = (name: string) => {
      const found = map.models.find((m) => m.name === name);
      if (!found) throw new Error(`the relation map has no ${name}`);
      return found;
    };
    const quoted = (r: Relation) =>
      [r.database, r.schema, r.identifier].map((p) => p.toUpperCase()).join('.');

    beforeAll(async () => {
      fake = await startFakesnow();
      snowflake.configure({ logLevel: 'ERROR', additionalLogToConsole: false });
      plain = snowflake.createConnection({
        account: 'fakesnow',
        username: 'u',
        password: 'p',
        database: RAW.toUpperCase(),
        accessUrl: `http://${fake.host}:${fake.port}`,
      });
      await new Promise<void>((resolve, reject) => plain.connect((e) => (e ? reject(e) : resolve())));
      // Sources in a database of their own, as a database swap requires (docs/snowflake.md).
      for (const database of [PROD, STAGING, RAW]) await query(`CREATE DATABASE IF NOT EXISTS ${database}`);
      await loadRawData({ execute: query }, { orders: FIRST_ORDERS });

      dir = join(await scratchDir('fakesnow-'), 'jaffle_shop');
      await cp(EXAMPLE_DIR, dir, { recursive: true, filter: (s) => !/(\/target|\/logs|\.duckdb)$/.test(s) });
      await cp(join(import.meta.dirname, 'fixture', 'macros'), join(dir, 'macros'), { recursive: true });
      const sources = join(dir, 'models', 'staging', '_sources.yml');
      await writeFile(
        sources,
        (await readFile(sources, 'utf8')).replace(/^( {4})schema: .*$/m, `$1database: ${RAW}\n$1schema: raw`),
      );
      // The profile as a dbt-snowflake user writes it, pointed at the stand-in by host, port and protocol.
      const target = (database: string) => ({
        type: 'snowflake',
        account: 'fakesnow',
        user: 'deployer',
        password: "{{ env_var('FAKESNOW_TEST_PASSWORD', 'not-a-secret') }}",
        role: 'transformer',
        warehouse: 'transforming',
        database,
        schema: 'analytics',
        host: fake.host,
        port: fake.port,
        protocol: 'http',
        threads: 1,
      });
      await writeFile(
        join(dir, 'profiles.yml'),
        stringify({
          jaffle_shop: { target: 'prod', outputs: { prod: target(PROD), staging: target(STAGING) } },
        }),
      );
      // The prod an earlier deploy left, then a day of new orders, then this deploy's build in staging.
      // Both are first builds in their database, so the example's incremental model needs no MERGE.
      await dbt(['build', '--target', 'prod', '--target-path', 'target-prod']);
      await appendRawOrders({ execute: query }, { orders: NEW_ORDERS });
      await dbt(['build', '--target', 'staging', '--target-path', 'target-staging']);

      // What the deploy's resolve step makes of dbt's artifacts: each node's prod and build relation,
      // and for views the SELECT compiled for prod.
      stagingManifest = await manifestOf('target-staging');
      const listing = Object.values(stagingManifest.nodes)
        .filter((node) => (MAPPED_RESOURCES as readonly string[]).includes(node.resource_type))
        .map((node) =>
          JSON.stringify({
            unique_id: node.unique_id,
            name: node.name,
            database: node.database,
            schema: node.schema,
            alias: node.alias,
          }),
        );
      map = buildRelationMap(await manifestOf('target-prod'), listing, new Set(), {
        prodTarget: 'prod',
        buildTarget: 'staging',
      });

      prodTarget = connectionFor(dir, dir, 'jaffle_shop', 'prod') as SnowflakeConnection;
      statements = [];
      adapter = await SnowflakeAdapter.open(prodTarget, (s) => statements.push(s), {
        deployId: 'prod-2',
        step: 'swap',
      });
    }, 600_000);

    afterAll(async () => {
      await adapter?.close();
      await new Promise<void>((resolve) => (plain ? plain.destroy(() => resolve()) : resolve()));
      await fake?.stop();
    });

    it('dbt-snowflake built the example in both databases; the worker reads it from the same profile', async () => {
      for (const database of [PROD, STAGING]) {
        const found = await adapter.listRelations({ database, schema: 'analytics' });
        expect(found.map((r) => [r.relation.identifier.toLowerCase(), r.kind]).sort()).toEqual(
          EVERY_MODEL.map((name) => [name, VIEWS.includes(name) ? 'view' : 'table']).sort(),
        );
      }
      expect(await adapter.relationKind(model('fct_orders').build)).toBe('table');
      expect(await adapter.relationKind(model('customer_revenue').prod)).toBe('view');
      // Every source order is in the build: the rows are dbt's, read back through the stand-in.
      expect(await count(`${PROD}.analytics.fct_orders`)).toBe(FIRST_ORDERS);
      expect(await count(`${STAGING}.analytics.fct_orders`)).toBe(FIRST_ORDERS + NEW_ORDERS);
      expect(await count(`${STAGING}.analytics.customer_revenue`, 'sum(orders)')).toBe(
        FIRST_ORDERS + NEW_ORDERS,
      );
      // Every statement goes through one execute(), numbered, with nothing from the profile but names.
      expect(statements.every((s) => /^\[snowflake #\d+\] /.test(s))).toBe(true);
      expect(statements.join('\n')).not.toContain('not-a-secret');
    });

    it('a staging view re-created from the SQL compiled for prod reads the model built in the same deploy once the names are exchanged', async () => {
      const view = model('customer_revenue');
      const asBuilt = stagingManifest.nodes[view.uniqueId]?.compiled_code;
      expect(asBuilt).toMatch(/jaffle_staging/i);
      expect(view.prodSql).toBeDefined();
      expect(view.prodSql).not.toMatch(/jaffle_staging/i);
      // dbt's own view, kept under another name: it names staging's tables, as every view dbt builds there.
      await query(`CREATE VIEW ${STAGING}.analytics.customer_revenue_as_built AS ${String(asBuilt)}`);
      // The statement the database swap sends for each staging view, through the worker's session.
      const session = await SnowflakeSession.open(prodTarget, new StatementCounter('snowflake', () => {}));
      try {
        await session.execute(repointView(view.build, view.prodSql as string));
      } finally {
        await session.close();
      }
      const [definition] = await query(
        `SELECT view_definition AS d FROM ${STAGING}.information_schema.views WHERE table_schema = 'ANALYTICS' AND table_name = 'CUSTOMER_REVENUE'`,
      );
      expect(String(definition?.['d'])).not.toMatch(/jaffle_staging/i);

      // `ALTER DATABASE … SWAP WITH` exchanges the two databases' names; fakesnow has no SWAP, so the
      // test exchanges the contents of every table instead (with CLONE, which fakesnow runs as a copy).
      // Views stay where they are: staging's views are the ones that become prod's.
      const tables = map.models.filter((m) => TABLE_MATERIALIZATIONS.has(m.materialized));
      for (const { prod, build } of tables) {
        const [p, b, held] = [quoted(prod), quoted(build), `${quoted(prod)}__HELD`];
        for (const statement of [
          `CREATE TABLE ${held} CLONE ${p}`,
          `DROP TABLE ${p}`,
          `CREATE TABLE ${p} CLONE ${b}`,
          `DROP TABLE ${b}`,
          `CREATE TABLE ${b} CLONE ${held}`,
          `DROP TABLE ${held}`,
        ])
          await query(statement);
      }
      expect(await count(`${PROD}.analytics.fct_orders`)).toBe(FIRST_ORDERS + NEW_ORDERS);
      // The re-created view reads this deploy's build under prod's name; dbt's own reads the old prod.
      expect(await count(`${STAGING}.analytics.customer_revenue`, 'sum(orders)')).toBe(
        FIRST_ORDERS + NEW_ORDERS,
      );
      expect(await count(`${STAGING}.analytics.customer_revenue_as_built`, 'sum(orders)')).toBe(FIRST_ORDERS);
    });

    it('refuses to clone over a staging database dbt-deploy did not make, before any change', async () => {
      // fakesnow runs the lookup (information_schema.databases) but keeps no database comments, and its
      // database clone is empty: only the refusal is claimed here, the clone itself is not.
      const pairs = [{ prod: model('fct_orders').prod, staging: model('fct_orders').build }].map((p) => ({
        prod: { database: p.prod.database, schema: p.prod.schema },
        staging: { database: p.staging.database, schema: p.staging.schema },
      }));
      const before = statements.length;
      await expect(
        adapter.cloneBuildDatabase(
          pairs,
          { project: 'jaffle_shop', env: 'prod', deployId: 'prod-3' },
          {
            wholeDatabase: true,
          },
        ),
      ).rejects.toThrow(
        /^staging database JAFFLE_STAGING exists and is not this environment's dbt-deploy staging \(comment: none\)/,
      );
      expect(statements.slice(before).filter((s) => /\] (CREATE|DROP|GRANT|ALTER)/.test(s))).toEqual([]);
      expect(await count(`${STAGING}.analytics.customer_revenue_as_built`, 'sum(orders)')).toBe(FIRST_ORDERS);
    });

    it('keeps backups of what dbt built (tables cloned into new tables, views recorded), lists them and drops only the stale', async () => {
      const relations = [
        model('fct_orders').prod,
        model('dim_customers').prod,
        model('customer_revenue').prod,
      ];
      const absent = { ...model('fct_orders').prod, identifier: 'not_built_yet' };
      const backup = await adapter.backup('prod-1', [...relations, absent], {
        env: 'prod',
        createdAt: at(1),
      });
      expect(backup.entries.map((e) => e.kind)).toEqual(['table', 'table', 'view', 'absent']);
      for (const entry of backup.entries.filter((e) => e.kind === 'table'))
        expect(await count(quoted(entry.copy as Relation))).toBe(await count(quoted(entry.prod)));
      expect(
        statements.some((s) => /CREATE TABLE .* CLONE "JAFFLE"\."ANALYTICS"\."FCT_ORDERS"$/.test(s)),
      ).toBe(true);

      await adapter.backup('prod-2', [relations[0] as Relation], { env: 'prod', createdAt: at(2) });
      await adapter.backup('mirror-1', [relations[0] as Relation], {
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
      expect(listed[2]?.entries[2]).toEqual({ prod: model('customer_revenue').prod, kind: 'view' });

      // Retention with keep 1: the older deploy backup goes, the mirror refresh does not evict prod-2.
      for (const stale of staleBackups(listed, 'prod', 1)) await adapter.dropBackup(stale);
      expect((await adapter.listBackups()).map((b) => b.deployId)).toEqual(['mirror-1', 'prod-2']);
      const schemas = (await query(`SELECT schema_name FROM ${PROD}.information_schema.schemata`)).map((r) =>
        String(r['schema_name']),
      );
      expect(schemas.filter((s) => s.startsWith('DBT_DEPLOY_BACKUP__'))).toHaveLength(2);
      // Prod itself is untouched by its backups and their retention.
      expect(await count(`${PROD}.analytics.fct_orders`)).toBe(FIRST_ORDERS + NEW_ORDERS);
    });
  },
);
