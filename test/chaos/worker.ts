/**
 * The worker a chaos trial runs: the real deploy worker (real activities, real dbt, real warehouse)
 * with one fault armed for one deploy. Run as `node --import tsx test/chaos/worker.ts`, detached, so
 * this process leads its own process group (its dbt children included). Configured from the
 * environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, DBT_DEPLOY_TASK_QUEUE, CHAOS_BUNDLE (a prebuilt
 * workflow bundle) and CHAOS_FAULT (a `Fault` as JSON; none: a clean worker).
 *
 * Each fault fires from inside at its point, and says so on stdout as `{"chaos":"fired",...}` first:
 * - `kill-worker`: SIGKILL to the whole process group (worker and dbt), as when a machine dies.
 * - `stall`: SIGSTOP to the whole process group: no heartbeats, no progress; the trial resumes it later.
 * - `kill-dbt`: SIGKILL to the next dbt process this worker runs, the worker itself lives on.
 * - `stall-dbt`: SIGSTOP to that dbt process instead (drawn only on request).
 * - `warehouse-error`: a MOCK (named so): the step throws the error a dropped warehouse connection
 *   gives, before or after its real work (after: the work committed, the answer was lost), on the
 *   first attempt only or on every attempt.
 */
import { execFileSync } from 'node:child_process';
import { Context } from '@temporalio/activity';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createActivities, type DeployActivities } from '../../activities/steps.js';
import { createDeployWorker } from '../../worker/worker.js';
import type { Fault } from './faults.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const fault = process.env['CHAOS_FAULT'] ? (JSON.parse(process.env['CHAOS_FAULT']) as Fault) : undefined;
let armed = fault !== undefined;

function say(event: Record<string, unknown>): void {
  // Synchronous: a SIGKILL right after must not lose the line.
  process.stdout.write(`${JSON.stringify({ chaos: 'fired', at: new Date().toISOString(), ...event })}\n`);
}

/** The dbt processes this worker started (its direct children). */
function dbtChildren(): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), '-f', 'dbt'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Fires a process fault `delayMs` after the faulted step starts (if the step ends first, later in the plan). */
function fireProcessFault(f: Fault, activity: string): void {
  const point = { kind: f.kind, stepId: f.stepId, activity, delayMs: f.delayMs };
  switch (f.kind) {
    case 'kill-worker':
      setTimeout(() => {
        say(point);
        process.kill(-process.pid, 'SIGKILL');
      }, f.delayMs);
      return;
    case 'stall':
      setTimeout(() => {
        say(point);
        process.kill(-process.pid, 'SIGSTOP');
      }, f.delayMs);
      return;
    case 'kill-dbt':
    case 'stall-dbt': {
      // From this point on, the next dbt process that runs is killed `delayMs` after it is seen.
      const poll = setInterval(() => {
        const [pid] = dbtChildren();
        if (pid === undefined) return;
        clearInterval(poll);
        setTimeout(() => {
          say({ ...point, dbtPid: pid, dbtAlive: dbtChildren().includes(pid) });
          try {
            process.kill(pid, f.kind === 'kill-dbt' ? 'SIGKILL' : 'SIGSTOP');
          } catch {
            // dbt ended first: the fault missed, which the trial reports.
          }
        }, f.delayMs);
      }, 50);
      return;
    }
    case 'warehouse-error':
      return;
  }
}

function withFault(real: DeployActivities, f: Fault): DeployActivities {
  const wrapped: Record<string, unknown> = {};
  for (const [name, activity] of Object.entries(real)) {
    const run = activity as (request: { stepId: string; input: { deployId: string } }) => Promise<unknown>;
    wrapped[name] = async (request: { stepId: string; input: { deployId: string } }) => {
      const { attempt } = Context.current().info;
      process.stdout.write(
        `${JSON.stringify({ chaos: 'step', deployId: request.input.deployId, stepId: request.stepId, activity: name, attempt })}\n`,
      );
      const ours = request.input.deployId === f.deployId && request.stepId === f.stepId;
      if (!ours) return run(request);
      if (f.kind !== 'warehouse-error') {
        if (armed) {
          armed = false;
          fireProcessFault(f, name);
        }
        return run(request);
      }
      if (attempt > 1 && !f.persistent) return run(request);
      const fail = () => {
        say({ kind: f.kind, stepId: f.stepId, activity: name, attempt, when: f.when });
        // What pg or DuckDB raise when the connection drops: a plain, retryable error.
        throw new Error(`chaos: injected warehouse error in ${name} (connection reset by peer)`);
      };
      if (f.when === 'before') fail();
      await run(request);
      return fail();
    };
  }
  return wrapped as DeployActivities;
}

// Only warnings: a deploy that ends unpublished is an expected outcome here, not an error to print.
Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: ['SIGTERM', 'SIGINT'] });
const real = createActivities();
const { worker, connection } = await createDeployWorker({
  address: env('TEMPORAL_ADDRESS'),
  namespace: env('TEMPORAL_NAMESPACE'),
  taskQueue: env('DBT_DEPLOY_TASK_QUEUE'),
  workflowBundle: { codePath: env('CHAOS_BUNDLE') },
  activities: fault ? withFault(real, fault) : real,
  shutdownGraceTime: '2 seconds',
  // A trial's worker runs one deploy, so a step never waits for a free slot on its host: a host that
  // picks nothing up for 10 s is gone (killed or frozen). The default minute only made trials wait.
  hostLossTimeout: '10 seconds',
});
process.stdout.write(`${JSON.stringify({ chaos: 'ready', pid: process.pid })}\n`);
try {
  await worker.run();
} finally {
  await connection.close();
}
