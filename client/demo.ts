/**
 * `npm run demo`: deploys the example shop to a local DuckDB file, through a local Temporal dev server
 * and an in-process worker, then prints the report and where to see it in the Temporal UI.
 * `--strategy <name>` picks any strategy (default: deploy.yml's, wac); `mirror` first refreshes the
 * raw layer, then deploys from it. `--json` prints the result object as the last line;
 * `--break-audit` shows a deploy stopped by a failing test; `--keep` leaves the server, the UI and the
 * worker up until Ctrl-C, and prints the commands that go on from there on the demo's workspace.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { createExampleWorkspace } from '../examples/jaffle_shop/workspace.js';
import { bundleDeployWorkflows, createDeployWorker, quietRuntime } from '../worker/worker.js';
import type { DeployResult } from '../workflows/types.js';
import { connectClient, DEFAULT_TASK_QUEUE } from './connection.js';
import { deployResult, newDeployId, type Operation, startDeploy } from './deploys.js';
import { followDeploy } from './follow.js';
import { freePort, portIsFree, startDevServer } from './dev-server.js';
import { parseStrategy, prepareDeploy } from './preflight.js';
import { formatResult } from './report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKSPACE = join(ROOT, '.demo');

async function demo(): Promise<number> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean' },
      'break-audit': { type: 'boolean' },
      keep: { type: 'boolean' },
      strategy: { type: 'string' },
    },
  });
  // Refused before anything is set up, with the strategies that exist.
  const strategy = values.strategy === undefined ? undefined : parseStrategy(values.strategy);
  quietRuntime();
  const say = values.json ? (line: string) => console.error(line) : (line: string) => console.log(line);

  const { dir: projectDir } = await createExampleWorkspace(join(WORKSPACE, 'jaffle_shop'));
  say(`demo: copied examples/jaffle_shop to ${projectDir} and loaded its raw sources`);
  if (strategy === 'mirror') {
    // The raw layer becomes the mirror layer: refreshed on its own, read by every deploy.
    const config = join(projectDir, 'deploy.yml');
    await writeFile(config, `${await readFile(config, 'utf8')}mirror:\n  select: [tag:raw]\n`);
    say('demo: added `mirror: {select: [tag:raw]}` to its deploy.yml');
  }
  const vars = values['break-audit'] ? { vars: '{break_audit: true}' } : {};
  // mirror: refresh prod's raw layer, then deploy with deploy.yml's strategy, building from that layer.
  const runs: Array<{ operation: Operation; prepared: ReturnType<typeof prepareDeploy> }> =
    strategy === 'mirror'
      ? [
          { operation: 'mirror-refresh', prepared: prepareDeploy({ projectDir, strategy, ...vars }) },
          { operation: 'deploy', prepared: prepareDeploy({ projectDir, ...vars }) },
        ]
      : [
          {
            operation: 'deploy',
            prepared: prepareDeploy({ projectDir, ...vars, ...(strategy ? { strategy } : {}) }),
          },
        ];

  const port = (await portIsFree(7233)) ? 7233 : await freePort();
  const uiPort = (await portIsFree(8233)) ? 8233 : await freePort();
  say(`demo: starting a Temporal dev server on 127.0.0.1:${port} (UI ${uiPort})...`);
  const server = await startDevServer({ port, uiPort, dbFilename: join(WORKSPACE, 'temporal.db') });
  const taskQueue = DEFAULT_TASK_QUEUE;
  const { worker, connection } = await createDeployWorker({
    address: server.address,
    namespace: server.namespace,
    taskQueue,
    workflowBundle: await bundleDeployWorkflows(),
  });
  const running = worker.run();
  try {
    const client = await connectClient({ address: server.address, namespace: server.namespace, taskQueue });
    const results: DeployResult[] = [];
    for (const { operation, prepared } of runs) {
      const result = await run(client, operation, prepared.input, taskQueue, say);
      say('');
      say(formatResult(result, server.uiUrl, server.namespace));
      results.push(result);
      if (values.json) console.log(JSON.stringify(result));
      if (result.status !== 'published') break;
    }
    if (values.keep) {
      say(nextSteps(projectDir, server.address, strategy === 'mirror'));
      say(`\ndemo: the server, the UI (${server.uiUrl}) and the worker stay up until Ctrl-C`);
      await new Promise((resolve) => process.once('SIGINT', resolve));
    } else {
      say(
        `\ndemo: the server stops now; its history is kept in .demo/temporal.db (go on from here: npm run demo -- --keep)`,
      );
    }
    return results.length === runs.length && results.every((r) => r.status === 'published') ? 0 : 1;
  } finally {
    // Ctrl-C reaches the worker too (the SDK stops it on SIGINT): it may be draining already.
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
    await connection.close();
    await server.stop();
  }
}

async function run(
  client: Client,
  operation: Operation,
  prepared: ReturnType<typeof prepareDeploy>['input'],
  taskQueue: string,
  say: (line: string) => void,
): Promise<DeployResult> {
  const input = { ...prepared, deployId: newDeployId(prepared.env) };
  const what =
    operation === 'deploy'
      ? `deploying ${input.project} to ${input.env} with ${input.strategy}`
      : `refreshing the raw layer of ${input.project} in ${input.env}`;
  say(`demo: ${what} (deploy ${input.deployId})`);
  const handle = await startDeploy(client, input, taskQueue, operation);
  const stopFollowing = followDeploy(handle, { print: say });
  return deployResult(handle).finally(stopFollowing);
}

/** The commands that go on from the demo, against the server it keeps up, on the demo's workspace. */
function nextSteps(projectDir: string, address: string, mirror: boolean): string {
  const env = address === '127.0.0.1:7233' ? '' : `TEMPORAL_ADDRESS=${address} `;
  const dir = relative(ROOT, projectDir);
  const commands: Array<[string, string]> = [
    ['history', "the environment's operations"],
    ['rollback', 'prod as it was before the latest deploy'],
    ['deploy --require-approval', 'builds, audits, then waits at the approval gate'],
    ['approve', 'in a third terminal: lets it publish (or: abort)'],
    ...(mirror ? [['mirror refresh', 'rebuilds the raw layer from the sources'] as [string, string]] : []),
  ];
  const lines = commands.map(([args]) => `${env}bin/dbt-deploy ${args} --project-dir ${dir}`);
  const width = Math.max(...lines.map((line) => line.length)) + 2;
  const commented = lines.map((line, index) => `${line.padEnd(width)}# ${commands[index]![1]}`);
  return [
    '',
    'demo: go on from here in another terminal, from this repository:',
    ...commented.map((line) => `  ${line}`),
    ...(mirror ? [] : ['  (mirror refresh needs the raw layer: npm run demo -- --strategy mirror --keep)']),
  ].join('\n');
}

try {
  process.exitCode = await demo();
} catch (error) {
  // Bad input (an unknown strategy, a broken deploy.yml) is one line and exit code 2, as with the CLI.
  const exitCode = (error as { exitCode?: unknown }).exitCode;
  if (typeof exitCode !== 'number') throw error;
  console.error(`demo: ${(error as Error).message}`);
  process.exitCode = exitCode;
}
