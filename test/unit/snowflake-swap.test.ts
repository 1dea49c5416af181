/**
 * The order of the database swap as the adapter sends it, over a scripted session: a stand-in that
 * answers catalog queries the way Snowflake would and records every statement (no emulator runs SWAP,
 * FACTS §5). It checks the sequence the docs require: grants and views before the swap, the manifest in
 * prod just before it, the swap as the only statement readers see, and a retry that sends no second swap;
 * and the clone that makes staging at a deploy's start, with a retry that does not clone twice.
 */
import { describe, expect, it } from 'vitest';
import { SnowflakeAdapter } from '../../activities/warehouses/snowflake/adapter.js';
import { backupLocationName } from '../../activities/warehouses/shared/backup-manifest.js';

type Row = Record<string, unknown>;

/** Answers by statement shape; `swapped` flips what the catalog shows once the swap was sent. */
function scriptedSession(
  options: { alreadySwapped?: boolean; prodSchemas?: string[]; stagingComment?: string } = {},
) {
  const sent: string[] = [];
  let swapped = options.alreadySwapped ?? false;
  const manifestSchema = backupLocationName('prod-7').toUpperCase();
  const answer = (sql: string): Row[] => {
    if (/^ALTER DATABASE "ANALYTICS" SWAP WITH/.test(sql)) swapped = true;
    if (
      /SELECT comment FROM "(DBT_DEPLOY_BACKUP__[^"]+|ANALYTICS_STAGING)"\.information_schema\.tables/.test(
        sql,
      )
    )
      return swapped && sql.includes(manifestSchema)
        ? [
            {
              comment: JSON.stringify({
                deployId: 'prod-7',
                env: 'prod',
                operation: 'deploy',
                createdAt: 't',
              }),
            },
          ]
        : [];
    if (/^SELECT \* FROM .*_DBT_DEPLOY_BACKUP/.test(sql)) return [];
    if (/FROM "ANALYTICS"\.information_schema\.schemata$/.test(sql))
      return ['INFORMATION_SCHEMA', 'MARTS', ...(options.prodSchemas ?? [])].map((schema_name) => ({
        schema_name,
      }));
    if (/information_schema\.databases WHERE database_name = 'ANALYTICS_STAGING'$/.test(sql))
      return options.stagingComment === undefined
        ? []
        : [{ database_name: 'ANALYTICS_STAGING', comment: options.stagingComment }];
    if (/FROM "ANALYTICS_STAGING"\.information_schema\.schemata$/.test(sql))
      return [{ schema_name: 'INFORMATION_SCHEMA' }, { schema_name: 'MARTS' }];
    if (/information_schema\.schemata WHERE/.test(sql)) return [{ schema_name: 'MARTS' }];
    if (/^SHOW GRANTS ON DATABASE "ANALYTICS"$/.test(sql))
      return [
        {
          privilege: 'USAGE',
          granted_on: 'DATABASE',
          granted_to: 'ROLE',
          grantee_name: 'REPORTER',
          grant_option: 'false',
        },
      ];
    if (/^SHOW FUTURE GRANTS IN SCHEMA "ANALYTICS"\."MARTS"$/.test(sql))
      return [
        {
          privilege: 'SELECT',
          grant_on: 'TABLE',
          grant_to: 'ROLE',
          grantee_name: 'REPORTER',
          grant_option: 'false',
        },
      ];
    if (/^SHOW/.test(sql)) return [];
    if (/FROM "ANALYTICS"\.information_schema\.tables WHERE table_schema = 'MARTS'/.test(sql))
      return [{ table_name: 'ORDERS', table_type: 'BASE TABLE', is_transient: 'NO' }];
    return [];
  };
  return {
    sent,
    session: {
      execute: async (sql: string) => {
        sent.push(sql);
        return answer(sql);
      },
      close: async () => {},
    },
  };
}

const swaps = [
  {
    prod: { database: 'analytics', schema: 'marts' },
    staging: { database: 'analytics_staging', schema: 'marts' },
  },
];
const label = { env: 'prod', createdAt: '2026-11-30T12:00:00Z' };
const views = [
  {
    to: { database: 'analytics_staging', schema: 'marts', identifier: 'order_count' },
    sql: 'select count(*) from analytics.marts.orders',
  },
];

