/**
 * The package as a team installs it: `npm pack` here, `npm install <tarball>` in an empty folder that
 * knows nothing of this checkout, then, from that folder, a worker of the team's own (`Worker.create`
 * with `plugins: [dbtDeployPlugin()]` and a workflow module re-exporting the package's workflows) and
 * a deploy through the packed `dbt-deploy` bin via npx. Prod is then read back from DuckDB.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createExampleWorkspace, type ExampleWorkspace } from '../../examples/jaffle_shop/workspace.js';
import { ROOT, snapshotSchema } from '../support/harness.js';
import type { TestNamespace } from '../support/namespaces.js';
import { waitForLine } from '../support/processes.js';

const NAMESPACE: TestNamespace = 'test-package';

type Child = ResultPromise<{ reject: false; all: true }>;

/** A team's worker: its own connection, task queue and workflow bundle; the plugin adds the rest. */
const TEAM_WORKER = `
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker } from '@temporalio/worker';
import { dbtDeployPlugin } from 'dbt-temporal-deploy';

const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
const worker = await Worker.create({
  connection,
  namespace: process.env.TEMPORAL_NAMESPACE,
  taskQueue: process.env.DBT_DEPLOY_TASK_QUEUE,
  workflowsPath: fileURLToPath(new URL('./workflows.js', import.meta.url)),
  plugins: [dbtDeployPlugin()],
});
console.log('worker ready');
await worker.run();
`;

/** The team's workflow module: the package's workflows beside (here, instead of) their own. */
const TEAM_WORKFLOWS = `export * from 'dbt-temporal-deploy/workflows';\n`;

describe('the packed npm package', () => {
  const taskQueue = `package-${randomBytes(4).toString('hex')}`;
  let scratch: string;
  let project: ExampleWorkspace;
  let worker: Child | undefined;
  /** Only what a team's shell would have: no NODE_OPTIONS, no tsx, nothing pointing into this checkout but dbt. */
  let env: Record<string, string>;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'dbt-deploy-package-'));
    project = await createExampleWorkspace(join(scratch, 'jaffle_shop'));
    env = {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? scratch,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: NAMESPACE,
      DBT_DEPLOY_TASK_QUEUE: taskQueue,
      // The documented way to name dbt when it is neither in ./.venv nor on PATH.
      DBT_BIN: join(ROOT, '.venv', 'bin', 'dbt'),
      DBT_SEND_ANONYMOUS_USAGE_STATS: 'false',
      DO_NOT_TRACK: '1',
    };
  }, 60_000);

  afterAll(async () => {
    worker?.kill('SIGTERM');
    await worker;
  });

  it('packs, installs into an empty project, runs a team worker with the plugin and deploys via npx', async () => {
    const packStarted = Date.now();
    const packed = await execa('npm', ['pack', '--pack-destination', scratch, '--json'], { cwd: ROOT });
    const [{ filename, size, entryCount }] = JSON.parse(packed.stdout) as [
      {
        filename: string;
        size: number;
        entryCount: number;
      },
    ];
    const packMs = Date.now() - packStarted;
    const tarball = join(scratch, filename);

    const app = join(scratch, 'app');
    await execa('mkdir', ['-p', app]);
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({ name: 'team-app', private: true, type: 'module' }),
    );
    const installStarted = Date.now();
    await execa('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: app,
      env,
    });
    const installMs = Date.now() - installStarted;
    console.log(
      `package: ${filename} ${(size / 1024).toFixed(0)} KiB, ${entryCount} files; pack ${(packMs / 1000).toFixed(1)} s, install ${(installMs / 1000).toFixed(1)} s`,
    );

    // Compiled JavaScript and declarations only, and nothing that points back into this checkout.
    const installed = join(app, 'node_modules', 'dbt-temporal-deploy');
    const files = await listFiles(installed);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files).toEqual(
      expect.arrayContaining(['lib/index.js', 'lib/index.d.ts', 'lib/workflows/index.js']),
    );
    for (const file of files.filter((f) => f.endsWith('.js')))
      expect(await readFile(join(installed, file), 'utf8'), file).not.toContain(ROOT);
    const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as {
      peerDependencies: Record<string, string>;
    };
    expect(Object.keys(manifest.peerDependencies)).toEqual(
      expect.arrayContaining(['@temporalio/worker', '@temporalio/client', '@temporalio/envconfig']),
    );

    await writeFile(join(app, 'worker.js'), TEAM_WORKER);
    await writeFile(join(app, 'workflows.js'), TEAM_WORKFLOWS);
    worker = execa('node', ['worker.js'], { cwd: app, env, reject: false, all: true });
    await waitForLine(worker, 'worker ready', 180_000);

    const deployed = await execa(
      'npx',
      ['--no-install', 'dbt-deploy', 'deploy', '--project-dir', project.dir, '--env', 'prod'],
      { cwd: app, env, reject: false, all: true },
    );
    expect(deployed.exitCode, deployed.all).toBe(0);
    expect(deployed.all).toMatch(/published/);

    const prod = await snapshotSchema(project.database, 'analytics');
    const staging = await snapshotSchema(project.database, 'analytics_staging');
    expect(prod['fct_orders']?.rows).toBe(600);
    for (const [name, relation] of Object.entries(prod)) expect(relation, name).toEqual(staging[name]);
  }, 600_000);
});

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(join(dir, prefix), { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) =>
      e.isDirectory() ? listFiles(dir, join(prefix, e.name)) : Promise.resolve([join(prefix, e.name)]),
    ),
  );
  return nested.flat();
}
