import { defineConfig } from 'vitest/config';

// The live suites run against real warehouses, only when asked (`npm run test:bigquery-live`): they are
// not part of `npm test`, and without credentials they report their tests as skipped.
export default defineConfig({
  test: {
    include: ['test/live/**/*.live.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 900_000,
    hookTimeout: 600_000,
  },
});