describe('Snowflake database swap, in order', () => {
  it('copies grants, re-points views and writes the manifest before the one swap, then renames the old prod', async () => {
    const { sent, session } = scriptedSession();
    const adapter = SnowflakeAdapter.over(session, 'analytics');
    const backup = await adapter.swapLocations('prod-7', swaps, label, views);
    const changes = sent.filter((s) => !/^(SELECT|SHOW)/.test(s));
    const backupDb = backupLocationName('prod-7').toUpperCase();
    const at = (prefix: string) => changes.findIndex((s) => s.startsWith(prefix));
    expect(changes).toContain('GRANT USAGE ON DATABASE "ANALYTICS_STAGING" TO ROLE "REPORTER"');
    expect(changes).toContain(
      'GRANT SELECT ON FUTURE TABLES IN SCHEMA "ANALYTICS_STAGING"."MARTS" TO ROLE "REPORTER"',
    );
    expect(at('GRANT')).toBeLessThan(
      at(
        'CREATE OR REPLACE VIEW "ANALYTICS_STAGING"."MARTS"."ORDER_COUNT" COPY GRANTS AS select count(*) from analytics.marts.orders',
      ),
    );
    expect(at('CREATE OR REPLACE VIEW')).toBeLessThan(at(`CREATE SCHEMA "ANALYTICS"."${backupDb}"`));
    expect(at('COMMENT ON TABLE')).toBeLessThan(at('ALTER DATABASE'));
    expect(changes.slice(-2)).toEqual([
      'ALTER DATABASE "ANALYTICS" SWAP WITH "ANALYTICS_STAGING"',
      `ALTER DATABASE "ANALYTICS_STAGING" RENAME TO "${backupDb}"`,
    ]);
    expect(backup.swapped).toEqual([
      { prod: 'ANALYTICS', staging: 'ANALYTICS_STAGING', backup: backupDb, unit: 'database' },
    ]);
    expect(backup.entries).toEqual([
      {
        prod: { database: 'ANALYTICS', schema: 'MARTS', identifier: 'ORDERS' },
        kind: 'table',
        copy: { database: backupDb, schema: 'MARTS', identifier: 'ORDERS' },
      },
    ]);
  });

  it('a retried step that finds its manifest in the backup database sends no second swap', async () => {
    const { sent, session } = scriptedSession({ alreadySwapped: true });
    const adapter = SnowflakeAdapter.over(session, 'analytics');
    const backup = await adapter.swapLocations('prod-7', swaps, label, views);
    expect(sent.filter((s) => s.startsWith('ALTER DATABASE'))).toEqual([]);
    expect(backup.deployId).toBe('prod-7');
  });
});

describe('Snowflake staging cloned from prod at the start', () => {
  const owner = { project: 'jaffle_shop', env: 'prod', deployId: 'prod-7' };
  const changesOf = (sent: string[]) => sent.filter((s) => !/^(SELECT|SHOW)/.test(s));

  it("clones prod's database, drops its cloned backups, then gives it prod's grants", async () => {
    const { sent, session } = scriptedSession({ prodSchemas: ['DBT_DEPLOY_BACKUP__PROD_6_AB12'] });
    const adapter = SnowflakeAdapter.over(session, 'analytics');
    const clone = await adapter.cloneBuildDatabase(swaps, owner, { wholeDatabase: true });
    expect(clone).toEqual({ prod: 'ANALYTICS', staging: 'ANALYTICS_STAGING', how: 'cloned' });
    expect(changesOf(sent)).toEqual([
      `CREATE DATABASE "ANALYTICS_STAGING" CLONE "ANALYTICS" COMMENT = 'dbt-deploy staging: project=jaffle_shop env=prod deploy=prod-7'`,
      'DROP SCHEMA IF EXISTS "ANALYTICS_STAGING"."DBT_DEPLOY_BACKUP__PROD_6_AB12" CASCADE',
      'GRANT USAGE ON DATABASE "ANALYTICS_STAGING" TO ROLE "REPORTER"',
      'GRANT SELECT ON FUTURE TABLES IN SCHEMA "ANALYTICS_STAGING"."MARTS" TO ROLE "REPORTER"',
    ]);
  });

  it('a retried step finds its own clone: no second clone, the grants again (GRANT is idempotent)', async () => {
    const { sent, session } = scriptedSession({
      stagingComment: 'dbt-deploy staging: project=jaffle_shop env=prod deploy=prod-7',
    });
    const adapter = SnowflakeAdapter.over(session, 'analytics');
    const clone = await adapter.cloneBuildDatabase(swaps, owner, { wholeDatabase: true });
    expect(clone?.how).toBe('kept');
    expect(changesOf(sent).filter((s) => /^(CREATE|DROP)/.test(s))).toEqual([]);
  });

  it('refuses before any change a staging database another environment holds, or prod schemas the project does not build', async () => {
    const foreign = scriptedSession({
      stagingComment: 'dbt-deploy staging: project=jaffle_shop env=eu deploy=eu-1',
    });
    await expect(
      SnowflakeAdapter.over(foreign.session, 'analytics').cloneBuildDatabase(swaps, owner, {
        wholeDatabase: true,
      }),
    ).rejects.toThrow(
      /^staging database ANALYTICS_STAGING exists and is not this environment's dbt-deploy staging/,
    );
    expect(changesOf(foreign.sent)).toEqual([]);

    const sources = scriptedSession({ prodSchemas: ['RAW'] });
    await expect(
      SnowflakeAdapter.over(sources.session, 'analytics').cloneBuildDatabase(swaps, owner, {
        wholeDatabase: true,
      }),
    ).rejects.toThrow(/a database swap would take schemas RAW out of prod database ANALYTICS/);
    expect(changesOf(sources.sent)).toEqual([]);
    // clone-back publishes table by table: prod's other schemas may come along into its staging.
    const cloneBack = scriptedSession({ prodSchemas: ['RAW'] });
    const clone = await SnowflakeAdapter.over(cloneBack.session, 'analytics').cloneBuildDatabase(
      swaps,
      owner,
      {
        wholeDatabase: false,
      },
    );
    expect(clone?.how).toBe('cloned');
  });

  it('staging schemas in the prod database are not cloned here: the sync copies table by table', async () => {
    const { sent, session } = scriptedSession();
    const sameDatabase = [
      {
        prod: { database: 'analytics', schema: 'marts' },
        staging: { database: 'analytics', schema: 'marts_stg' },
      },
    ];
    expect(
      await SnowflakeAdapter.over(session, 'analytics').cloneBuildDatabase(sameDatabase, owner, {
        wholeDatabase: true,
      }),
    ).toBeUndefined();
    expect(sent).toEqual([]);
  });
});
