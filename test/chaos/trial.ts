/**
 * One chaos trial: a fresh copy of the example on one engine, a clean baseline deploy, new source
 * rows, then a deploy with one fault fired at one point of its plan, a new worker where the old one
 * is gone, and the invariants checked when the deploy ends. Every check reads the warehouse and the
 * history directly (plain DuckDB/pg clients, raw history events), never through the adapter under test.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { type Client, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { execa, type ResultPromise } from 'execa';
import { BACKUP_LOCATION_PREFIX } from '../../activities/warehouses/adapter.js';
import { deployResult, newDeployId, startDeploy } from '../../client/deploys.js';
import { prepareDeploy } from '../../client/preflight.js';
import { appendRawOrders } from '../../examples/jaffle_shop/raw-data.js';
import { createExampleWorkspace, type ExampleWorkspace } from '../../examples/jaffle_shop/workspace.js';
import { statusKey } from '../../workflows/search-attributes.js';
import type { DeployResult, DeployStatus } from '../../workflows/types.js';
import { createDatabase, dropDatabase, type PostgresServer } from '../support/postgres.js';
import { scratchDir } from '../support/scratch.js';
import { listSchemas, look, type RelationSnapshot, snapshotSchema } from '../support/warehouse.js';
import { type Fault, planSteps, type TrialSpec } from './faults.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const PROD = 'analytics';
/** Schemas a deploy of the example may leave besides backups: sources, prod and the build locations. */
const KNOWN_SCHEMAS = new Set(['raw', PROD, 'analytics_staging', 'analytics_audit', 'main', 'public']);
const NEW_ORDERS = 40;

/** Where trials run: a Temporal server and namespace, the workflow bundle, PostgreSQL, a scratch folder. */
export interface ChaosEnvironment {
  client: Client;
  address: string;
  namespace: string;
  bundlePath: string;
  postgres: PostgresServer;
  scratchRoot: string;
  /** Worker logs go here, one file per worker, for a failing trial's post-mortem. */
  logDir: string;
  /** How long a faulted deploy may take before the trial calls it hung. @default 10 minutes */
  trialTimeoutMs?: number;
}

export type TrialStatus = DeployStatus | 'hung' | 'setup-failed';

export interface TrialOutcome {
  spec: TrialSpec;
  status: TrialStatus;
  /** The fault's own report of where it fired; undefined when the deploy ended before its point. */
  fired?: string;
  /** Broken invariants, one line each; empty when the trial passed. */
  breaks: string[];
  reason?: string;
  deployId?: string;
  seconds: number;
}

type WorkerProcess = ResultPromise<{ detached: true; reject: false; stdin: 'ignore'; all: true }>;
/** Boxed: an execa process is a promise, and an async function returning one would wait for its exit. */
interface Started {
  process: WorkerProcess;
}

interface Workers {
  all: WorkerProcess[];
  start(fault?: Fault): Promise<Started>;
  fired: Promise<Record<string, unknown>>;
  killAll(): Promise<void>;
}

function workersFor(env: ChaosEnvironment, spec: TrialSpec, taskQueue: string): Workers {
  const all: WorkerProcess[] = [];
  let onFired: (event: Record<string, unknown>) => void = () => {};
  const fired = new Promise<Record<string, unknown>>((resolve) => (onFired = resolve));
  return {
    all,
    fired,
    async start(fault?: Fault) {
      const log = join(env.logDir, `seed${spec.seed}-trial${spec.index}-worker${all.length + 1}.log`);
      const worker = execa('node', ['--import', 'tsx', join(ROOT, 'test/chaos/worker.ts')], {
        cwd: ROOT,
        detached: true,
        reject: false,
        stdin: 'ignore',
        all: true,
        env: {
          TEMPORAL_ADDRESS: env.address,
          TEMPORAL_NAMESPACE: env.namespace,
          DBT_DEPLOY_TASK_QUEUE: taskQueue,
          CHAOS_BUNDLE: env.bundlePath,
          DBT_SEND_ANONYMOUS_USAGE_STATS: 'false',
          DO_NOT_TRACK: '1',
          ...(fault ? { CHAOS_FAULT: JSON.stringify(fault) } : {}),
        },
      }) as WorkerProcess;
      all.push(worker);
      const logFile = createWriteStream(log);
      worker.all.pipe(logFile);
      const ready = new Promise<void>((resolve, reject) => {
        let buffered = '';
        const lines: string[] = [];
        worker.all.on('data', (chunk: Buffer) => {
          buffered += chunk.toString();
          const parts = buffered.split('\n');
          buffered = parts.pop() ?? '';
          for (const line of parts) {
            lines.push(line);
            if (!line.startsWith('{"chaos"')) continue;
            const event = JSON.parse(line) as Record<string, unknown>;
            if (event['chaos'] === 'ready') resolve();
            if (event['chaos'] === 'fired') onFired(event);
          }
        });
        void worker.then(() => {
          reject(new Error(`chaos worker exited before it was ready: ${lines.slice(-3).join(' ')}`));
        });
      });
      await ready;
      return { process: worker };
    },
    async killAll() {
      for (const worker of all) signalGroup(worker, 'SIGKILL');
      await Promise.all(all);
    },
  };
}

