/**
 * BigQuery's statements and jobs, as data, against Google's documentation (each expectation names
 * its page), and where the emulator is planned for differently, why. Also the profile keys read the
 * way dbt-bigquery reads them, and the strategies BigQuery refuses. Nothing here touches a warehouse.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectionFor, ProfileError } from '../../activities/profiles.js';
import {
  type BigQueryConnection,
  dbtEnvironment,
  isEmulator,
} from '../../activities/warehouses/bigquery/connection.js';
import {
  chooseMethod,
  CLONE_ABOVE_BYTES,
  dropJobs,
  fingerprintSql,
  jobId,
  jobLabels,
  propertiesPatch,
  publishTableJobs,
  restoreTableJobs,
  sameLayout,
  snapshotJobs,
  timeTravelRestoreSql,
  viewJobs,
} from '../../activities/warehouses/bigquery/plans.js';
import { CAPABILITIES } from '../../activities/warehouses/capabilities.js';
import { planDeploy, StrategyNotSupported } from '../../workflows/strategies/index.js';
import { deployInput } from './deploy-input.js';

const staging = { database: 'acme-data', schema: 'analytics_staging', identifier: 'fct_orders' };
const prod = { database: 'acme-data', schema: 'analytics', identifier: 'fct_orders' };
const snapshot = { database: 'acme-data', schema: 'dbt_deploy_backup__prod_1', identifier: 't0__fct_orders' };
const ref = (r: typeof prod) => ({ projectId: r.database, datasetId: r.schema, tableId: r.identifier });
const absent = { kind: 'absent', sameSchema: false, sameLayout: false } as const;
const sameTable = { kind: 'table', sameSchema: true, sameLayout: true } as const;
const changedTable = { kind: 'table', sameSchema: false, sameLayout: true } as const;
/** Partitioned or clustered otherwise than the table published onto it. */
const relaidTable = { kind: 'table', sameSchema: true, sameLayout: false } as const;
const dropProd = { kind: 'query', sql: 'DROP TABLE IF EXISTS `acme-data`.`analytics`.`fct_orders`' };
// https://cloud.google.com/bigquery/docs/managing-tables#copy-table
// (jobs.insert configuration.copy; WRITE_TRUNCATE overwrites data and schema)
const copyToProd = {
  kind: 'copy',
  operationType: 'COPY',
  source: ref(staging),
  destination: ref(prod),
  writeDisposition: 'WRITE_TRUNCATE',
  createDisposition: 'CREATE_IF_NEEDED',
};

describe('publishing a table', () => {
  it('by copy job with WRITE_TRUNCATE: atomic for the table, schema replaced', () => {
    const expected = copyToProd;
    expect(publishTableJobs(staging, prod, changedTable, 'copy', 'bigquery')).toEqual([expected]);
    expect(publishTableJobs(staging, prod, absent, 'copy', 'bigquery')).toEqual([expected]);
    // The emulator's WRITE_TRUNCATE keeps the old schema (HTTP 500 on another one): it drops first.
    expect(publishTableJobs(staging, prod, changedTable, 'copy', 'emulator')).toEqual([
      { kind: 'query', sql: 'DROP TABLE IF EXISTS `acme-data`.`analytics`.`fct_orders`' },
      expected,
    ]);
    expect(publishTableJobs(staging, prod, sameTable, 'copy', 'emulator')).toEqual([expected]);
  });

  it('by clone: DROP then CREATE TABLE … CLONE, since CLONE cannot replace a table', () => {
    // https://cloud.google.com/bigquery/docs/table-clones-create
    // (CREATE TABLE destination CLONE source; OR REPLACE is not supported with CLONE)
    expect(publishTableJobs(staging, prod, sameTable, 'clone', 'bigquery')).toEqual([
      { kind: 'query', sql: 'DROP TABLE IF EXISTS `acme-data`.`analytics`.`fct_orders`' },
      {
        kind: 'query',
        sql: 'CREATE TABLE `acme-data`.`analytics`.`fct_orders` CLONE `acme-data`.`analytics_staging`.`fct_orders`',
      },
    ]);
  });

  it('a view standing where a table lands is dropped first', () => {
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language#drop_view_statement
    const jobs = publishTableJobs(
      staging,
      prod,
      { kind: 'view', sameSchema: false, sameLayout: false },
      'copy',
      'bigquery',
    );
    expect(jobs[0]).toEqual({
      kind: 'query',
      sql: 'DROP VIEW IF EXISTS `acme-data`.`analytics`.`fct_orders`',
    });
    expect(jobs).toHaveLength(2);
  });

  it('copies below 10 GiB (atomic), clones from 10 GiB up (zero-copy)', () => {
    expect(CLONE_ABOVE_BYTES).toBe(10 * 1024 ** 3);
    expect(chooseMethod(0)).toBe('copy');
    expect(chooseMethod(CLONE_ABOVE_BYTES - 1)).toBe('copy');
    expect(chooseMethod(CLONE_ABOVE_BYTES)).toBe('clone');
    expect(chooseMethod(5, 1)).toBe('clone');
  });
});

