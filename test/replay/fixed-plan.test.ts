/**
 * A running deploy's plan is fixed at its start: replaying its history on a worker whose planning code
 * has changed must still work. The workflows are bundled with different capabilities (DuckDB can
 * "swap schemas", so blue-green on DuckDB would now plan a swap); a history recorded since plans are
 * carried in history replays on that bundle, and one recorded before, when the workflow planned on
 * every replay, fails on it with non-determinism, which is the failure this design prevents.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import webpack from 'webpack';
import { beforeAll, describe, expect, it } from 'vitest';
import { CAPABILITIES } from '../../activities/warehouses/capabilities.js';
import { planDeploy } from '../../workflows/strategies/index.js';
import { WORKFLOWS_PATH } from '../../worker/plugin.js';
import { quietRuntime } from '../../worker/worker.js';
import { deployInput } from '../unit/deploy-input.js';
import { CAPABILITIES as UPGRADED } from './upgraded-capabilities.js';

const HISTORIES = join(import.meta.dirname, 'histories');
const UPGRADE = join(import.meta.dirname, 'upgraded-capabilities.ts');
const history = (file: string): unknown => JSON.parse(readFileSync(join(HISTORIES, file), 'utf8'));

describe('a plan fixed at the start survives a worker upgrade that changes plans', () => {
  let upgraded: { code: string };

  beforeAll(async () => {
    quietRuntime();
    upgraded = await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} },
      webpackConfigHook: (config) => ({
        ...config,
        plugins: [
          ...(config.plugins ?? []),
          // Every import of the capabilities module, except the upgrade's own, gets the upgrade.
          new webpack.NormalModuleReplacementPlugin(/warehouses\/capabilities(\.js)?$/, (resource) => {
            if (resource.context !== dirname(UPGRADE)) resource.request = UPGRADE;
          }),
        ],
      }),
    });
  }, 240_000);

  it('the upgrade really changes the plan: blue-green on DuckDB swaps instead of backing up and copying', () => {
    const input = deployInput({ strategy: 'blue-green' });
    const today = planDeploy(input, CAPABILITIES.duckdb).steps.map((s) => s.activity);
    const after = planDeploy(input, UPGRADED.duckdb).steps.map((s) => s.activity);
    expect(today).toContain('publishRelations');
    expect(after).toContain('swapSchemas');
    expect(after).not.toEqual(today);
  });

  it('a deploy that carried its plan replays on the upgraded worker', async () => {
    await expect(
      Worker.runReplayHistory(
        { workflowBundle: upgraded },
        history('duckdb-blue-green-published.json'),
        'duckdb-blue-green-published',
      ),
    ).resolves.toBeUndefined();
  });

  it('a deploy from before, which planned on every replay, breaks on the upgraded worker', async () => {
    await expect(
      Worker.runReplayHistory({ workflowBundle: upgraded }, history('blue-green-published.json'), 'old'),
    ).rejects.toMatchObject({ name: 'DeterminismViolationError' });
  });
});