function signalGroup(worker: WorkerProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-worker.pid!, signal);
  } catch {
    // The group is gone already.
  }
}

async function withTimeout<T>(ms: number, work: Promise<T>): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runTrial(env: ChaosEnvironment, spec: TrialSpec): Promise<TrialOutcome> {
  const started = Date.now();
  const envName = `t${spec.index}`;
  const taskQueue = `chaos-${spec.seed}-${spec.index}-${randomBytes(3).toString('hex')}`;
  const workers = workersFor(env, spec, taskQueue);
  const outcome = (status: TrialStatus, rest: Partial<TrialOutcome> = {}): TrialOutcome => ({
    spec,
    status,
    breaks: [],
    seconds: Math.round((Date.now() - started) / 1000),
    ...rest,
  });
  const database = `chaos_${spec.seed}_${spec.index}_${randomBytes(2).toString('hex')}`;
  await mkdir(env.logDir, { recursive: true });
  try {
    const dir = join(await scratchDir(`chaos-${spec.index}-`, env.scratchRoot), 'jaffle_shop');
    const project =
      spec.engine === 'duckdb'
        ? await createExampleWorkspace(dir)
        : await createExampleWorkspace(dir, { postgres: await createDatabase(env.postgres, database) });
    await writeFile(
      join(project.dir, 'deploy.yml'),
      [
        `strategy: ${spec.strategy}`,
        'environments:',
        `  ${envName}: {target: prod, staging_target: staging, audit_target: audit}`,
        'publish: {tags: [mart, utils]}',
        'backups: {keep: 3}',
        // Half the default: a killed or frozen worker's step is retried sooner, and the trial ends sooner.
        'heartbeat_timeout: 10s',
        '',
      ].join('\n'),
    );
    const prepared = prepareDeploy({ projectDir: project.dir, env: envName });
    const baselineId = newDeployId(envName);
    let faultId = newDeployId(envName);
    while (faultId === baselineId) faultId = newDeployId(envName);
    const fault: Fault = {
      kind: spec.kind,
      deployId: faultId,
      stepId: spec.stepId,
      delayMs: spec.delayMs,
      ...(spec.when ? { when: spec.when } : {}),
      ...(spec.persistent !== undefined ? { persistent: spec.persistent } : {}),
    };
    const { process: first } = await workers.start(fault);

    const baseline = await deployResult(
      await startDeploy(env.client, { ...prepared.input, deployId: baselineId }, taskQueue),
    );
    if (baseline.status !== 'published')
      return outcome('setup-failed', { reason: `baseline deploy ${baseline.status}: ${baseline.reason}` });
    await appendRawOrders(project.raw, { orders: NEW_ORDERS });
    const before = await observe(project);

    const handle = await startDeploy(env.client, { ...prepared.input, deployId: faultId }, taskQueue);
    // The reaction (a new worker, a thaw) runs on its own; the deploy may end before it is done.
    void watchFault(env, spec, workers, first, handle);
    const ended = await withTimeout(env.trialTimeoutMs ?? 600_000, deployResult(handle));
    const fired = await withTimeout(1, workers.fired);
    const firedAt = fired === 'timeout' ? undefined : describeFired(fired);
    if (ended === 'timeout') {
      await handle.terminate('chaos trial timed out').catch(() => undefined);
      await workers.killAll();
      return outcome('hung', {
        deployId: faultId,
        ...(firedAt ? { fired: firedAt } : {}),
        breaks: [`did not end within ${(env.trialTimeoutMs ?? 600_000) / 1000} s`],
      });
    }
    // Every worker of the trial goes before the checks: a DuckDB file has one writer at a time.
    await workers.killAll();
    const breaks = await checkInvariants(spec, project, handle, ended, before);
    return outcome(ended.status, {
      deployId: faultId,
      breaks,
      ...(firedAt ? { fired: firedAt } : {}),
      ...(ended.reason ? { reason: ended.reason } : {}),
    });
  } catch (error) {
    return outcome('setup-failed', { reason: error instanceof Error ? error.message : String(error) });
  } finally {
    await workers.killAll();
    if (spec.engine === 'postgres') await dropDatabase(env.postgres, database).catch(() => undefined);
  }
}

