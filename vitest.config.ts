import { defineConfig } from 'vitest/config';
import LongestFirst from './test/support/sequencer.js';

export default defineConfig({
  test: {
    // `npm run record-histories` runs only the recorder, which is no test of its own.
    include: process.env['RECORD_HISTORIES'] ? ['test/replay/record-histories.ts'] : ['test/**/*.test.ts'],
    // One Temporal dev server for the whole run; every test file gets its own task queue.
    globalSetup: ['test/support/global-setup.ts'],
    // Each test file removes the folders and databases it made, also when a test fails.
    setupFiles: ['test/support/cleanup.ts'],
    // Long files first, so the run does not end with one worker finishing a long file alone.
    sequence: { sequencer: LongestFirst },
    pool: 'forks',
    // dbt is CPU-bound and the machine has 2 cores: more parallel files only slow each other down.
    maxWorkers: 2,
    testTimeout: 240_000,
    hookTimeout: 240_000,
  },
});
