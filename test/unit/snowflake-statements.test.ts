/**
 * Every statement sequence the Snowflake adapter sends, compared with the statement Snowflake's
 * documentation gives for the operation (each expectation names its page under
 * https://docs.snowflake.com/en/). No emulator runs SWAP, database clones, COPY GRANTS, grants or
 * time travel (FACTS §5), so this layer and the live suite carry them.
 */
import { describe, expect, it } from 'vitest';
import { snowflakeDialect, snowflakeStoredName } from '../../activities/warehouses/snowflake/dialect.js';
import { swapPlan } from '../../activities/warehouses/snowflake/adapter.js';
import * as sql from '../../activities/warehouses/snowflake/statements.js';
import {
  backupLocationName,
  manifestStatements,
} from '../../activities/warehouses/shared/backup-manifest.js';

const rel = (database: string, schema: string, identifier: string) => ({ database, schema, identifier });

describe('Snowflake dialect', () => {
  it('folds the names dbt leaves unquoted to upper case, and keeps the others as written', () => {
    // sql-reference/identifiers-syntax: unquoted identifiers are stored and resolved in upper case.
    expect(snowflakeStoredName('analytics')).toBe('ANALYTICS');
    expect(snowflakeStoredName('odd name')).toBe('odd name');
    expect(snowflakeDialect.quoteRelation(rel('analytics', 'marts', 'orders'))).toBe(
      '"ANALYTICS"."MARTS"."ORDERS"',
    );
    expect(snowflakeDialect.quoteIdentifier('say "hi"')).toBe('"say ""hi"""');
    expect(snowflakeDialect.relationKey(rel('analytics', 'marts', 'orders'))).toBe(
      snowflakeDialect.relationKey(rel('ANALYTICS', 'MARTS', 'ORDERS')),
    );
  });
});

describe('Snowflake staging made from prod', () => {
  const owner = { project: 'jaffle_shop', env: 'prod', deployId: 'prod-9' };
  const comment = 'dbt-deploy staging: project=jaffle_shop env=prod deploy=prod-9';

  it('clones the whole prod database once, the owner in the same statement, and drops the cloned backups', () => {
    // sql-reference/info-schema/databases: one row per database of the account, with its COMMENT.
    expect(sql.findDatabase('analytics', 'analytics_staging')).toBe(
      `SELECT database_name, comment FROM "ANALYTICS".information_schema.databases WHERE database_name = 'ANALYTICS_STAGING'`,
    );
    expect(
      sql.cloneStaging('analytics', 'analytics_staging', { kind: 'absent' }, owner, [
        'DBT_DEPLOY_BACKUP__P8_1A',
      ]),
    ).toEqual([
      // sql-reference/sql/create-database: CREATE DATABASE <name> CLONE <source_db> ... [ COMMENT = '<string_literal>' ]
      `CREATE DATABASE "ANALYTICS_STAGING" CLONE "ANALYTICS" COMMENT = '${comment}'`,
      // sql-reference/sql/drop-schema: DROP SCHEMA [ IF EXISTS ] <name> [ CASCADE | RESTRICT ]
      'DROP SCHEMA IF EXISTS "ANALYTICS_STAGING"."DBT_DEPLOY_BACKUP__P8_1A" CASCADE',
    ]);
  });

  it('a retried step keeps its own clone; an ended deploy of the environment is replaced in one statement', () => {
    const found = (text: string) => sql.stagingHolder({ comment: text }, owner);
    expect(found(comment)).toEqual({ kind: 'this-deploy' });
    expect(sql.cloneStaging('analytics', 'analytics_staging', found(comment), owner, [])).toEqual([]);
    const ended = found('dbt-deploy staging: project=jaffle_shop env=prod deploy=prod-8');
    expect(ended).toEqual({ kind: 'ended-deploy', deployId: 'prod-8' });
    expect(sql.cloneStaging('analytics', 'analytics_staging', ended, owner, [])).toEqual([
      // sql-reference/sql/create-database: CREATE [ OR REPLACE ] DATABASE <name> CLONE <source_db>
      `CREATE OR REPLACE DATABASE "ANALYTICS_STAGING" CLONE "ANALYTICS" COMMENT = '${comment}'`,
    ]);
    expect(sql.stagingHolder(undefined, owner)).toEqual({ kind: 'absent' });
  });

  it("never replaces another environment's staging, nor a database dbt-deploy did not make", () => {
    for (const other of [
      'dbt-deploy staging: project=jaffle_shop env=eu deploy=eu-3',
      'dbt-deploy staging: project=billing env=prod deploy=prod-2',
      'reporting sandbox',
      null,
    ]) {
      const holder = sql.stagingHolder({ comment: other }, owner);
      expect(holder.kind).toBe('other');
      expect(() => sql.cloneStaging('analytics', 'analytics_staging', holder, owner, [])).toThrow(
        /^staging database analytics_staging exists and is not this environment's dbt-deploy staging .*: drop it, or give the staging target a database of its own$/,
      );
    }
  });

  it('plan shows the clone for blue-green and clone-back with staging in a database of its own', () => {
    const prod = { database: 'analytics', schema: 'marts' };
    const owner2 = { project: 'jaffle_shop', env: 'prod', deployId: '<DEPLOY_ID>' };
    expect(
      sql.planStagingClone('blue-green', prod, { database: 'analytics_staging', schema: 'marts' }, owner2),
    ).toEqual([
      `CREATE DATABASE "ANALYTICS_STAGING" CLONE "ANALYTICS" COMMENT = 'dbt-deploy staging: project=jaffle_shop env=prod deploy=<DEPLOY_ID>'`,
    ]);
    // Staging schemas in prod's database, or other strategies: no database clone.
    expect(
      sql.planStagingClone('blue-green', prod, { database: 'analytics', schema: 'marts_stg' }, owner2),
    ).toEqual([]);
    expect(
      sql.planStagingClone('wac', prod, { database: 'analytics_staging', schema: 'marts' }, owner2),
    ).toEqual([]);
  });
});

