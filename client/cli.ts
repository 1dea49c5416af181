#!/usr/bin/env node
/**
 * dbt-deploy: deploy a dbt project to a production warehouse as a durable Temporal workflow.
 * Exit codes: 0 published (or the command succeeded), 1 the deploy ended without publishing,
 * 2 bad input or no server (nothing was started).
 */
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { planDeploy } from '../workflows/strategies/index.js';
import { planRollback } from '../workflows/strategies/rollback.js';
import { connectClient, temporalSettings } from './connection.js';
import { deployResult, newDeployId, type Operation, startDeploy } from './deploys.js';
import { startDevServer } from './dev-server.js';
import { followDeploy } from './follow.js';
import { type DeployOptions, prepareDeploy } from './preflight.js';
import { formatPlan, formatResult } from './report.js';
import { type DeployInput, STRATEGIES } from '../workflows/types.js';

/** Where to act: the dbt project, its profiles, deploy.yml and the environment. */
function targetOptions(command: Command): Command {
  return command
    .option('--project-dir <dir>', 'the dbt project, as with dbt', '.')
    .option('--profiles-dir <dir>', 'where profiles.yml is (default: DBT_PROFILES_DIR, the project, ~/.dbt)')
    .option('--config <file>', 'deploy configuration (default: deploy.yml beside dbt_project.yml)')
    .option('--env <name>', 'environment from deploy.yml', 'prod')
    .option('--vars <yaml>', "dbt vars for every dbt invocation, e.g. '{key: value}'");
}

function deployOptions(command: Command): Command {
  return targetOptions(command).addOption(
    new Option('--strategy <name>', 'override the configured strategy').choices([...STRATEGIES]),
  );
}

/** Starts one operation, follows its steps on the terminal and sets the exit code from its result. */
async function runOperation(
  operation: Operation,
  prepared: Omit<DeployInput, 'deployId'>,
  options: { json?: boolean },
): Promise<void> {
  const settings = temporalSettings();
  const client = await connectClient(settings);
  const input: DeployInput = { ...prepared, deployId: newDeployId(prepared.env) };
  const handle = await startDeploy(client, input, settings.taskQueue, operation);
  if (!options.json) console.log(`${operation} ${input.deployId} started as workflow ${handle.workflowId}`);
  const stopFollowing = options.json ? () => {} : followDeploy(handle, (line) => console.log(line));
  const result = await deployResult(handle).finally(stopFollowing);
  console.log(options.json ? JSON.stringify(result) : formatResult(result));
  process.exitCode = result.status === 'published' ? 0 : 1;
}

export function buildCli(): Command {
  const program = new Command('dbt-deploy')
    .description('Deploy a dbt project to production safely, as a durable Temporal workflow.')
    .exitOverride();

  deployOptions(program.command('deploy'))
    .description('build, audit and publish the project to an environment; exit 0 only when published')
    .option('--json', 'print the result object as one JSON line')
    .option('--git-sha <sha>', 'the commit being deployed, recorded with the deploy')
    .action(async (options: DeployOptions & { json?: boolean }) => {
      await runOperation('deploy', prepareDeploy(options).input, options);
    });

  targetOptions(program.command('rollback'))
    .description("restore prod to its state before a deploy, from that deploy's backup; exit 0 when restored")
    .option('--to <deployId>', 'the deploy to undo (default: the latest deploy to the environment)')
    .option('--json', 'print the result object as one JSON line')
    .action(async (options: DeployOptions & { to?: string; json?: boolean }) => {
      const { input } = prepareDeploy(options);
      await runOperation(
        'rollback',
        { ...input, ...(options.to ? { rollbackTo: options.to } : {}) },
        options,
      );
    });

  const mirror = program.command('mirror').description('the raw layer that copies each source 1:1');
  targetOptions(mirror.command('refresh'))
    .description("rebuild the raw layer from the live sources, audit it, then replace prod's copy")
    .option('--json', 'print the result object as one JSON line')
    .action(async (options: DeployOptions & { json?: boolean }) => {
      const { input } = prepareDeploy({ ...options, strategy: 'mirror' });
      await runOperation('mirror-refresh', input, options);
    });

  deployOptions(program.command('plan'))
    .description('print the steps a deploy would run; touches nothing')
    .option('--rollback', 'print the plan of `dbt-deploy rollback` instead')
    .action((options: DeployOptions & { rollback?: boolean }) => {
      const prepared = prepareDeploy(options);
      const input = { ...prepared.input, deployId: '<deploy id>' };
      const plan = options.rollback ? planRollback(input) : planDeploy(input);
      console.log(
        formatPlan(
          plan,
          `plan for ${prepared.input.project} -> ${prepared.input.env} (${prepared.input.engine})`,
        ),
      );
    });

  program
    .command('worker')
    .description(
      'run a worker (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, DBT_DEPLOY_TASK_QUEUE); stops on SIGINT/SIGTERM',
    )
    .option(
      '--max-concurrent-activities <n>',
      'activities (dbt runs) at once',
      (v) => Number.parseInt(v, 10),
      4,
    )
    .action(async (options: { maxConcurrentActivities: number }) => {
      const settings = temporalSettings();
      const { createDeployWorker } = await import('../worker/worker.js');
      const { worker, connection } = await createDeployWorker({
        ...settings,
        maxConcurrentActivityTaskExecutions: options.maxConcurrentActivities,
      });
      console.log(
        `worker polling task queue "${settings.taskQueue}" on ${settings.address} (${settings.namespace})`,
      );
      await worker.run();
      await connection.close();
    });

  program
    .command('dev')
    .description('start a local Temporal dev server (UI included) and a worker; stays up until Ctrl-C')
    .option('--port <port>', 'gRPC port', (v) => Number.parseInt(v, 10), 7233)
    .option('--ui-port <port>', 'Web UI port', (v) => Number.parseInt(v, 10), 8233)
    .option(
      '--db-filename <file>',
      'where the server keeps history across restarts',
      '.dbt-deploy/temporal-dev.db',
    )
    .action(async (options: { port: number; uiPort: number; dbFilename: string }) => {
      const configured = temporalSettings();
      const server = await startDevServer({
        namespace: configured.namespace,
        port: options.port,
        uiPort: options.uiPort,
        dbFilename: resolve(options.dbFilename),
      });
      const settings = { ...configured, address: server.address };
      const { createDeployWorker } = await import('../worker/worker.js');
      const { worker, connection } = await createDeployWorker(settings);
      console.log(`Temporal dev server on ${server.address}, UI ${server.uiUrl}`);
      console.log(
        `worker polling "${settings.taskQueue}"; history kept in ${resolve(options.dbFilename)}. Ctrl-C stops both.`,
      );
      try {
        await worker.run();
      } finally {
        await connection.close();
        await server.stop();
      }
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    const exitCode = (error as { exitCode?: unknown }).exitCode;
    if (typeof exitCode === 'number') {
      console.error(`dbt-deploy: ${(error as Error).message}`);
      return exitCode;
    }
    console.error(`dbt-deploy: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('client/cli.ts')) {
  process.exitCode = await main(process.argv);
}
