#!/usr/bin/env node
/**
 * dbt-deploy: deploy a dbt project to a production warehouse as a durable Temporal workflow.
 * Exit codes: 0 published (or the command succeeded), 1 the deploy ended without publishing,
 * 2 bad input or no server (nothing was started).
 */
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { CAPABILITIES, readersSee } from '../activities/warehouses/capabilities.js';
import { planDeploy } from '../workflows/strategies/index.js';
import { snowflakeDialect } from '../activities/warehouses/snowflake/dialect.js';
import { planCutOver, planStagingClone } from '../activities/warehouses/snowflake/statements.js';
import { connectionFor } from '../activities/profiles.js';
import { planRollback } from '../workflows/strategies/rollback.js';
import type { WorkflowHandle } from '@temporalio/client';
import type { Operation } from './deploys.js';
import { type DeployOptions, identifyEnvironment, prepareDeploy } from './preflight.js';
import { formatPlan, formatResult, formatRunningPlan } from './report.js';
import { UsageError } from './errors.js';
import { fileURLToPath } from 'node:url';
import { formatDiff, formatDiffSummary } from '../workflows/diff.js';
import { progressQuery } from '../workflows/queries.js';
import { type DeployInput, type PlanKind, STRATEGIES } from '../workflows/types.js';

/**
 * What talks to Temporal, loaded by the commands that do: the client SDK (gRPC, protobuf) is most of
 * the CLI's start-up, and `plan` or `--help` never need it.
 */
async function temporal() {
  const [connection, deploys, follow, history, schedules] = await Promise.all([
    import('./connection.js'),
    import('./deploys.js'),
    import('./follow.js'),
    import('./history.js'),
    import('./schedules.js'),
  ]);
  return { ...connection, ...deploys, ...follow, ...history, ...schedules };
}

/**
 * The environment a command acts on, the Temporal modules and a client connected as configured: what
 * every command about a running or past operation starts with.
 */
async function environmentClient(options: DeployOptions) {
  const { project, env } = identifyEnvironment(options);
  const modules = await temporal();
  const client = await modules.connectClient(modules.temporalSettings());
  return { project, env, client, ...modules };
}

/** Where to act: the dbt project, its profiles, deploy.yml and the environment. */
function targetOptions(command: Command): Command {
  return command
    .option('--project-dir <dir>', 'the dbt project, as with dbt', '.')
    .option('--profiles-dir <dir>', 'where profiles.yml is (default: DBT_PROFILES_DIR, the project, ~/.dbt)')
    .option('--config <file>', 'deploy configuration (default: deploy.yml beside dbt_project.yml)')
    .option('--env <name>', 'environment from deploy.yml', 'prod')
    .option('--vars <yaml>', "dbt vars for every dbt invocation, e.g. '{key: value}'");
}

/** For commands on a running or past deploy: which project and environment; no dbt, no profile. */
function environmentOptions(command: Command): Command {
  return command
    .option('--project-dir <dir>', 'the dbt project, as with dbt', '.')
    .option('--config <file>', 'deploy configuration (default: deploy.yml beside dbt_project.yml)')
    .option('--env <name>', 'environment from deploy.yml', 'prod')
    .addHelpText('after', `\n${NO_PROFILE_NEEDED}`);
}

const NO_PROFILE_NEEDED =
  'Reads only dbt_project.yml and deploy.yml here: this host needs neither dbt nor the warehouse credentials (profiles.yml).';

const CONNECTION_HELP = `
Temporal connection (the Temporal CLI's own settings, so one temporal.toml serves both):
  a profile of temporal.toml (TEMPORAL_CONFIG_FILE, default ~/.config/temporalio/temporal.toml;
  TEMPORAL_PROFILE, default "default"), overridden by TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
  TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH,
  TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME (and their _DATA forms).
  DBT_DEPLOY_TASK_QUEUE names the workers' task queue (default dbt-deploy).

Encrypted payloads (opt-in): DBT_DEPLOY_CODEC_KEYS_FILE names a file of AES-256 keys, one a line
  (<id>:<base64 key>, oldest first; make one with \`dbt-deploy codec-key\`), or DBT_DEPLOY_CODEC_KEYS
  holds the same lines. Every command and worker then seals what it sends to Temporal with the newest
  key and opens payloads by their key id; \`dbt-deploy codec-server\` lets the Temporal UI read them.

What this host needs:
  approve, abort, status, history, schedule list|pause|unpause|trigger|delete: only dbt_project.yml
    and deploy.yml; neither dbt nor the warehouse credentials.
  deploy, plan, rollback, mirror refresh, schedule create: also the profile (profiles.yml) and dbt,
    which they check before starting anything; dbt itself then runs on the workers.
  worker: dbt (DBT_BIN, ./.venv/bin/dbt or PATH), the dbt project and the warehouse credentials.`;