describe('what a published or restored table keeps', () => {
  const copy = copyToProd;
  const daily = {
    timePartitioning: { type: 'DAY', field: 'ordered_at' },
    clustering: { fields: ['customer_id'] },
  };

  it('column descriptions and policy tags: the copy job takes the source schema (WRITE_TRUNCATE, not WRITE_TRUNCATE_DATA)', () => {
    // https://cloud.google.com/bigquery/docs/reference/auditlogs/rest/Shared.Types/BigQueryAuditMetadata.WriteDisposition
    // (WRITE_TRUNCATE need not keep the destination's schema, column-level policy or column
    // descriptions; WRITE_TRUNCATE_DATA keeps them, which would leave prod's old ones in place). The clone carries the base table's schema:
    // https://cloud.google.com/bigquery/docs/table-clones-intro
    expect(publishTableJobs(staging, prod, sameTable, 'copy', 'bigquery')).toEqual([copy]);
    expect(publishTableJobs(staging, prod, sameTable, 'clone', 'bigquery').at(-1)).toEqual({
      kind: 'query',
      sql: 'CREATE TABLE `acme-data`.`analytics`.`fct_orders` CLONE `acme-data`.`analytics_staging`.`fct_orders`',
    });
  });

  it('partitioning and clustering: a table laid out otherwise is dropped before the copy creates it anew', () => {
    // https://cloud.google.com/bigquery/docs/managing-partitioned-tables ("Copy partitioned tables":
    // onto a table partitioned otherwise the copy fails; onto an unpartitioned one it stays
    // unpartitioned). A new destination gets the source's partitioning and clustering, as dbt-bigquery
    // drops a table its `is_replaceable` refuses.
    expect(publishTableJobs(staging, prod, relaidTable, 'copy', 'bigquery')).toEqual([dropProd, copy]);
    expect(publishTableJobs(staging, prod, relaidTable, 'copy', 'emulator')).toEqual([dropProd, copy]);
    expect(publishTableJobs(staging, prod, sameTable, 'copy', 'bigquery')).toEqual([copy]);
    // https://cloud.google.com/bigquery/docs/table-snapshots-restore: the restored table is the snapshot's.
    expect(restoreTableJobs(snapshot, prod, relaidTable, 'bigquery')[0]).toEqual(dropProd);
    // Compared as dbt-bigquery compares them: partition column (any case) and granularity, clustering in order.
    expect(sameLayout(daily, { ...daily, timePartitioning: { type: 'DAY', field: 'ORDERED_AT' } })).toBe(
      true,
    );
    expect(sameLayout(daily, { ...daily, timePartitioning: { type: 'MONTH', field: 'ordered_at' } })).toBe(
      false,
    );
    expect(sameLayout(daily, { ...daily, clustering: { fields: ['status'] } })).toBe(false);
    expect(sameLayout(daily, {})).toBe(false);
    expect(sameLayout({}, { labels: { team: 'x' } })).toBe(true);
  });

  it('description and labels: set from the source by tables.patch, a label prod has beyond it removed', () => {
    // https://cloud.google.com/bigquery/docs/reference/rest/v2/tables/patch (only the fields sent
    // change); https://cloud.google.com/bigquery/docs/deleting-labels#deleting_table_labels (a label
    // set to null in tables.patch is deleted).
    const source = { description: 'One row per order.', labels: { team: 'finance' } };
    const before = { description: 'old', labels: { team: 'sales', owner: 'ana' } };
    expect(propertiesPatch(source, before, 'bigquery')).toEqual({
      description: 'One row per order.',
      labels: { owner: null, team: 'finance' },
    });
    // A description the model no longer has is cleared.
    expect(propertiesPatch({}, { description: 'old' }, 'bigquery')).toEqual({ description: null });
    expect(propertiesPatch({}, before, 'bigquery')).toEqual({
      description: null,
      labels: { team: null, owner: null },
    });
    expect(propertiesPatch({}, undefined, 'bigquery')).toBeUndefined();
    expect(propertiesPatch({ labels: {} }, { labels: {} }, 'bigquery')).toBeUndefined();
    // The emulator replaces the whole map on a patch and fails on a null label: the source's labels.
    expect(propertiesPatch(source, before, 'emulator')).toEqual(source);
    expect(propertiesPatch({}, before, 'emulator')).toEqual({ description: null, labels: {} });
  });
});

