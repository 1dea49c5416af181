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
    // A test file runs in a process an earlier file used: the Temporal SDK, the adapters and dbt's warm
    // fork server (activities/dbt-process.ts) are loaded once per worker, not once per file (about
    // 4 s of CPU per file that deploys). Each file still makes its own project, worker and task queue,
    // and removes what it made (setupFiles run for every file).
    isolate: false,
    // dbt is CPU-bound and the machine has 2 cores: more parallel files only slow each other down.
    // VITEST_MAX_WORKERS=3 overrides it, to measure on another machine.
    maxWorkers: 2,
    testTimeout: 240_000,
    hookTimeout: 240_000,
  },
});
