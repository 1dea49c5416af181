/**
 * Runs the longest test files first. The workers take files in this order, so a long file that
 * starts last keeps one worker busy alone at the end while the other is idle. Vitest's own order
 * needs a cache of earlier durations, which a clean clone has not: it then runs larger files first,
 * and the 7-line file that ran every DuckDB scenario (350 s) started last.
 *
 * The seconds are one full run's on the 2-core machine (rounded; only the order matters). A file not
 * listed runs after the listed ones, in vitest's own order. List a new file here once it takes more
 * than about 30 s.
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const SECONDS: Record<string, number> = {
  'test/workflow/bigquery.test.ts': 240,
  'test/chaos/chaos.test.ts': 130,
  'test/workflow/duckdb-strategies.test.ts': 170,
  'test/workflow/abort-every-step.test.ts': 160,
  'test/workflow/postgres-strategies.test.ts': 150,
  'test/inputs/bad-runtime.test.ts': 125,
  'test/cli/cli.test.ts': 90,
  'test/workflow/operations.test.ts': 88,
  'test/hosts/many-hosts.test.ts': 75,
  'test/workflow/first-hour.test.ts': 75,
  'test/workflow/duckdb-mirror.test.ts': 70,
  'test/workflow/deploy-wac.test.ts': 65,
  'test/workflow/postgres-mirror.test.ts': 65,
  'test/workflow/undo.test.ts': 65,
  'test/workflow/audits-duckdb.test.ts': 55,
  'test/workflow/audits-postgres.test.ts': 55,
  'test/workflow/worker-crash.test.ts': 50,
  'test/inputs/secrets.test.ts': 55,
  'test/snowflake/fakesnow.test.ts': 50,
  'test/workflow/duckdb-incremental.test.ts': 50,
  'test/package/package.test.ts': 50,
  'test/secure/secure.test.ts': 45,
  'test/workflow/postgres-incremental.test.ts': 40,
  'test/ops/notify.test.ts': 30,
  'test/ui/temporal-ui.test.ts': 30,
  'test/ops/codec.test.ts': 30,
  'test/inputs/bad-inputs.test.ts': 28,
};

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const seconds = (file: TestSpecification) => SECONDS[relative(root, file.moduleId)] ?? 0;
    // Array.prototype.sort is stable: unlisted files keep vitest's order among themselves.
    return (await super.sort(files)).sort((a, b) => seconds(b) - seconds(a));
  }
}