function deployOptions(command: Command): Command {
  return targetOptions(command).addOption(
    new Option('--strategy <name>', 'override the configured strategy').choices([...STRATEGIES]),
  );
}

/** Starts one operation, follows its steps on the terminal and sets the exit code from its result. */
async function runOperation(
  operation: Operation,
  prepared: Omit<DeployInput, 'deployId'>,
  options: { json?: boolean; detach?: boolean },
): Promise<void> {
  const { connectClient, newDeployId, startDeploy, temporalSettings } = await temporal();
  const settings = temporalSettings();
  const client = await connectClient(settings);
  const input: DeployInput = { ...prepared, deployId: newDeployId(prepared.env) };
  const handle = await startDeploy(client, input, settings.taskQueue, operation);
  if (options.detach) {
    const started = { deployId: input.deployId, workflowId: handle.workflowId, env: input.env };
    console.log(
      options.json
        ? JSON.stringify(started)
        : `${operation} ${input.deployId} started as workflow ${handle.workflowId}; follow it with \`dbt-deploy status --env ${input.env}\``,
    );
    return;
  }
  if (!options.json) console.log(`${operation} ${input.deployId} started as workflow ${handle.workflowId}`);
  await followToEnd(handle, options);
}

/** Shows progress until the operation ends, prints its result and sets the exit code from it. */
async function followToEnd(handle: WorkflowHandle, options: { json?: boolean }): Promise<void> {
  const { deployResult, followDeploy, terminalOutput } = await temporal();
  const stopFollowing = options.json ? () => {} : followDeploy(handle, terminalOutput());
  const result = await deployResult(handle).finally(stopFollowing);
  if (!options.json && process.stdout.isTTY) process.stdout.write('\r\u001b[2K');
  console.log(options.json ? JSON.stringify(result) : formatResult(result));
  process.exitCode = result.status === 'published' ? 0 : 1;
}

