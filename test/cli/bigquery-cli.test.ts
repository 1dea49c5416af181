/**
 * `plan` and the pre-start checks on a BigQuery profile, through the CLI as a user runs it. Nothing
 * here reaches BigQuery: `plan` touches nothing, and a refused deploy stops before anything starts.
 */
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { EXAMPLE_DIR } from '../../examples/jaffle_shop/workspace.js';
import { ROOT } from '../support/harness.js';
import { scratchDir } from '../support/scratch.js';

const CLI = join(ROOT, 'bin', 'dbt-deploy');

// Each case has a profiles.yml of its own, so the cases run side by side: each one is a CLI start.
describe.concurrent('dbt-deploy on a BigQuery profile', () => {
  let dir: string;
  /** A profiles folder holding the prod target `prod` asks for; staging and audit are fine. */
  const profile = async (prod: Record<string, unknown>) => {
    const base = { type: 'bigquery', method: 'oauth', project: 'acme-data', location: 'EU' };
    const outputs = {
      prod: { ...base, dataset: 'analytics', ...prod },
      staging: { ...base, dataset: 'analytics_staging' },
      audit: { ...base, dataset: 'analytics_audit' },
    };
    const profiles = await scratchDir('dbt-deploy-bq-profiles-', inject('scratchRoot'));
    await writeFile(
      join(profiles, 'profiles.yml'),
      stringify({ jaffle_shop: { target: 'staging', outputs } }),
    );
    return profiles;
  };
  // No Temporal server is named: everything here must end before one is needed.
  const cli = (args: string[], profiles: string) =>
    execa(CLI, [...args, '--project-dir', dir, '--profiles-dir', profiles], {
      reject: false,
      env: { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    });

  beforeAll(async () => {
    dir = join(await scratchDir('dbt-deploy-bq-cli-', inject('scratchRoot')), 'jaffle_shop');
    await cp(EXAMPLE_DIR, dir, {
      recursive: true,
      filter: (s) => !/(\/target|\/logs|\.duckdb(\.wal)?|\/profiles\.yml)$/.test(s),
    });
  });

  it('plan prints wac for auto, one table at a time, and what readers see', async () => {
    const result = await cli(['plan', '--strategy', 'auto'], await profile({}));
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain('(bigquery)');
    expect(result.stdout).toContain('auto chose wac');
    expect(result.stdout).toContain('one table at a time');
    expect(result.stdout).toContain('a copy job replaces a table atomically');
  });

  it.each([
    [
      'blue-green',
      {},
      ['--strategy', 'blue-green'],
      /strategy "blue-green" cannot run on bigquery: .*\(strategies that work: clone-back, wap, wac, mirror\)/,
    ],
    [
      'a target without a project',
      { project: '' },
      [],
      /environments\.prod\.target: target "prod": a bigquery target needs `project`/,
    ],
    [
      'a missing keyfile',
      { method: 'service-account', keyfile: 'gone.json' },
      [],
      /target "prod": `keyfile` .*gone\.json does not exist/,
    ],
  ])('refuses %s with one line naming it, exit 2', async (_name, prod, flags, message) => {
    const result = await cli(['deploy', ...flags], await profile(prod));
    expect(result.exitCode).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });
});
