/**
 * `npm run demo`: deploys the example shop to a local DuckDB file with Write-Audit-Clone, through a
 * local Temporal dev server and an in-process worker, then prints the report and where to see it in
 * the Temporal UI. `--json` prints the result object as the last line; `--break-audit` shows a deploy
 * stopped by a failing test; `--keep` leaves the server and UI up until Ctrl-C.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createExampleWorkspace } from '../examples/jaffle_shop/workspace.js';
import { bundleDeployWorkflows, createDeployWorker, quietRuntime } from '../worker/worker.js';
import { connectClient, DEFAULT_TASK_QUEUE } from './connection.js';
import { deployResult, newDeployId, startDeploy } from './deploys.js';
import { followDeploy } from './follow.js';
import { freePort, portIsFree, startDevServer } from './dev-server.js';
import { prepareDeploy } from './preflight.js';
import { formatResult } from './report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKSPACE = join(ROOT, '.demo');

async function demo(): Promise<number> {
  const { values } = parseArgs({
    options: { json: { type: 'boolean' }, 'break-audit': { type: 'boolean' }, keep: { type: 'boolean' } },
  });
  quietRuntime();
  const say = values.json ? (line: string) => console.error(line) : (line: string) => console.log(line);

  const { dir: projectDir } = await createExampleWorkspace(join(WORKSPACE, 'jaffle_shop'));
  say(`demo: copied examples/jaffle_shop to ${projectDir} and loaded its raw sources`);

  const prepared = prepareDeploy({
    projectDir,
    ...(values['break-audit'] ? { vars: '{break_audit: true}' } : {}),
  });

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
    const input = { ...prepared.input, deployId: newDeployId(prepared.input.env) };
    say(`demo: deploying ${input.project} to ${input.env} with ${input.strategy} (deploy ${input.deployId})`);
    const handle = await startDeploy(client, input, taskQueue);
    const stopFollowing = followDeploy(handle, { print: say });
    const result = await deployResult(handle).finally(stopFollowing);
    say('');
    say(formatResult(result, server.uiUrl, server.namespace));
    if (values.keep) {
      say(`\ndemo: the UI stays up at ${server.uiUrl} until Ctrl-C`);
      await new Promise((resolve) => process.once('SIGINT', resolve));
    } else {
      say(
        `\ndemo: the server stops now; its history is kept in .demo/temporal.db (browse it: npm run demo -- --keep)`,
      );
    }
    if (values.json) console.log(JSON.stringify(result));
    return result.status === 'published' ? 0 : 1;
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
    await server.stop();
  }
}

process.exitCode = await demo();