describe('Snowflake cut-over statements', () => {
  it('swaps databases in one statement, then keeps the old prod under the backup name', () => {
    expect(sql.swapDatabases('analytics', 'analytics_staging', 'DBT_DEPLOY_BACKUP__P1_ABC')).toEqual([
      // sql-reference/sql/alter-database: ALTER DATABASE [ IF EXISTS ] <name> SWAP WITH <target_db_name>
      'ALTER DATABASE "ANALYTICS" SWAP WITH "ANALYTICS_STAGING"',
      // sql-reference/sql/alter-database: ALTER DATABASE [ IF EXISTS ] <name> RENAME TO <new_db_name>
      'ALTER DATABASE "ANALYTICS_STAGING" RENAME TO "DBT_DEPLOY_BACKUP__P1_ABC"',
    ]);
    expect(sql.unswapDatabases('analytics', 'analytics_staging', 'DBT_DEPLOY_BACKUP__P1_ABC')).toEqual([
      // sql-reference/sql/alter-database (SWAP WITH): swapping again is the undo.
      'ALTER DATABASE "ANALYTICS" SWAP WITH "DBT_DEPLOY_BACKUP__P1_ABC"',
      'ALTER DATABASE "DBT_DEPLOY_BACKUP__P1_ABC" RENAME TO "ANALYTICS_STAGING"',
    ]);
  });

  it('swaps schemas one pair at a time when staging shares the prod database', () => {
    const pairs = [{ prod: 'MARTS', staging: 'MARTS_STG', backup: 'BK__1' }];
    expect(sql.swapSchemas('analytics', pairs)).toEqual([
      // sql-reference/sql/alter-schema: ALTER SCHEMA [ IF EXISTS ] <name> SWAP WITH <target_schema_name>
      'ALTER SCHEMA "ANALYTICS"."MARTS" SWAP WITH "ANALYTICS"."MARTS_STG"',
      // sql-reference/sql/alter-schema: ALTER SCHEMA [ IF EXISTS ] <name> RENAME TO <new_schema_name>
      'ALTER SCHEMA "ANALYTICS"."MARTS_STG" RENAME TO "ANALYTICS"."BK__1"',
    ]);
    expect(sql.unswapSchemas('analytics', pairs)).toEqual([
      'ALTER SCHEMA "ANALYTICS"."MARTS" SWAP WITH "ANALYTICS"."BK__1"',
      'ALTER SCHEMA "ANALYTICS"."BK__1" RENAME TO "ANALYTICS"."MARTS_STG"',
    ]);
  });

  it("re-applies prod's grants and future grants to staging, ownership and non-role grantees left out", () => {
    // sql-reference/sql/show-grants: SHOW GRANTS ON <object_type> <object_name>
    expect(sql.showGrants('DATABASE', '"ANALYTICS"')).toBe('SHOW GRANTS ON DATABASE "ANALYTICS"');
    // sql-reference/sql/show-grants: SHOW FUTURE GRANTS IN { DATABASE | SCHEMA } <name>
    expect(sql.showFutureGrants('SCHEMA', '"ANALYTICS"."MARTS"')).toBe(
      'SHOW FUTURE GRANTS IN SCHEMA "ANALYTICS"."MARTS"',
    );
    const grant = (privilege: string, grantee: string, grantedTo = 'ROLE', option = 'false') => ({
      privilege,
      granted_on: 'DATABASE',
      granted_to: grantedTo,
      grantee_name: grantee,
      grant_option: option,
    });
    expect(
      sql.copyGrants(
        [
          grant('OWNERSHIP', 'DEPLOYER'),
          grant('USAGE', 'REPORTER'),
          grant('MONITOR', 'ADMIN', 'ROLE', 'true'),
          grant('USAGE', 'PARTNER', 'SHARE'),
        ],
        'DATABASE',
        '"ANALYTICS_STAGING"',
      ),
    ).toEqual([
      // sql-reference/sql/grant-privilege: GRANT <privileges> ON DATABASE <name> TO ROLE <role> [ WITH GRANT OPTION ]
      'GRANT USAGE ON DATABASE "ANALYTICS_STAGING" TO ROLE "REPORTER"',
      'GRANT MONITOR ON DATABASE "ANALYTICS_STAGING" TO ROLE "ADMIN" WITH GRANT OPTION',
    ]);
    expect(
      sql.copyFutureGrants(
        [
          {
            privilege: 'SELECT',
            grant_on: 'TABLE',
            grant_to: 'ROLE',
            grantee_name: 'REPORTER',
            grant_option: 'false',
          },
          {
            privilege: 'SELECT',
            grant_on: 'VIEW',
            grant_to: 'ROLE',
            grantee_name: 'REPORTER',
            grant_option: 'false',
          },
        ],
        'DATABASE',
        '"ANALYTICS_STAGING"',
      ),
    ).toEqual([
      // sql-reference/sql/grant-privilege (future objects): GRANT <priv> ON FUTURE TABLES IN DATABASE <db> TO ROLE <role>
      'GRANT SELECT ON FUTURE TABLES IN DATABASE "ANALYTICS_STAGING" TO ROLE "REPORTER"',
      'GRANT SELECT ON FUTURE VIEWS IN DATABASE "ANALYTICS_STAGING" TO ROLE "REPORTER"',
    ]);
  });

  it("re-creates staging's views from the SQL compiled for prod, keeping their grants", () => {
    // sql-reference/sql/create-view: CREATE [ OR REPLACE ] VIEW <name> [ COPY GRANTS ] AS <select_statement>
    expect(
      sql.repointView(
        rel('analytics_staging', 'marts', 'order_count'),
        'select count(*) from analytics.marts.orders;',
      ),
    ).toBe(
      'CREATE OR REPLACE VIEW "ANALYTICS_STAGING"."MARTS"."ORDER_COUNT" COPY GRANTS AS select count(*) from analytics.marts.orders',
    );
  });

  it('decides between a database swap and schema swaps from where staging lives', () => {
    const loc = (database: string, schema: string) => ({ database, schema });
    expect(swapPlan([{ prod: loc('analytics', 'marts'), staging: loc('analytics_stg', 'marts') }])).toEqual({
      unit: 'database',
      prod: 'ANALYTICS',
      staging: 'ANALYTICS_STG',
    });
    expect(swapPlan([{ prod: loc('analytics', 'marts'), staging: loc('analytics', 'marts_stg') }])).toEqual({
      unit: 'schema',
      database: 'ANALYTICS',
    });
    expect(() => swapPlan([{ prod: loc('a', 'marts'), staging: loc('b', 'other') }])).toThrow(
      /keeps schema names/,
    );
  });
});