describe('backups and restore', () => {
  it('snapshots a prod table, read-only, expiring by itself', () => {
    // https://cloud.google.com/bigquery/docs/table-snapshots-create#create_a_table_snapshot
    // (CREATE SNAPSHOT TABLE … CLONE … OPTIONS(expiration_timestamp = …))
    expect(snapshotJobs(prod, snapshot, '2027-03-01T10:00:00.000Z', 'bigquery')).toEqual([
      {
        kind: 'query',
        sql:
          'CREATE SNAPSHOT TABLE `acme-data`.`dbt_deploy_backup__prod_1`.`t0__fct_orders` CLONE `acme-data`.`analytics`.`fct_orders` ' +
          "OPTIONS (expiration_timestamp = TIMESTAMP '2027-03-01T10:00:00.000Z')",
      },
    ]);
    // The emulator does not parse OPTIONS on a snapshot (and would ignore the expiration).
    expect(snapshotJobs(prod, snapshot, '2027-03-01T10:00:00.000Z', 'emulator')).toEqual([
      {
        kind: 'query',
        sql: 'CREATE SNAPSHOT TABLE `acme-data`.`dbt_deploy_backup__prod_1`.`t0__fct_orders` CLONE `acme-data`.`analytics`.`fct_orders`',
      },
    ]);
  });

  it('restores a table by a RESTORE copy job that overwrites it', () => {
    // https://cloud.google.com/bigquery/docs/table-snapshots-restore
    // (copy job operationType RESTORE; WRITE_TRUNCATE to overwrite an existing table)
    const restore = {
      kind: 'copy',
      operationType: 'RESTORE',
      source: ref(snapshot),
      destination: ref(prod),
      writeDisposition: 'WRITE_TRUNCATE',
      createDisposition: 'CREATE_IF_NEEDED',
    };
    expect(restoreTableJobs(snapshot, prod, changedTable, 'bigquery')).toEqual([restore]);
    expect(restoreTableJobs(snapshot, prod, changedTable, 'emulator')).toEqual([
      { kind: 'query', sql: 'DROP TABLE IF EXISTS `acme-data`.`analytics`.`fct_orders`' },
      restore,
    ]);
  });

  it('names time travel as the fallback within its window', () => {
    // https://cloud.google.com/bigquery/docs/access-historical-data (FOR SYSTEM_TIME AS OF); the
    // emulator reads the live table after CREATE OR REPLACE, so this is never run against it.
    expect(timeTravelRestoreSql(prod, '2026-11-30T10:00:00Z')).toBe(
      'CREATE OR REPLACE TABLE `acme-data`.`analytics`.`fct_orders` AS SELECT * FROM `acme-data`.`analytics`.`fct_orders` ' +
        "FOR SYSTEM_TIME AS OF TIMESTAMP '2026-11-30T10:00:00Z'",
    );
  });
});