export function buildCli(): Command {
  const program = new Command('dbt-deploy')
    .description('Deploy a dbt project to production safely, as a durable Temporal workflow.')
    .addHelpText('after', CONNECTION_HELP)
    .exitOverride();

  deployOptions(program.command('deploy'))
    .description('build, audit and publish the project to an environment; exit 0 only when published')
    .option('--json', 'print the result object as one JSON line')
    .option('--git-sha <sha>', 'the commit being deployed, recorded with the deploy')
    .option(
      '--require-approval',
      'wait for `dbt-deploy approve` after a passing audit (deploy.yml: approval.required)',
    )
    .option('--detach', 'start the deploy and return; follow it later with `dbt-deploy status`')
    .action(async (options: DeployOptions & { json?: boolean; detach?: boolean }) => {
      await runOperation('deploy', prepareDeploy(options).input, options);
    });

  for (const kind of ['approve', 'abort'] as const) {
    environmentOptions(program.command(kind))
      .description(
        kind === 'approve'
          ? 'let the deploy waiting at the approval gate publish; refused when none waits'
          : 'stop the running deploy: cancels dbt, undoes whatever changed, ends `aborted`',
      )
      .option(kind === 'approve' ? '--note <text>' : '--reason <text>', 'recorded with who and when')
      .option('--by <name>', 'who decides (default: user@host)')
      .action(async (options: DeployOptions & { note?: string; reason?: string; by?: string }) => {
        const { project, env, client, decide, whoAmI } = await environmentClient(options);
        const note = options.note ?? options.reason;
        const decision = await decide(client, project, env, kind, {
          by: options.by ?? whoAmI(),
          ...(note ? { note } : {}),
        });
        console.log(
          `${decision.kind} by ${decision.by} at ${decision.at}${decision.note ? `: ${decision.note}` : ''}`,
        );
      });
  }

  environmentOptions(program.command('status'))
    .description("follow the environment's running deploy until it ends, or say that none runs")
    .option('--json', 'print the result object as one JSON line when it ends')
    .action(async (options: DeployOptions & { json?: boolean }) => {
      const { project, env, client, runningDeploy } = await environmentClient(options);
      const handle = await runningDeploy(client, project, env);
      if (!handle) {
        console.log(
          options.json
            ? 'null'
            : `no deploy of ${project} to ${env} is running (see \`dbt-deploy history --env ${env}\`)`,
        );
        return;
      }
      await followToEnd(handle, options);
    });

  environmentOptions(program.command('diff'))
    .description(
      "print the diff of prod against the running deploy's candidate (rows, keys, columns, sample rows, audit rules): what `approve` publishes",
    )
    .option('--json', 'print the diff as JSON (the whole file when this host can read it, else its summary)')
    .action(async (options: DeployOptions & { json?: boolean }) => {
      const { project, env, client, runningDiff } = await environmentClient(options);
      const found = await runningDiff(client, project, env);
      if (options.json) {
        console.log(JSON.stringify(found.full ?? found.summary));
        return;
      }
      const { progress, summary, full } = found;
      const waiting = progress.approval
        ? `waits for approval until ${progress.approval.deadline} (then: ${progress.approval.onTimeout})`
        : `is ${progress.phase}`;
      console.log(`deploy ${found.deployId} (${progress.strategy}) ${waiting}`);
      console.log((full ? formatDiff(full) : formatDiffSummary(summary)).join('\n'));
      if (summary.ref)
        console.log(
          full
            ? `full diff: ${fileURLToPath(summary.ref.uri)}`
            : `sample rows are in ${summary.ref.uri} on the deploy's worker (not readable from this host)`,
        );
      if (progress.approval)
        console.log(
          `publish it with \`dbt-deploy approve --env ${env}\`, or stop it with \`dbt-deploy abort --env ${env}\``,
        );
    });

  environmentOptions(program.command('history'))
    .description(
      'past deploys of the environment, newest first (status, strategy, start, duration, approver)',
    )
    .option('--json', 'print one JSON array')
    .option('--limit <n>', 'how many', (v) => Number.parseInt(v, 10), 20)
    .action(async (options: DeployOptions & { json?: boolean; limit: number }) => {
      const { project, env, client, deployHistory, formatHistory } = await environmentClient(options);
      const lines = await deployHistory(client, project, env, options.limit);
      console.log(options.json ? JSON.stringify(lines) : formatHistory(lines));
    });

  const schedule = program
    .command('schedule')
    .description('deploys on a cron schedule; overlapping runs are skipped');
  deployOptions(schedule.command('create'))
    .description('deploy the environment on a cron schedule (UTC)')
    .requiredOption('--cron <expression>', 'e.g. "0 6 * * *"')
    .action(async (options: DeployOptions & { cron: string }) => {
      const { input } = prepareDeploy(options);
      const { connectClient, createSchedule, temporalSettings } = await temporal();
      const settings = temporalSettings();
      const client = await connectClient(settings);
      const id = await createSchedule(client, input, options.cron, settings.taskQueue);
      console.log(`schedule ${id} created: ${options.cron} (${input.strategy})`);
    });
  environmentOptions(schedule.command('list'))
    .description("the project's schedules")
    .option('--json', 'print one JSON array')
    .action(async (options: DeployOptions & { json?: boolean }) => {
      const { project } = identifyEnvironment(options);
      const { connectClient, listSchedules, temporalSettings } = await temporal();
      const lines = await listSchedules(await connectClient(temporalSettings()), project);
      if (options.json) console.log(JSON.stringify(lines));
      else if (lines.length === 0) console.log('no schedules');
      else
        for (const l of lines)
          console.log(
            `${l.id}  ${l.cron.join(' ') || '-'}  ${l.paused ? 'paused' : 'active'}  ${l.strategy ?? ''}  next ${l.nextRuns[0] ?? '-'}`,
          );
    });
  for (const change of ['pause', 'unpause', 'trigger', 'delete'] as const) {
    const command = environmentOptions(schedule.command(change)).description(
      {
        pause: 'stop starting deploys until unpaused',
        unpause: 'start deploys again',
        trigger: 'start a deploy now (skipped if one is running)',
        delete: 'remove the schedule (running deploys go on)',
      }[change],
    );
    if (change === 'pause' || change === 'unpause')
      command.option('--note <text>', 'why, shown by `schedule list`');
    command.action(async (options: DeployOptions & { note?: string }) => {
      const { project, env } = identifyEnvironment(options);
      const { changeSchedule, connectClient, temporalSettings } = await temporal();
      const id = await changeSchedule(
        await connectClient(temporalSettings()),
        project,
        env,
        change,
        options.note,
      );
      console.log(`schedule ${id}: ${change}${change.endsWith('e') ? 'd' : 'ed'}`);
    });
  }

  targetOptions(program.command('rollback'))
    .description("restore prod to its state before a deploy, from that deploy's backup; exit 0 when restored")
    .option('--to <deployId>', 'the deploy to undo (default: the latest deploy to the environment)')
    .option('--json', 'print the result object as one JSON line')
    .action(async (options: DeployOptions & { to?: string; json?: boolean }) => {
      const { input } = prepareDeploy({ ...options, forRollback: true });
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
    .option(
      '--running',
      "print the environment's running deploy instead: its steps as they stand and, once computed, its diff against prod (needs no profile)",
    )
    .option(
      '--require-approval',
      'show the plan with the approval gate, as `deploy --require-approval` runs it',
    )
    .action(async (options: DeployOptions & { rollback?: boolean; running?: boolean }) => {
      if (options.running) {
        const { project, env, client, runningDeploy } = await environmentClient(options);
        const handle = await runningDeploy(client, project, env);
        if (!handle) {
          console.log(
            `no deploy of ${project} to ${env} is running (see \`dbt-deploy history --env ${env}\`)`,
          );
          return;
        }
        const [progress, description] = await Promise.all([handle.query(progressQuery), handle.describe()]);
        console.log(formatRunningPlan(String(description.memo?.['deployId'] ?? handle.workflowId), progress));
        return;
      }
      const prepared = prepareDeploy({ ...options, forRollback: options.rollback === true });
      const input = { ...prepared.input, deployId: '<deploy id>' };
      const plan = options.rollback ? planRollback(input) : planDeploy(input);
      console.log(
        formatPlan(
          plan,
          `plan for ${prepared.input.project} -> ${prepared.input.env} (${prepared.input.engine})`,
          input,
          {
            readersSee: readersSee(plan.strategy, CAPABILITIES[input.engine], layoutOf(prepared)),
            ...cutOverStatements(prepared, plan.strategy),
          },
        ),
      );
    });

  program
    .command('worker')
    .description(
      'run a worker (Temporal connection: see `dbt-deploy --help`; DBT_DEPLOY_TASK_QUEUE); stops on SIGINT/SIGTERM',
    )
    .option(
      '--max-concurrent-activities <n>',
      'activities (dbt runs) at once',
      (v) => Number.parseInt(v, 10),
      4,
    )
    .option(
      '--max-concurrent-workflow-tasks <n>',
      'workflow tasks at once (short, CPU-bound)',
      (v) => Number.parseInt(v, 10),
      40,
    )
    .option(
      '--shutdown-grace-time <duration>',
      'on SIGTERM/SIGINT, how long running activities may finish before they are cancelled and retried elsewhere',
      '60 seconds',
    )
    .addOption(
      new Option('--log-format <format>', 'json: one object per line on stdout; text: readable, on stderr')
        .choices(['json', 'text'])
        .default('json'),
    )
    .option(
      '--artifacts-dir <dir>',
      "where deploys keep dbt's artifacts, a folder per project (default: DBT_DEPLOY_ARTIFACTS_DIR, else <project>/target/dbt-deploy)",
    )
    .option(
      '--shared-artifacts',
      "every worker reads the same artifacts folder: steps may run on any worker, not only on the deploy's host (DBT_DEPLOY_SHARED_ARTIFACTS=1)",
    )
    .option(
      '--host-loss-timeout <duration>',
      'how long a step waits for its host before the host counts as lost and the deploy restarts on another (only before prod is touched)',
      '1 minute',
    )
    .option(
      '--metrics <host:port>',
      "serve the Temporal SDK's Prometheus metrics at http://<host:port>/metrics (e.g. 127.0.0.1:9464; off by default)",
    )
    .action(async (options: import('../worker/run.js').RunWorkerOptions) => {
      const { runWorker } = await import('../worker/run.js');
      await runWorker(options);
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
    .option(
      '--ui-codec-endpoint <url>',
      'the codec server the UI decodes payloads with (see `dbt-deploy codec-server`)',
    )
    .action(
      async (options: { port: number; uiPort: number; dbFilename: string; uiCodecEndpoint?: string }) => {
        const [{ temporalSettings }, { startDevServer }] = await Promise.all([
          import('./connection.js'),
          import('./dev-server.js'),
        ]);
        const configured = temporalSettings();
        const server = await startDevServer({
          namespace: configured.namespace,
          port: options.port,
          uiPort: options.uiPort,
          dbFilename: resolve(options.dbFilename),
          ...(options.uiCodecEndpoint ? { uiCodecEndpoint: options.uiCodecEndpoint } : {}),
        });
        // The local dev server is plain TCP: a profile's TLS or API key is for the cluster, not for it.
        const settings = { ...configured, address: server.address, connection: {} };
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
      },
    );

  program
    .command('codec-server')
    .description(
      "serve Temporal's codec-server protocol (POST /encode, /decode) with the payload codec's keys, so the Temporal UI shows encrypted payloads in clear; stops on SIGINT/SIGTERM",
    )
    .option('--ip <address>', 'address to listen on; anyone who reaches it can decrypt', '127.0.0.1')
    .option('--port <port>', 'port', (v) => Number.parseInt(v, 10), 8888)
    .option('--ui-origin <url...>', 'the Temporal UI origins whose browsers may call it (CORS)', [
      'http://127.0.0.1:8233',
      'http://localhost:8233',
    ])
    .option(
      '--keys-file <file>',
      'the codec keys (default: DBT_DEPLOY_CODEC_KEYS_FILE, else DBT_DEPLOY_CODEC_KEYS)',
    )
    .action(async (options: { ip: string; port: number; uiOrigin: string[]; keysFile?: string }) => {
      const { AesGcmCodec, codecKeysFromEnv, readCodecKeys } = await import('./codec.js');
      const { startCodecServer } = await import('./codec-server.js');
      const keys = options.keysFile ? readCodecKeys(options.keysFile) : codecKeysFromEnv();
      if (!keys)
        throw new UsageError(
          'no codec keys: pass --keys-file or set DBT_DEPLOY_CODEC_KEYS_FILE (or DBT_DEPLOY_CODEC_KEYS) as for the worker',
        );
      const server = await startCodecServer({
        codec: new AesGcmCodec(keys),
        host: options.ip,
        port: options.port,
        origins: options.uiOrigin,
        log: (line) => console.error(line),
      });
      console.log(
        `codec server on ${server.url} (keys: ${keys.map((k) => k.id).join(', ')}; new payloads sealed with ${keys.at(-1)!.id}) for ${options.uiOrigin.join(', ')}`,
      );
      console.log(
        `point the UI at it: \`temporal server start-dev --ui-codec-endpoint ${server.url}\`, TEMPORAL_CODEC_ENDPOINT for a UI server, or the UI's Codec Server setting`,
      );
      await new Promise((done) => {
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
      await server.close();
    });

  program
    .command('codec-key')
    .description('print a new AES-256 key line for the codec keys file (<id>:<base64>); append it to rotate')
    .option('--id <id>', "the key's id, recorded in every payload it seals (default: today's date)")
    .action(async (options: { id?: string }) => {
      const { newCodecKeyLine } = await import('./codec.js');
      console.log(newCodecKeyLine(options.id));
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  // A reader that stops early (`dbt-deploy plan | head`) closes the pipe: the output ends there, no crash.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(0);
  });
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

/** Whether the staging target's schemas live in prod's own database (Snowflake swaps them one by one). */
function layoutOf(prepared: ReturnType<typeof prepareDeploy>): 'own-database' | 'shared-database' {
  const { input } = prepared;
  if (input.engine !== 'snowflake') return 'own-database';
  const [prod, staging] = [input.targets.prod, input.targets.staging].map((name) =>
    connectionFor(input.projectDir, input.profilesDir, input.profile, name),
  );
  const database = (c: typeof prod) =>
    c?.engine === 'snowflake' ? snowflakeDialect.storedName(c.database) : undefined;
  return database(prod) === database(staging) ? 'shared-database' : 'own-database';
}

/**
 * On Snowflake `plan` prints the statements that make staging from prod and those of the cut-over,
 * from the targets' databases and schemas.
 */
function cutOverStatements(
  prepared: ReturnType<typeof prepareDeploy>,
  strategy: PlanKind,
): { stagingStatements?: string[]; statements?: string[] } {
  const { input } = prepared;
  if (input.engine !== 'snowflake') return {};
  const target = (name: string) => {
    const found = connectionFor(input.projectDir, input.profilesDir, input.profile, name);
    return found.engine === 'snowflake' ? { database: found.database, schema: found.schema } : undefined;
  };
  const [prod, staging] = [target(input.targets.prod), target(input.targets.staging)];
  if (!prod || !staging) return {};
  const owner = { project: input.project, env: input.env, deployId: '<DEPLOY_ID>' };
  return {
    stagingStatements: planStagingClone(strategy, prod, staging, owner),
    statements: planCutOver(strategy, prod, staging),
  };
}