/** Reacts to the fault: a new worker where the old one died or froze; the frozen one resumes later. */
async function watchFault(
  env: ChaosEnvironment,
  spec: TrialSpec,
  workers: Workers,
  first: WorkerProcess,
  handle: WorkflowHandle,
): Promise<Record<string, unknown>> {
  const event = await workers.fired;
  if (spec.kind === 'kill-worker') {
    await first;
    await workers.start();
  }
  if (spec.kind === 'stall') {
    await workers.start();
    // Frozen past the heartbeat timeout the running step was scheduled with, then thawed: a zombie
    // worker that wakes up after its step was given to another.
    await sleep((await heartbeatTimeoutMs(handle)) + 5_000);
    signalGroup(first, 'SIGCONT');
  }
  return event;
}

function describeFired(event: Record<string, unknown>): string {
  const { kind, activity, stepId, attempt, when, dbtAlive } = event;
  const extra = [
    attempt !== undefined ? `attempt ${String(attempt)}` : '',
    when ? String(when) : '',
    dbtAlive === false ? 'dbt had ended' : '',
  ]
    .filter(Boolean)
    .join(', ');
  return `${String(kind)} in ${String(stepId)} (${String(activity)})${extra ? `, ${extra}` : ''}`;
}

/** The heartbeat timeout of the activity scheduled last: the configured value, read from history. */
async function heartbeatTimeoutMs(handle: WorkflowHandle): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  for (const event of [...events].reverse()) {
    const timeout = event.activityTaskScheduledEventAttributes?.heartbeatTimeout;
    if (timeout) return Number(timeout.seconds ?? 0) * 1000 + Math.round((timeout.nanos ?? 0) / 1e6);
  }
  return 60_000;
}

interface Observed {
  prod: Record<string, RelationSnapshot>;
  schemas: string[];
}

async function observe(project: ExampleWorkspace): Promise<Observed> {
  return { prod: await snapshotSchema(project, PROD), schemas: await listSchemas(project) };
}

const backupsOf = (schemas: string[]) => schemas.filter((s) => s.startsWith(BACKUP_LOCATION_PREFIX)).sort();