describe('views, drops, fingerprints', () => {
  const view = { ...prod, identifier: 'customer_revenue' };

  it('re-creates a view from SQL compiled for prod, dropping a table in its way', () => {
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language#create_view_statement
    const sql = 'select 1 as x from `acme-data`.`analytics`.`fct_orders`';
    expect(viewJobs(view, sql, 'table')).toEqual([
      { kind: 'query', sql: 'DROP TABLE IF EXISTS `acme-data`.`analytics`.`customer_revenue`' },
      {
        kind: 'query',
        sql: `CREATE OR REPLACE VIEW \`acme-data\`.\`analytics\`.\`customer_revenue\` AS ${sql}`,
      },
    ]);
    expect(viewJobs(view, sql, 'view')).toHaveLength(1);
  });

  it('drops by kind, and nothing that is absent', () => {
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language#drop_table_statement
    expect(dropJobs(prod, 'table')).toEqual([
      { kind: 'query', sql: 'DROP TABLE IF EXISTS `acme-data`.`analytics`.`fct_orders`' },
    ]);
    expect(dropJobs(prod, 'absent')).toEqual([]);
  });

  it('quotes every identifier, so a backquote in a name cannot end it', () => {
    expect(dropJobs({ ...prod, identifier: 'a`; DROP SCHEMA x; --' }, 'view')[0]).toEqual({
      kind: 'query',
      sql: 'DROP VIEW IF EXISTS `acme-data`.`analytics`.`a\\`; DROP SCHEMA x; --`',
    });
  });

  it('fingerprints with a BIGNUMERIC sum of row hashes (an INT64 sum overflows)', () => {
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/hash_functions#farm_fingerprint
    expect(fingerprintSql(prod)).toBe(
      'SELECT COUNT(*) AS row_count, CAST(COALESCE(SUM(CAST(FARM_FINGERPRINT(TO_JSON_STRING(r)) AS BIGNUMERIC)), 0) AS STRING) AS checksum ' +
        'FROM `acme-data`.`analytics`.`fct_orders` AS r',
    );
  });
});

describe('job labels and ids', () => {
  it('labels name the deploy and step in the characters labels allow', () => {
    // https://cloud.google.com/bigquery/docs/labels-intro#requirements (lowercase, digits, _ and -, ≤ 63)
    expect(jobLabels({ deployId: 'prod-20261130T101500-ab12', step: 'publishRelations' })).toEqual({
      dbt_deploy: 'prod-20261130t101500-ab12',
      dbt_deploy_step: 'publish_relations',
    });
  });

  it('ids come from the deploy, step, attempt and statement, the same on every retry of one statement', () => {
    // https://cloud.google.com/bigquery/docs/running-jobs#generate-jobid (letters, digits, _ and -)
    const tag = { deployId: 'prod-20261130T101500-ab12', step: 'publishRelations', attempt: '1a2b3c4d_7_2' };
    expect(jobId(tag, 3)).toBe('dbt_deploy_prod-20261130T101500-ab12_publishRelations_1a2b3c4d_7_2_3');
    expect(jobId(tag, 3)).toBe(jobId(tag, 3));
    expect(jobId({ ...tag, attempt: '1a2b3c4d_7_3' }, 3)).not.toBe(jobId(tag, 3));
  });
});