describe('Snowflake publish, backup and restore statements', () => {
  const from = rel('analytics_staging', 'marts', 'orders');
  const to = rel('analytics', 'marts', 'orders');

  it('publishes a table as one atomic zero-copy clone that keeps prod grants, and prod stays permanent', () => {
    // sql-reference/sql/create-clone: CREATE [ OR REPLACE ] TABLE <name> CLONE <source_table> ... [ COPY GRANTS ]
    expect(sql.replaceTable(from, to, { to: 'table', fromTransient: false, toTransient: false })).toEqual([
      'CREATE OR REPLACE TABLE "ANALYTICS"."MARTS"."ORDERS" CLONE "ANALYTICS_STAGING"."MARTS"."ORDERS" COPY GRANTS',
    ]);
    // sql-reference/sql/create-clone (transient): a clone of a transient table is transient.
    expect(sql.replaceTable(from, to, { to: 'absent', fromTransient: true, toTransient: undefined })).toEqual(
      [
        'CREATE OR REPLACE TRANSIENT TABLE "ANALYTICS"."MARTS"."ORDERS" CLONE "ANALYTICS_STAGING"."MARTS"."ORDERS" COPY GRANTS',
      ],
    );
    // sql-reference/sql/create-table (CREATE TABLE … AS SELECT): a transient table cannot be cloned
    // into a permanent one, so a permanent prod table gets the rows by copy.
    expect(sql.replaceTable(from, to, { to: 'table', fromTransient: true, toTransient: false })).toEqual([
      'CREATE OR REPLACE TABLE "ANALYTICS"."MARTS"."ORDERS" COPY GRANTS AS SELECT * FROM "ANALYTICS_STAGING"."MARTS"."ORDERS"',
    ]);
    // sql-reference/sql/drop-view: a model that was a view loses it first.
    expect(sql.replaceTable(from, to, { to: 'view', fromTransient: false, toTransient: undefined })[0]).toBe(
      'DROP VIEW "ANALYTICS"."MARTS"."ORDERS"',
    );
  });

  it('keeps a backup as zero-copy clones with the shared manifest, and drops only that location', () => {
    const location = { database: 'analytics', schema: backupLocationName('prod-1') };
    // sql-reference/sql/create-schema
    expect(sql.createSchema(location)).toBe(`CREATE SCHEMA "ANALYTICS"."${location.schema.toUpperCase()}"`);
    // sql-reference/sql/create-clone: CREATE TABLE <name> CLONE <source_table>
    expect(sql.cloneIntoBackup(to, { ...location, identifier: 't0__orders' })).toBe(
      `CREATE TABLE "ANALYTICS"."${location.schema.toUpperCase()}"."T0__ORDERS" CLONE "ANALYTICS"."MARTS"."ORDERS"`,
    );
    const manifest = manifestStatements(
      snowflakeDialect,
      location,
      { deployId: 'prod-1', env: 'prod', operation: 'deploy', createdAt: '2026-11-30T00:00:00Z' },
      [
        {
          entry: { prod: to, kind: 'table', copy: { ...location, identifier: 't0__orders' } },
          viewSql: null,
        },
      ],
    );
    // sql-reference/sql/comment: COMMENT [ IF EXISTS ] ON <object_type> <object_name> IS '<string_literal>'
    expect(manifest[1]).toMatch(
      /^COMMENT ON TABLE "ANALYTICS"\."DBT_DEPLOY_BACKUP__PROD_1_[0-9A-F]{10}"\."_DBT_DEPLOY_BACKUP" IS '\{"deployId":"prod-1"/,
    );
    // sql-reference/sql/drop-schema: DROP SCHEMA [ IF EXISTS ] <name> [ CASCADE | RESTRICT ]
    expect(sql.dropBackup(location)).toEqual([
      `DROP SCHEMA IF EXISTS "ANALYTICS"."${location.schema.toUpperCase()}" CASCADE`,
    ]);
    // sql-reference/sql/drop-database: a database swap's backup is the old prod database itself.
    expect(sql.dropBackup(location, 'DBT_DEPLOY_BACKUP__PROD_1_X')).toEqual([
      'DROP DATABASE IF EXISTS "DBT_DEPLOY_BACKUP__PROD_1_X"',
    ]);
  });

  it('restores, verifies and falls back to time travel with the documented forms', () => {
    // sql-reference/sql/create-view: a backed-up view is put back from its recorded CREATE text; a
    // relation absent before the deploy is dropped (sql-reference/sql/drop-table).
    expect(sql.dropRelation(to, 'table')).toEqual(['DROP TABLE IF EXISTS "ANALYTICS"."MARTS"."ORDERS"']);
    expect(sql.dropRelation(to, 'absent')).toEqual([]);
    // sql-reference/constructs/at-before: CREATE TABLE … CLONE … AT( TIMESTAMP => <timestamp> )
    expect(sql.timeTravelClone(to, rel('analytics', 'marts', 'orders_before'), '2026-11-30 10:00:00')).toBe(
      `CREATE TABLE "ANALYTICS"."MARTS"."ORDERS_BEFORE" CLONE "ANALYTICS"."MARTS"."ORDERS" AT(TIMESTAMP => '2026-11-30 10:00:00'::TIMESTAMP_LTZ)`,
    );
    // sql-reference/functions/hash_agg: HASH_AGG(*) is order-independent over all rows.
    expect(sql.fingerprint(to)).toBe(
      'SELECT COUNT(*) AS ROW_COUNT, TO_VARCHAR(HASH_AGG(*)) AS CHECKSUM FROM "ANALYTICS"."MARTS"."ORDERS"',
    );
    // sql-reference/sql/show-schemas: SHOW SCHEMAS [ LIKE '<pattern>' ] IN ACCOUNT
    expect(sql.SHOW_SCHEMAS_LIKE_BACKUP).toBe("SHOW SCHEMAS LIKE 'DBT_DEPLOY_BACKUP__%' IN ACCOUNT");
  });
});
