/**
 * A Snowflake target read the way dbt-snowflake reads it, the driver options made from it, and the
 * preflight and `plan` of a Snowflake project: no warehouse is contacted (plan touches nothing).
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { EXAMPLE_DIR } from '../../examples/jaffle_shop/workspace.js';
import { connectionFor, type SnowflakeConnection } from '../../activities/profiles.js';
import { driverOptions, isTransient, queryTag } from '../../activities/warehouses/snowflake/connection.js';
import { prepareDeploy } from '../../client/preflight.js';
import { ROOT } from '../support/harness.js';

const CLI = join(ROOT, 'bin', 'dbt-deploy');
const SECRET = 'pw-that-must-not-leak-7731';

function target(database: string, schema: string, extra: Record<string, unknown> = {}) {
  return {
    type: 'snowflake',
    account: "{{ env_var('SNOWFLAKE_TEST_ACCOUNT') }}",
    user: 'deployer',
    password: "{{ env_var('SNOWFLAKE_TEST_PASSWORD') }}",
    role: 'transformer',
    warehouse: 'transforming',
    database,
    schema,
    threads: 4,
    ...extra,
  };
}

describe('a Snowflake profile', () => {
  let dir: string;
  const writeProfile = async (outputs: Record<string, unknown>) =>
    writeFile(join(dir, 'profiles.yml'), stringify({ jaffle_shop: { target: 'prod', outputs } }));

  beforeAll(async () => {
    process.env['SNOWFLAKE_TEST_ACCOUNT'] = 'myorg-myaccount';
    process.env['SNOWFLAKE_TEST_PASSWORD'] = SECRET;
    dir = join(await mkdtemp(join(tmpdir(), 'snowflake-profile-')), 'jaffle_shop');
    await cp(EXAMPLE_DIR, dir, { recursive: true, filter: (s) => !/(\/target|\/logs|\.duckdb)$/.test(s) });
    await writeFile(
      join(dir, 'deploy.yml'),
      stringify({
        strategy: 'blue-green',
        environments: { prod: { target: 'prod', staging_target: 'staging' } },
        publish: { tags: ['mart'] },
      }),
    );
  });
  afterAll(async () => rm(join(dir, '..'), { recursive: true, force: true }));

  it('reads password, key pair and oauth targets with env_var(), and refuses a browser login', async () => {
    await writeProfile({
      prod: target('analytics', 'marts', { query_tag: 'nightly' }),
      keys: target('analytics', 'marts', {
        password: undefined,
        private_key_path: '/keys/rsa.p8',
        private_key_passphrase: "{{ env_var('SNOWFLAKE_TEST_PASSWORD') }}",
      }),
      oauth: target('analytics', 'marts', { password: undefined, authenticator: 'oauth', token: 'tok-123' }),
      browser: target('analytics', 'marts', { authenticator: 'externalbrowser' }),
      local: target('analytics', 'marts', { host: '127.0.0.1', port: 9999, protocol: 'http' }),
    });
    const read = (name: string) => connectionFor(dir, dir, 'jaffle_shop', name) as SnowflakeConnection;
    const prod = read('prod');
    expect(prod).toMatchObject({
      engine: 'snowflake',
      account: 'myorg-myaccount',
      auth: { kind: 'password', password: SECRET },
      role: 'transformer',
      warehouse: 'transforming',
      database: 'analytics',
      schema: 'marts',
      queryTag: 'nightly',
    });
    expect(read('keys').auth).toEqual({
      kind: 'key-pair',
      privateKeyPath: '/keys/rsa.p8',
      passphrase: SECRET,
    });
    expect(read('oauth').auth).toEqual({ kind: 'oauth', token: 'tok-123' });
    expect(read('local').accessUrl).toBe('http://127.0.0.1:9999');
    expect(() => read('browser')).toThrow(/externalbrowser opens a browser, which a worker does not have/);

    // Driver options (developer-guide/node-js/nodejs-driver-options) carry the deploy and step in the tag.
    const options = driverOptions(prod, { deployId: 'prod-1', step: 'swapSchemas' });
    expect(options).toMatchObject({
      account: 'myorg-myaccount',
      username: 'deployer',
      password: SECRET,
      role: 'transformer',
      warehouse: 'transforming',
      queryTag: 'nightly dbt-deploy deploy=prod-1 step=swapSchemas',
    });
    expect(driverOptions(read('keys'))).toMatchObject({
      authenticator: 'SNOWFLAKE_JWT',
      privateKeyPath: '/keys/rsa.p8',
      privateKeyPass: SECRET,
    });
    expect(driverOptions(read('oauth'))).toMatchObject({ authenticator: 'OAUTH', token: 'tok-123' });
    expect(queryTag({ ...prod, queryTag: undefined } as SnowflakeConnection, undefined)).toBe('dbt-deploy');
  });

  it('tells transient errors (network, expired token, resuming warehouse) from the rest', () => {
    expect(isTransient(Object.assign(new Error('Authentication token has expired'), { code: 390114 }))).toBe(
      true,
    );
    expect(isTransient(new Error('read ECONNRESET'))).toBe(true);
    expect(
      isTransient(
        Object.assign(new Error("SQL compilation error: Object 'X' does not exist"), { code: '002003' }),
      ),
    ).toBe(false);
  });

  it('refuses a target without role or warehouse with one line naming the key', async () => {
    await writeProfile({
      prod: target('analytics', 'marts', { role: undefined }),
      staging: target('analytics_staging', 'marts', { warehouse: undefined }),
    });
    expect(() => prepareDeploy({ projectDir: dir })).toThrow(
      /^.*environments\.prod\.target: target "prod": a snowflake target needs `role`/,
    );
    await writeProfile({
      prod: target('analytics', 'marts'),
      staging: target('analytics_staging', 'marts', { warehouse: '' }),
    });
    expect(() => prepareDeploy({ projectDir: dir })).toThrow(
      /staging_target: target "staging": a snowflake target needs `warehouse`/,
    );
    await writeProfile({
      prod: target('analytics', 'marts', { authenticator: 'externalbrowser' }),
      staging: target('analytics_staging', 'marts'),
    });
    expect(() => prepareDeploy({ projectDir: dir })).toThrow(
      /^[^\n]*target "prod": authenticator: externalbrowser opens a browser, which a worker does not have[^\n]*$/,
    );
  });

  it('plan prints the database swap and what readers see; staging in another database is accepted', async () => {
    await writeProfile({ prod: target('analytics', 'marts'), staging: target('analytics_staging', 'marts') });
    const env = { ...process.env, DBT_SEND_ANONYMOUS_USAGE_STATS: 'false', DO_NOT_TRACK: '1' };
    const result = await execa(CLI, ['plan', '--project-dir', dir], { reject: false, env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain('(snowflake)');
    expect(result.stdout).toMatch(
      /Swap "staging" into "prod": the staging database with prod's in one statement/,
    );
    expect(result.stdout).toMatch(
      /readers of prod see: the old prod until `ALTER DATABASE … SWAP WITH` commits/,
    );
    // Staging starts as a zero-copy clone of prod, marked with its owner, before anything is built.
    expect(result.stdout).toContain(
      `staging made from prod first:\n  CREATE DATABASE "ANALYTICS_STAGING" CLONE "ANALYTICS" COMMENT = 'dbt-deploy staging: project=jaffle_shop env=prod deploy=<DEPLOY_ID>';`,
    );
    expect(result.stdout).toContain('  ALTER DATABASE "ANALYTICS" SWAP WITH "ANALYTICS_STAGING";');
    expect(result.stdout).toContain(
      '  ALTER DATABASE "ANALYTICS_STAGING" RENAME TO "DBT_DEPLOY_BACKUP__<DEPLOY_ID>_<HASH>";',
    );
    expect(result.stdout).not.toContain(SECRET);

    const wac = await execa(CLI, ['plan', '--project-dir', dir, '--strategy', 'wac'], { reject: false, env });
    expect(wac.exitCode, wac.stderr).toBe(0);
    expect(wac.stdout).toContain(
      '  CREATE OR REPLACE TABLE "ANALYTICS".<schema>.<table> CLONE "ANALYTICS_STAGING".<schema>.<table> COPY GRANTS;',
    );
    expect(wac.stdout).toMatch(/readers of prod see: tables: each table flips on its own/);
    expect(wac.stdout).not.toContain('staging made from prod first');

    const cloneBack = await execa(CLI, ['plan', '--project-dir', dir, '--strategy', 'clone-back'], {
      reject: false,
      env,
    });
    expect(cloneBack.exitCode, cloneBack.stderr).toBe(0);
    expect(cloneBack.stdout).toContain('  CREATE DATABASE "ANALYTICS_STAGING" CLONE "ANALYTICS" COMMENT = ');
    expect(cloneBack.stdout).toContain(
      '  CREATE OR REPLACE VIEW "ANALYTICS".<schema>.<view> COPY GRANTS AS <SELECT compiled for prod>;',
    );

    // Staging schemas inside the prod database: one schema swap per pair, and the window between them.
    await writeProfile({ prod: target('analytics', 'marts'), staging: target('analytics', 'marts_staging') });
    const shared = await execa(CLI, ['plan', '--project-dir', dir], { reject: false, env });
    expect(shared.exitCode, shared.stderr).toBe(0);
    expect(shared.stdout).not.toContain('staging made from prod first');
    expect(shared.stdout).toMatch(
      /readers of prod see: each schema flips on its own as its `ALTER SCHEMA … SWAP WITH` commits, one after the other: between two swaps/,
    );
    expect(shared.stdout).toContain(
      '  ALTER SCHEMA "ANALYTICS".<prod schema> SWAP WITH "ANALYTICS".<staging schema>;',
    );
  });
});
