/**
 * The `dbt-deploy worker` process. Logs go to stdout as one JSON object per line, so a log pipeline
 * can filter by workflowId or activityType. SIGTERM or SIGINT drains it: no new tasks, running dbt
 * steps get the grace time to finish, then they are cancelled and Temporal retries them on another
 * worker; the process then exits 0.
 */
import { join, resolve } from 'node:path';
import type { Duration } from '@temporalio/common';
import { DefaultLogger, type LogEntry, type Logger, Runtime } from '@temporalio/worker';
import { type TemporalSettings, temporalSettings } from '../client/connection.js';
import { UsageError } from '../client/errors.js';
import type { DeployInput } from '../workflows/types.js';
import { createDeployWorker } from './worker.js';

export type LogFormat = 'json' | 'text';

export interface RunWorkerOptions {
  /** @default temporalSettings() (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, DBT_DEPLOY_TASK_QUEUE) */
  settings?: TemporalSettings;
  /** `json`: one object per line on stdout; `text`: the SDK's readable lines on stderr. @default 'json' */
  logFormat?: LogFormat;
  /** @default 4 */
  maxConcurrentActivities?: number;
  /** @default 40 */
  maxConcurrentWorkflowTasks?: number;
  /** A duration with a unit, e.g. `90s` or `5 minutes`. @default '60 seconds' */
  shutdownGraceTime?: string;
  /**
   * Where deploys keep their dbt artifacts, one folder per project below it.
   * @default `DBT_DEPLOY_ARTIFACTS_DIR`, else `<project>/target/dbt-deploy`
   */
  artifactsDir?: string;
  /**
   * Every worker reads the same artifacts folder (shared storage): steps may run on any worker.
   * @default `DBT_DEPLOY_SHARED_ARTIFACTS=1`, else false (steps pinned to one host)
   */
  sharedArtifacts?: boolean;
  /** How long a pinned step may wait for its host before it counts as lost. @default '1 minute' */
  hostLossTimeout?: string;
  /**
   * `host:port` to serve the Temporal SDK's Prometheus metrics on (`/metrics`), e.g. `127.0.0.1:9464`.
   * @default undefined (no metrics endpoint)
   */
  metrics?: string;
}

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

export async function runWorker(options: RunWorkerOptions = {}): Promise<void> {
  const settings = options.settings ?? temporalSettings();
  const shutdownGraceTime = options.shutdownGraceTime ?? '60 seconds';
  const hostLossTimeout = options.hostLossTimeout ?? '1 minute';
  for (const [flag, value] of [
    ['--shutdown-grace-time', shutdownGraceTime],
    ['--host-loss-timeout', hostLossTimeout],
  ]) {
    // The SDK reads a bare number as milliseconds: "60" would cancel dbt almost at once.
    if (/^\s*\d+(\.\d+)?\s*$/.test(value!))
      throw new UsageError(`${flag} needs a unit, e.g. "${value!.trim()}s"`);
  }
  const artifactsDir = options.artifactsDir ?? (process.env['DBT_DEPLOY_ARTIFACTS_DIR'] || undefined);
  const sharedArtifacts = options.sharedArtifacts ?? process.env['DBT_DEPLOY_SHARED_ARTIFACTS'] === '1';
  if (options.metrics !== undefined) requireBindAddress(options.metrics);
  const logger = installRuntime(options.logFormat ?? 'json', options.metrics);
  const { worker, connection } = await createDeployWorker({
    ...settings,
    shutdownGraceTime,
    hostLossTimeout: hostLossTimeout as Duration,
    pinStepsToHost: !sharedArtifacts,
    ...(artifactsDir
      ? { artifactsRoot: (input: DeployInput) => join(resolve(artifactsDir), input.project) }
      : {}),
    ...(options.maxConcurrentActivities
      ? { maxConcurrentActivityTaskExecutions: options.maxConcurrentActivities }
      : {}),
    ...(options.maxConcurrentWorkflowTasks
      ? { maxConcurrentWorkflowTaskExecutions: options.maxConcurrentWorkflowTasks }
      : {}),
  });
  const drain = (signal: NodeJS.Signals) => {
    // A second signal (a process manager may send one to the group and one to the process) must not end the drain early.
    if (worker.getState() !== 'RUNNING') return;
    // Activities still running after the grace time are cancelled, fail, and are retried elsewhere.
    logger.info('draining: no new tasks, running activities may finish within the grace time', {
      signal,
      inFlightActivities: worker.getStatus().numInFlightActivities,
      shutdownGraceTime,
    });
    worker.shutdown();
  };
  for (const signal of STOP_SIGNALS) process.on(signal, drain);
  // Names only: the API key and the client key must never reach a log.
  const { address, namespace, taskQueue, connection: secured = {} } = settings;
  logger.info('worker polling', {
    address,
    namespace,
    taskQueue,
    tls: Boolean(secured.tls ?? secured.apiKey),
    apiKey: Boolean(secured.apiKey),
    shutdownGraceTime,
    pinnedToHost: !sharedArtifacts,
    ...(artifactsDir ? { artifactsDir: resolve(artifactsDir) } : {}),
    ...(options.metrics ? { metrics: `http://${options.metrics}/metrics` } : {}),
    encryptedPayloads: Boolean(settings.codec),
  });
  try {
    await worker.run();
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, drain);
    await connection.close();
  }
  logger.info('worker stopped');
}

/**
 * Must run before the first connection: the Runtime is a per-process singleton. Signals are handled
 * here rather than by the SDK so the drain is logged and a repeated signal is ignored.
 */
function installRuntime(format: LogFormat, metricsAddress?: string): Logger {
  // The SDK's own exporter: worker, workflow, activity and poller metrics, prefixed `temporal_`.
  const metrics = metricsAddress ? { metrics: { prometheus: { bindAddress: metricsAddress } } } : {};
  if (format === 'text') {
    const logger = new DefaultLogger('INFO');
    Runtime.install({ logger, shutdownSignals: [], telemetryOptions: { ...metrics } });
    return logger;
  }
  const logger = new DefaultLogger('INFO', writeJsonLine);
  Runtime.install({
    logger,
    shutdownSignals: [],
    // Without forwarding, the native core prints its own warnings as plain text.
    telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} }, ...metrics },
  });
  return logger;
}

/** `ip:port` or `[ipv6]:port` (no host names): what the exporter binds; a bad one would fail inside the native core. */
function requireBindAddress(value: string): void {
  const match = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port < 1 || port > 65535)
    throw new UsageError(`--metrics takes an IP address and a port, e.g. 127.0.0.1:9464 (got "${value}")`);
}

function writeJsonLine({ level, message, meta, timestampNanos }: LogEntry): void {
  const time = new Date(Number(timestampNanos / 1_000_000n)).toISOString();
  const fields = { time, level: level.toLowerCase(), message };
  let line: string;
  try {
    // The fixed fields lead each line, and no meta key can overwrite them.
    line = JSON.stringify({ ...fields, ...meta, ...fields }, jsonValue);
  } catch {
    // A circular meta value must not lose the line itself.
    line = JSON.stringify(fields);
  }
  process.stdout.write(`${line}\n`);
}

/** Errors would serialise as `{}` and bigints would throw. */
function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack, cause: value.cause };
  }
  return value;
}
