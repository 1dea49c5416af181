/**
 * The dbt-deploy command as a user runs it: a child process against the run's Temporal server.
 * Bad input must give one line, exit code 2, and start no workflow.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deployWorkflowId } from '../../client/deploys.js';
import { temporalCliPath } from '../../client/dev-server.js';
import {
  type ExampleProject,
  exampleProject,
  ROOT,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
} from '../support/harness.js';

const CLI = join(ROOT, 'bin', 'dbt-deploy');

describe('dbt-deploy CLI', () => {
  let project: ExampleProject;
  let worker: TestWorker;

  beforeAll(async () => {
    project = await exampleProject();
    worker = await startTestWorker('test-cli');
  });
  afterAll(async () => worker?.stop());

  function cli(args: string[], env: Record<string, string> = {}) {
    return execa(CLI, args, {
      reject: false,
      env: {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_NAMESPACE: worker.namespace,
        DBT_DEPLOY_TASK_QUEUE: worker.taskQueue,
        ...env,
      },
    });
  }

  async function expectNoDeployStarted(env = 'prod'): Promise<void> {
    await expect(
      worker.client.workflow.getHandle(deployWorkflowId('jaffle_shop', env)).describe(),
    ).rejects.toThrow(WorkflowNotFoundError);
  }

  describe('refuses bad input with one line, exit code 2, and no workflow', () => {
    it.each([
      [
        'a project dir without dbt_project.yml',
        () => ['deploy', '--project-dir', ROOT],
        {},
        /no dbt_project\.yml here/,
      ],
      [
        'an unknown strategy',
        () => ['deploy', '--project-dir', project.dir, '--strategy', 'yolo'],
        {},
        /yolo.*invalid.*wac/,
      ],
      [
        'an unknown environment',
        () => ['deploy', '--project-dir', project.dir, '--env', 'qa'],
        {},
        /environment "qa" not found/,
      ],
      [
        'dbt not installed',
        () => ['deploy', '--project-dir', project.dir],
        { DBT_BIN: '/nonexistent/dbt' },
        /dbt is not installed at \/nonexistent\/dbt/,
      ],
      [
        'malformed --vars',
        () => ['deploy', '--project-dir', project.dir, '--vars', '[1, 2]'],
        {},
        /--vars: expected a mapping/,
      ],
    ])('%s', async (_name, args, env, message) => {
      const result = await cli(args(), env);
      expect(result.exitCode).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(message);
      await expectNoDeployStarted();
    });

    it.each([
      [
        'an unknown key',
        'strategy: wac\nenvironments:\n  prod: {target: prod, staging_target: staging}\npublsh: {}\n',
        /unknown key "publsh"/,
      ],
      [
        'a wrong type',
        'environments:\n  prod: {target: 7, staging_target: staging}\n',
        /environments\.prod\.target: expected string, got number/,
      ],
      [
        'an unknown strategy',
        'strategy: swap\nenvironments:\n  prod: {target: prod, staging_target: staging}\n',
        /strategy: must be one of "auto", "blue-green", "clone-back", "wap", "wac", "mirror", got "swap"/,
      ],
      [
        'the mirror strategy without a raw layer',
        'strategy: mirror\nenvironments:\n  prod: {target: prod, staging_target: staging}\n',
        /strategy "mirror" refreshes a raw layer, but there is no "mirror" key/,
      ],
      [
        'an audit target that writes into prod',
        'strategy: wap\nenvironments:\n  prod: {target: prod, staging_target: staging, audit_target: prod}\n',
        /audit_target "prod" both write to schema "analytics"; give the audit its own schema/,
      ],
      [
        'a target missing from profiles.yml',
        'environments:\n  prod: {target: production, staging_target: staging}\n',
        /target "production" not found in profile "jaffle_shop"/,
      ],
      ['invalid YAML', 'environments: [unclosed\n', /not valid YAML/],
      [
        'an audit rule whose limit is not one',
        'environments:\n  prod: {target: prod, staging_target: staging}\naudits:\n  - max_row_change: ten\n',
        /audits\.0\.max_row_change: "ten" is not a limit: write a share of prod's rows such as 10%/,
      ],
      [
        'an sql assertion with an unknown placeholder',
        'environments:\n  prod: {target: prod, staging_target: staging}\naudits:\n  - {name: x, sql: "select * from {{ this }}"}\n',
        /audits\.0\.sql: unknown placeholder \{\{ this \}\}/,
      ],
      [
        'a diff setting out of range',
        'environments:\n  prod: {target: prod, staging_target: staging}\ndiff:\n  sample_percent: 0\n',
        /diff\.sample_percent: /,
      ],
    ])('deploy.yml with %s', async (_name, yaml, message) => {
      const config = join(project.dir, 'deploy.yml');
      const original = await readFile(config, 'utf8');
      await writeFile(config, yaml);
      try {
        const result = await cli(['deploy', '--project-dir', project.dir]);
        expect(result.exitCode).toBe(2);
        expect(result.stderr.trim().split('\n')).toHaveLength(1);
        expect(result.stderr).toMatch(message);
        expect(result.stderr).toContain('deploy.yml');
        await expectNoDeployStarted();
      } finally {
        await writeFile(config, original);
      }
    });

    it('a missing deploy.yml', async () => {
      const config = join(project.dir, 'deploy.yml');
      const original = await readFile(config, 'utf8');
      await rm(config);
      try {
        const result = await cli(['deploy', '--project-dir', project.dir]);
        expect(result.exitCode).toBe(2);
        expect(result.stderr.trim().split('\n')).toHaveLength(1);
        expect(result.stderr).toMatch(/deploy\.yml: not found/);
        await expectNoDeployStarted();
      } finally {
        await writeFile(config, original);
      }
    });

    it('a namespace without the search attributes, saying how to create them', async () => {
      // Registered after the server started, so it lacks the attributes the dev server set up.
      await execa(
        temporalCliPath(),
        [
          'operator',
          'namespace',
          'create',
          '--namespace',
          'test-bare',
          '--address',
          inject('temporalAddress'),
        ],
        { reject: false },
      );
      const result = await cli(['deploy', '--project-dir', project.dir], { TEMPORAL_NAMESPACE: 'test-bare' });
      expect(result.exitCode).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(
        /namespace "test-bare" lacks the search attributes deploys record \(DbtDeployProject, .*temporal operator search-attribute create --namespace test-bare --name DbtDeployProject --type Keyword/,
      );
    });

    it('no Temporal server, saying how to start one', async () => {
      const result = await cli(['deploy', '--project-dir', project.dir], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toMatch(/no Temporal server answers at 127\.0\.0\.1:1.*dbt-deploy dev/);
    });
  });

  it('plan prints the steps and touches nothing', async () => {
    const result = await cli(['plan', '--project-dir', project.dir]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('strategy wac');
    // The publish selection is listed (and compiled) first: one that selects nothing stops the deploy before its build.
    expect(result.stdout).toMatch(
      /1\. List the models publish\.tags \[mart, utils\] selects and compile them for "prod", and the snapshots the build runs in "staging"; stop before the build if there are none \[touches nothing\]/,
    );
    expect(result.stdout).toMatch(/2\. Build and test every model in target "staging"/);
    expect(result.stdout).toMatch(/5\. Diff every relation to publish against "prod"/);
    expect(result.stdout).toMatch(/7\. Copy the selected tables from "staging" to "prod" in one transaction/);
    expect(result.stdout).toMatch(
      /readers of prod see: tables: nothing during the copy: DuckDB lets no other process/,
    );
    expect(await snapshotSchema(project.database, 'analytics')).toEqual({});
    await expectNoDeployStarted();
  });

  it.each([
    [
      'blue-green',
      ['--strategy', 'blue-green'],
      /strategy blue-green: .*\n[\s\S]*Copy the project's tables from "prod" into "staging"/,
    ],
    [
      'clone-back',
      ['--strategy', 'clone-back'],
      /strategy clone-back: [\s\S]*state:modified\+ tag:mart tag:utils/,
    ],
    ['wap', ['--strategy', 'wap'], /strategy wap: [\s\S]*Build and test every model in target "audit"/],
    ['auto', ['--strategy', 'auto'], /strategy blue-green: auto chose blue-green \(this warehouse/],
    ['rollback', ['--rollback'], /strategy rollback: [\s\S]*1\. Find the backup taken by the latest deploy/],
    [
      'an approval gate',
      ['--require-approval'],
      /4\. Select [^\n]*\n5\. Diff every relation[^\n]*\n {3}wait for `dbt-deploy approve` or `abort` \(after 24h: abort\)\n6\. Back up/,
    ],
  ])('plan for %s prints its steps and touches nothing', async (_name, flags, expected) => {
    const result = await cli(['plan', '--project-dir', project.dir, ...flags]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(expected);
    expect(await snapshotSchema(project.database, 'analytics')).toEqual({});
    await expectNoDeployStarted();
  });

  it('approve and abort with nothing running are refused with one line, exit 2; status says none runs', async () => {
    for (const command of ['approve', 'abort']) {
      const result = await cli([command, '--project-dir', project.dir]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr.trim()).toBe(
        `dbt-deploy: no deploy of jaffle_shop to prod is running: nothing to ${command}`,
      );
    }
    const diff = await cli(['diff', '--project-dir', project.dir]);
    expect(diff.exitCode).toBe(2);
    expect(diff.stderr.trim()).toBe(
      'dbt-deploy: no deploy of jaffle_shop to prod is running: there is no diff to show',
    );
    const status = await cli(['status', '--project-dir', project.dir]);
    expect(status.exitCode).toBe(0);
    expect(status.stdout).toContain('no deploy of jaffle_shop to prod is running');
  });

  it('creates, lists, pauses and deletes a schedule', async () => {
    const dir = ['--project-dir', project.dir];
    const created = await cli([
      'schedule',
      'create',
      ...dir,
      '--cron',
      '0 6 * * *',
      '--strategy',
      'blue-green',
    ]);
    expect(created.stderr).toBe('');
    expect(created.stdout).toContain('schedule dbt-deploy-jaffle_shop-prod created: 0 6 * * * (blue-green)');
    const again = await cli(['schedule', 'create', ...dir, '--cron', '0 7 * * *']);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
    expect((await cli(['schedule', 'pause', ...dir, '--note', 'freeze'])).stdout).toContain('paused');
    const listed = JSON.parse((await cli(['schedule', 'list', ...dir, '--json'])).stdout) as Array<{
      id: string;
      cron: string[];
      paused: boolean;
      note: string;
      strategy: string;
    }>;
    expect(listed).toEqual([
      expect.objectContaining({
        id: 'dbt-deploy-jaffle_shop-prod',
        cron: ['0 6 * * *'],
        paused: true,
        note: 'freeze',
        strategy: 'blue-green',
      }),
    ]);
    expect((await cli(['schedule', 'delete', ...dir])).stdout).toContain('deleted');
    const gone = await cli(['schedule', 'trigger', ...dir]);
    expect(gone.exitCode).toBe(2);
    expect(gone.stderr).toMatch(/no schedule dbt-deploy-jaffle_shop-prod/);
  });

  it('deploy --json publishes and prints the result object, exit 0', async () => {
    const result = await cli(['deploy', '--project-dir', project.dir, '--json']);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const output = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '');
    expect(output).toMatchObject({
      env: 'prod',
      strategy: 'wac',
      status: 'published',
      workflowId: 'dbt-deploy-jaffle_shop-prod',
    });
    expect(output.published).toContain('jaffle_shop.analytics.fct_orders');
    const prod = await snapshotSchema(project.database, 'analytics');
    expect(prod['dim_customers']).toEqual(
      (await snapshotSchema(project.database, 'analytics_staging'))['dim_customers'],
    );
  });

  it('deploy with a failing audit exits 1 and names the failing test', async () => {
    const before = await snapshotSchema(project.database, 'analytics');
    const result = await cli(['deploy', '--project-dir', project.dir, '--vars', '{break_audit: true}']);
    expect(await snapshotSchema(project.database, 'analytics')).toEqual(before);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain('FAILED');
    expect(result.stdout).toContain('accepted_values_stg_orders_status');
  });
});