/** The invariants of the issue; each broken one is one line of the result. */
export async function checkInvariants(
  spec: TrialSpec,
  project: ExampleWorkspace,
  handle: WorkflowHandle,
  result: DeployResult,
  before: Observed,
): Promise<string[]> {
  const breaks: string[] = [];
  const events = (await handle.fetchHistory()).events ?? [];

  // Exactly one terminal status, and every record of it agrees.
  const closes = events.filter(
    (e) =>
      e.workflowExecutionCompletedEventAttributes ||
      e.workflowExecutionFailedEventAttributes ||
      e.workflowExecutionTimedOutEventAttributes ||
      e.workflowExecutionTerminatedEventAttributes ||
      e.workflowExecutionCanceledEventAttributes ||
      e.workflowExecutionContinuedAsNewEventAttributes,
  );
  if (closes.length !== 1) breaks.push(`history has ${closes.length} close events`);
  const completed = Boolean(closes[0]?.workflowExecutionCompletedEventAttributes);
  if (completed !== (result.status === 'published'))
    breaks.push(`workflow ${completed ? 'completed' : 'failed'} but the result says ${result.status}`);
  const description = await handle.describe();
  const recorded = description.typedSearchAttributes.get(statusKey);
  if (recorded !== result.status)
    breaks.push(`search attribute status ${recorded} ≠ result ${result.status}`);
  if (result.decision?.kind === 'aborted' && result.status === 'published')
    breaks.push('the decision says aborted but the deploy published');
  if (result.report) {
    const report = await readFile(result.report.replace(/\.md$/, '.json'), 'utf8').catch(() => undefined);
    const status = report ? (JSON.parse(report) as DeployResult).status : undefined;
    if (status !== result.status)
      breaks.push(`report.json says ${status ?? 'nothing'}, result ${result.status}`);
  }

  // Exactly one publish: every step that changes prod completed once (at most once when not published).
  const prodSteps = planSteps(spec.engine, spec.strategy)
    .filter((s) => s.touches === 'prod')
    .map((s) => s.id);
  const scheduled = new Map<string, string>();
  const completions = new Map<string, number>();
  for (const event of events) {
    const attrs = event.activityTaskScheduledEventAttributes;
    if (attrs) {
      const [payload] = attrs.input?.payloads ?? [];
      const request = payload
        ? defaultPayloadConverter.fromPayload<{ stepId?: string }>(payload as Payload)
        : {};
      scheduled.set(String(event.eventId), request?.stepId ?? '');
    }
    const done = event.activityTaskCompletedEventAttributes;
    if (done) {
      const stepId = scheduled.get(String(done.scheduledEventId)) ?? '';
      completions.set(stepId, (completions.get(stepId) ?? 0) + 1);
    }
  }
  for (const stepId of prodSteps) {
    const count = completions.get(stepId) ?? 0;
    if (result.status === 'published' ? count !== 1 : count > 1)
      breaks.push(`prod step "${stepId}" completed ${count} times`);
  }

  // Prod holds the new state when published, the old one otherwise, by checksum.
  const after = await observe(project);
  if (result.status === 'published') {
    const names = (s: Record<string, unknown>) => Object.keys(s).sort().join(',');
    if (names(after.prod) !== names(before.prod))
      breaks.push(`prod relations changed: ${names(before.prod)} → ${names(after.prod)}`);
    // clone-back rebuilds only the selected models (state:modified+ and the publish tags) on a clone
    // of prod: the raw layer it reads is prod's, so new source rows are not expected in it.
    const coverage = spec.strategy === 'clone-back' ? undefined : await orderCoverage(project);
    if (
      coverage &&
      (coverage.rows !== coverage.sources || coverage.distinct !== coverage.sources || coverage.missing > 0)
    )
      breaks.push(`prod fct_orders does not hold each source order once: ${JSON.stringify(coverage)}`);
    // PostgreSQL's blue-green swap renames the build location into prod: nothing is left to compare.
    if (!(spec.engine === 'postgres' && spec.strategy === 'blue-green')) {
      const built = await snapshotSchema(
        project,
        spec.strategy === 'wap' ? 'analytics_audit' : 'analytics_staging',
      );
      for (const [name, relation] of Object.entries(after.prod))
        if (built[name] && built[name].md5 !== relation.md5)
          breaks.push(
            `prod ${name} differs from the audited build (md5 ${relation.md5} ≠ ${built[name].md5})`,
          );
    }
  } else if (!isDeepStrictEqual(after.prod, before.prod)) {
    const changed = Object.keys({ ...before.prod, ...after.prod }).filter(
      (n) => !isDeepStrictEqual(before.prod[n], after.prod[n]),
    );
    breaks.push(`prod is not the old state after ${result.status}: ${changed.join(', ')} changed`);
  }

  // Backups as the policy says: a published deploy adds its own (keep 3 > 2), anything else adds none.
  const [was, is] = [backupsOf(before.schemas), backupsOf(after.schemas)];
  const added = is.filter((s) => !was.includes(s));
  const lost = was.filter((s) => !is.includes(s));
  if (lost.length > 0) breaks.push(`backups lost: ${lost.join(', ')}`);
  const undoFailed = result.status === 'failed' && /rollback failed/.test(result.reason ?? '');
  if (result.status === 'published') {
    const own = result.backup?.location.schema;
    if (result.backup?.deployId !== result.deployId) breaks.push('the result names no backup of this deploy');
    if (!own || !is.includes(own))
      breaks.push(`this deploy's backup ${own ?? '(none)'} is not in the warehouse`);
    const extra = added.filter((s) => s !== own && !s.startsWith(`${own}__`));
    if (extra.length > 0) breaks.push(`backups besides this deploy's: ${extra.join(', ')}`);
  } else if (!undoFailed && added.length > 0) {
    breaks.push(`backups left after ${result.status}: ${added.join(', ')}`);
  }

  // No stray schemas: only sources, prod, build locations and backups.
  const stray = after.schemas.filter((s) => !KNOWN_SCHEMAS.has(s) && !s.startsWith(BACKUP_LOCATION_PREFIX));
  if (stray.length > 0) breaks.push(`stray schemas: ${stray.join(', ')}`);
  return breaks;
}

async function orderCoverage(
  project: ExampleWorkspace,
): Promise<{ sources: number; rows: number; distinct: number; missing: number }> {
  const [row] = await look(project, (read) =>
    read(
      `SELECT (SELECT count(*) FROM raw.orders) AS s, (SELECT count(*) FROM ${PROD}.fct_orders) AS n, ` +
        `(SELECT count(DISTINCT order_id) FROM ${PROD}.fct_orders) AS d, ` +
        `(SELECT count(*) FROM raw.orders o WHERE NOT EXISTS (SELECT 1 FROM ${PROD}.fct_orders f WHERE f.order_id = o.id)) AS missing`,
    ),
  );
  return {
    sources: Number(row?.['s']),
    rows: Number(row?.['n']),
    distinct: Number(row?.['d']),
    missing: Number(row?.['missing']),
  };
}
