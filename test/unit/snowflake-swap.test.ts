/**
 * The order of the database swap as the adapter sends it, over a scripted session: a stand-in that
 * answers catalog queries the way Snowflake would and records every statement (no emulator runs SWAP,
 * FACTS §5). It checks the sequence the docs require: grants and views before the swap, the manifest in
 * prod just before it, the swap as the only statement readers see, and a retry that sends no second swap.
 */
import { describe, expect, it } from 'vitest';
import { SnowflakeAdapter } from '../../activities/warehouses/snowflake/adapter.js';
import { backupLocationName } from '../../activities/warehouses/shared/backup-manifest.js';

type Row = Record<string, unknown>;

/** Answers by statement shape; `swapped` flips what the catalog shows once the swap was sent. */
function scriptedSession(options: { alreadySwapped?: boolean } = {}) {
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
      return [{ schema_name: 'INFORMATION_SCHEMA' }, { schema_name: 'MARTS' }];
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