describe('a BigQuery profile target', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bq-profile-'));
  const write = (output: Record<string, unknown>) => {
    writeFileSync(
      join(dir, 'profiles.yml'),
      JSON.stringify({ p: { target: 'prod', outputs: { prod: { type: 'bigquery', ...output } } } }),
    );
    return () => connectionFor(dir, dir, 'p', 'prod');
  };

  it('reads what dbt-bigquery reads, env_var() included', () => {
    process.env['BQ_TEST_TOKEN'] = 'tok';
    const connection = write({
      method: 'oauth-secrets',
      token: "{{ env_var('BQ_TEST_TOKEN') }}",
      project: 'acme-data',
      schema: 'analytics',
      location: 'EU',
      execution_project: 'acme-billing',
      impersonate_service_account: 'deployer@acme-data.iam.gserviceaccount.com',
      job_execution_timeout_seconds: 600,
    })() as BigQueryConnection;
    expect(connection).toEqual({
      engine: 'bigquery',
      project: 'acme-data',
      executionProject: 'acme-billing',
      schema: 'analytics',
      location: 'EU',
      impersonateServiceAccount: 'deployer@acme-data.iam.gserviceaccount.com',
      jobTimeoutSeconds: 600,
      credentials: { method: 'oauth-secrets', token: 'tok' },
    });
    expect(isEmulator(connection)).toBe(false);
    expect(dbtEnvironment(connection)).toEqual({ METADATA_SERVER_DETECTION: 'none' });
  });

  it('only method oauth may use the metadata server; a loopback api_endpoint is an emulator', () => {
    const oauth = write({
      method: 'oauth',
      project: 'p1',
      dataset: 'd',
      api_endpoint: 'http://127.0.0.1:9050',
    })();
    expect(dbtEnvironment(oauth as never)).toEqual({});
    expect(isEmulator(oauth as never)).toBe(true);
    expect(isEmulator({ apiEndpoint: 'https://bigquery.googleapis.com' })).toBe(false);
  });

  it('refuses a target that cannot work with one line naming the key', () => {
    expect(write({ method: 'oauth', dataset: 'd' })).toThrow(
      new ProfileError('target "prod": a bigquery target needs `project`'),
    );
    expect(
      write({ method: 'service-account', project: 'p1', dataset: 'd', keyfile: 'missing.json' }),
    ).toThrow(`target "prod": \`keyfile\` ${join(dir, 'missing.json')} does not exist`);
    expect(write({ method: 'oauth-secrets', project: 'p1', dataset: 'd', refresh_token: 'r' })).toThrow(
      'target "prod": method oauth-secrets with `refresh_token` needs `client_id`',
    );
    expect(write({ method: 'password', project: 'p1', dataset: 'd' })).toThrow(
      'target "prod": `method` "password" is not one of oauth, service-account, service-account-json, oauth-secrets',
    );
  });
});

describe('strategies on BigQuery', () => {
  const input = deployInput({ engine: 'bigquery', targets: { prod: 'prod', staging: 'staging' } });

  it('refuses blue-green with the reason and the strategies that work', () => {
    expect(() => planDeploy({ ...input, strategy: 'blue-green' })).toThrow(
      new StrategyNotSupported(
        'strategy "blue-green" cannot run on bigquery: it can neither swap locations nor replace many relations in one transaction (strategies that work: clone-back, wap, wac, mirror)',
      ),
    );
  });

  it('auto picks wac, whose publish goes one table at a time', () => {
    const plan = planDeploy({ ...input, strategy: 'auto' });
    expect(plan.strategy).toBe('wac');
    expect(plan.rationale).toContain('auto chose wac');
    expect(plan.steps.find((s) => s.id === 'publish-tables')?.title).toContain('one table at a time');
    expect(CAPABILITIES.bigquery).toMatchObject({
      zeroCopyClone: true,
      atomicSwap: 'none',
      transactionalDdl: false,
    });
  });
});
