/**
 * Replays recorded deploy histories against today's workflow code. A change that would make a
 * running deploy take a different path (non-determinism) fails here before it reaches a worker.
 * Histories come from real runs (the workflow tests save them under .test-runs/histories).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { quietRuntime } from '../../worker/worker.js';

const HISTORIES = join(import.meta.dirname, 'histories');
const files = readdirSync(HISTORIES).filter((f) => f.endsWith('.json'));

describe('replay of recorded deploy histories', () => {
  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  it.each(files)('%s replays without non-determinism', async (file) => {
    quietRuntime();
    // Passed as parsed JSON: the worker converts it with its own copy of the protobuf runtime.
    const history: unknown = JSON.parse(readFileSync(join(HISTORIES, file), 'utf8'));
    await expect(
      Worker.runReplayHistory({ workflowBundle: { codePath: inject('workflowBundlePath') } }, history, file),
    ).resolves.toBeUndefined();
  });
});
