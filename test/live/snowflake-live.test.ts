/**
 * The live Snowflake suite: every strategy, a failing audit, a fault after the cut-over and rollback,
 * against a real account. Runs only when SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and SNOWFLAKE_PASSWORD (or
 * SNOWFLAKE_PRIVATE_KEY_PATH) are set, with SNOWFLAKE_ROLE and SNOWFLAKE_WAREHOUSE; otherwise every test
 * is reported as skipped, never as passed. It works in databases named `DBT_DEPLOY_LIVE_<random>` that
 * it creates and drops (`npm run test:snowflake-live`). blue-green and clone-back start from a
 * `CREATE DATABASE … CLONE` of prod: the first finds no staging database, later ones replace the one
 * an ended deploy left.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import snowflake from 'snowflake-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { EXAMPLE_DIR } from '../../examples/jaffle_shop/workspace.js';
import type { DeployResult } from '../../workflows/types.js';
import { startTestWorker, type TestWorker, withInjectedFault } from '../support/harness.js';

const env = process.env;
const credentials =
  env['SNOWFLAKE_ACCOUNT'] &&
  env['SNOWFLAKE_USER'] &&
  (env['SNOWFLAKE_PASSWORD'] || env['SNOWFLAKE_PRIVATE_KEY_PATH']);

describe.skipIf(!credentials)('live Snowflake', () => {
  const suffix = randomBytes(4).toString('hex').toUpperCase();
  const PROD = `DBT_DEPLOY_LIVE_${suffix}`;
  const STAGING = `${PROD}_STAGING`;
  let dir: string;
  let worker: TestWorker;
  let session: snowflake.Connection;

  const query = (sqlText: string) =>
    new Promise<Array<Record<string, unknown>>>((resolve, reject) =>
      session.execute({
        sqlText,
        complete: (e, _s, rows) => (e ? reject(e) : resolve((rows ?? []) as Array<Record<string, unknown>>)),
      }),
    );
  const auth = () =>
    env['SNOWFLAKE_PRIVATE_KEY_PATH']
      ? {
          private_key_path: "{{ env_var('SNOWFLAKE_PRIVATE_KEY_PATH') }}",
          ...(env['SNOWFLAKE_PRIVATE_KEY_PASSPHRASE']
            ? { private_key_passphrase: "{{ env_var('SNOWFLAKE_PRIVATE_KEY_PASSPHRASE') }}" }
            : {}),
        }
      : { password: "{{ env_var('SNOWFLAKE_PASSWORD') }}" };
  const target = (database: string, schema: string) => ({
    type: 'snowflake',
    account: "{{ env_var('SNOWFLAKE_ACCOUNT') }}",
    user: "{{ env_var('SNOWFLAKE_USER') }}",
    ...auth(),
    role: "{{ env_var('SNOWFLAKE_ROLE') }}",
    warehouse: "{{ env_var('SNOWFLAKE_WAREHOUSE') }}",
    database,
    schema,
    threads: 4,
  });
  const checksum = async (table: string) =>
    (await query(`SELECT COUNT(*) AS N, TO_VARCHAR(HASH_AGG(*)) AS H FROM ${PROD}.ANALYTICS.${table}`))[0];
  const deploy = (strategy: string, vars?: string): Promise<DeployResult> =>
    worker.deploy({ projectDir: dir, strategy, ...(vars ? { vars } : {}) });

  beforeAll(async () => {
    session = snowflake.createConnection({
      account: env['SNOWFLAKE_ACCOUNT'] as string,
      username: env['SNOWFLAKE_USER'] as string,
      ...(env['SNOWFLAKE_PRIVATE_KEY_PATH']
        ? {
            authenticator: 'SNOWFLAKE_JWT',
            privateKeyPath: env['SNOWFLAKE_PRIVATE_KEY_PATH'],
            ...(env['SNOWFLAKE_PRIVATE_KEY_PASSPHRASE']
              ? { privateKeyPass: env['SNOWFLAKE_PRIVATE_KEY_PASSPHRASE'] }
              : {}),
          }
        : { password: env['SNOWFLAKE_PASSWORD'] as string }),
      role: env['SNOWFLAKE_ROLE'] as string,
      warehouse: env['SNOWFLAKE_WAREHOUSE'] as string,
    });
    await new Promise<void>((resolve, reject) => session.connect((e) => (e ? reject(e) : resolve())));
    // Sources live in their own database: a database swap replaces every schema of prod's.
    for (const statement of [
      `CREATE DATABASE ${PROD}`,
      `CREATE SCHEMA ${PROD}.ANALYTICS`,
      `CREATE DATABASE ${PROD}_RAW`,
      `CREATE SCHEMA ${PROD}_RAW.RAW`,
      `CREATE TABLE ${PROD}_RAW.RAW.CUSTOMERS AS SELECT SEQ4() + 1 AS ID, 'Ada' AS FIRST_NAME, 'Okafor' AS LAST_NAME, 'ada' || SEQ4() || '@example.com' AS EMAIL, '2024-01-01'::TIMESTAMP AS CREATED_AT FROM TABLE(GENERATOR(ROWCOUNT => 20))`,
      `CREATE TABLE ${PROD}_RAW.RAW.ORDERS AS SELECT SEQ4() + 1 AS ID, MOD(SEQ4(), 20) + 1 AS CUSTOMER_ID, DATEADD(hour, SEQ4(), '2024-01-01')::TIMESTAMP AS ORDERED_AT, 'completed' AS STATUS FROM TABLE(GENERATOR(ROWCOUNT => 100))`,
      `CREATE TABLE ${PROD}_RAW.RAW.PAYMENTS AS SELECT SEQ4() + 1 AS ID, SEQ4() + 1 AS ORDER_ID, 'card' AS METHOD, 1000 AS AMOUNT_CENTS FROM TABLE(GENERATOR(ROWCOUNT => 100))`,
    ])
      await query(statement);
    dir = join(await mkdtemp(join(tmpdir(), 'snowflake-live-')), 'jaffle_shop');
    await cp(EXAMPLE_DIR, dir, { recursive: true, filter: (s) => !/(\/target|\/logs|\.duckdb)$/.test(s) });
    // The sources live in a database of their own, which the swap never touches.
    const sources = join(dir, 'models', 'staging', '_sources.yml');
    await writeFile(
      sources,
      (await readFile(sources, 'utf8')).replace(
        /^( {4})schema: .*$/m,
        `$1database: ${PROD}_RAW\n$1schema: raw`,
      ),
    );
    await writeFile(
      join(dir, 'profiles.yml'),
      stringify({
        jaffle_shop: {
          target: 'prod',
          outputs: { prod: target(PROD, 'analytics'), staging: target(STAGING, 'analytics') },
        },
      }),
    );
    await writeFile(
      join(dir, 'deploy.yml'),
      stringify({
        strategy: 'blue-green',
        environments: { prod: { target: 'prod', staging_target: 'staging' } },
        publish: { tags: ['mart', 'utils'] },
        backups: { keep: 2 },
      }),
    );
    worker = await startTestWorker('test-snowflake');
  }, 600_000);

  afterAll(async () => {
    await worker?.stop();
    if (session) {
      const leftovers = await query(`SHOW DATABASES LIKE 'DBT_DEPLOY_%'`).catch(() => []);
      for (const row of leftovers) {
        const name = String(row['name']);
        if (name.startsWith(PROD) || name.startsWith('DBT_DEPLOY_BACKUP__'))
          await query(`DROP DATABASE IF EXISTS "${name}"`);
      }
      await new Promise<void>((resolve) => session.destroy(() => resolve()));
    }
    if (dir) await rm(join(dir, '..'), { recursive: true, force: true });
  }, 600_000);

  it.each(['blue-green', 'clone-back', 'wap', 'wac'])('%s publishes and verifies', async (strategy) => {
    const result = await deploy(strategy);
    expect(result.status, result.reason).toBe('published');
    expect(Number((await checksum('FCT_ORDERS'))?.['N'])).toBeGreaterThan(0);
  });

  it('a failing audit leaves prod untouched; its staging stays a marked clone of prod', async () => {
    const before = await checksum('FCT_ORDERS');
    const result = await deploy('blue-green', '{break_audit: true}');
    expect(result.status).toBe('failed');
    expect(await checksum('FCT_ORDERS')).toEqual(before);
    // The sync made staging with one CREATE DATABASE … CLONE, its owner in the comment, and dropped
    // the backup schemas that came along; the next deploy of this environment replaces it.
    const [staging] = await query(
      `SELECT comment FROM ${PROD}.information_schema.databases WHERE database_name = '${STAGING}'`,
    );
    expect(staging?.['COMMENT']).toBe(
      `dbt-deploy staging: project=jaffle_shop env=prod deploy=${result.deployId}`,
    );
    const schemas = await query(`SELECT schema_name FROM ${STAGING}.information_schema.schemata`);
    expect(
      schemas.map((r) => String(r['SCHEMA_NAME'])).filter((n) => n.startsWith('DBT_DEPLOY_BACKUP__')),
    ).toEqual([]);
  });

  it('a fault after the swap swaps back; rollback restores the previous deploy', async () => {
    const before = await checksum('FCT_ORDERS');
    const faulty = await startTestWorker('test-snowflake', withInjectedFault('verifyProd'));
    try {
      const result = await faulty.deploy({ projectDir: dir, strategy: 'blue-green' });
      expect(result.status).toBe('rolled_back');
    } finally {
      await faulty.stop();
    }
    expect(await checksum('FCT_ORDERS')).toEqual(before);
    const published = await deploy('clone-back');
    expect(published.status).toBe('published');
    const rolled = await worker.rollback({ projectDir: dir });
    expect(rolled.status, rolled.reason).toBe('published');
  });
});
