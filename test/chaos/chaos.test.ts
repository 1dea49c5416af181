/**
 * The chaos run's fixed-seed subset for CI: each fault kind once, both engines, run side by side.
 * Each trial deploys the example twice (a clean baseline, then the faulted deploy) with real workers,
 * dbt and warehouses, and fails when any invariant of docs/reliability.md breaks. The full run is
 * `npm run chaos`.
 */
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ROOT } from '../support/harness.js';
import { drawTrial, describeFault, type TrialSpec } from './faults.js';
import { type ChaosEnvironment, runTrial } from './trial.js';

const SEED = 20261130;
const TRIALS: TrialSpec[] = [
  drawTrial(SEED, 0, { engine: 'duckdb', kind: 'kill-worker' }),
  drawTrial(SEED, 1, { engine: 'postgres', kind: 'stall' }),
  drawTrial(SEED, 2, { engine: 'postgres', kind: 'kill-dbt' }),
  drawTrial(SEED, 3, { engine: 'duckdb', kind: 'warehouse-error' }),
];

describe('chaos: one fault of each kind, both engines', () => {
  let connection: Connection;
  let env: ChaosEnvironment;

  beforeAll(async () => {
    connection = await Connection.connect({ address: inject('temporalAddress') });
    env = {
      client: new Client({ connection, namespace: 'test-chaos' }),
      address: inject('temporalAddress'),
      namespace: 'test-chaos',
      bundlePath: inject('workflowBundlePath'),
      postgres: inject('postgres'),
      scratchRoot: inject('scratchRoot'),
      logDir: join(ROOT, '.test-runs', 'chaos'),
      trialTimeoutMs: 420_000,
    };
  });
  afterAll(async () => connection?.close());

  it.concurrent.each(TRIALS.map((spec) => [`${spec.engine} ${spec.strategy}: ${describeFault(spec)}`, spec]))(
    '%s',
    async (_name, spec) => {
      const outcome = await runTrial(env, spec as TrialSpec);
      expect(outcome.status, outcome.reason).not.toMatch(/hung|setup-failed/);
      expect(outcome.fired, 'the fault fired').toBeDefined();
      expect(outcome.breaks).toEqual([]);
    },
    480_000,
  );
});
