/**
 * How long the last `npm test` took, read from what it leaves in .test-runs/: its setup's output
 * (setup.txt) and vitest's JSON report, with the files that took longest: the test suite's table of
 * issue 11 (a cold `.ci/run` is setup plus tests on a clean clone). It does not run the suite itself
 * (about 14 minutes on 2 cores): run `npm test` first. Prints; asserts nothing.
 *
 *   npm test && npx tsx bench/test-suite.ts
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { duration, printTable } from './support/table.js';

const ROOT = join(import.meta.dirname, '..');
const REPORT = join(ROOT, '.test-runs', 'vitest-report.json');
const SETUP = join(ROOT, '.test-runs', 'setup.txt');
const COMMAND = 'npm test && npx tsx bench/test-suite.ts';

interface Report {
  startTime: number;
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  testResults: Array<{ name: string; startTime: number; endTime: number }>;
}

if (!existsSync(REPORT)) {
  console.log(`No test report at ${relative(ROOT, REPORT)}: run \`npm test\` first (\`${COMMAND}\`).`);
} else {
  const report = JSON.parse(readFileSync(REPORT, 'utf8')) as Report;
  const files = report.testResults.map((file) => ({
    name: relative(ROOT, file.name),
    ms: file.endTime - file.startTime,
  }));
  const end = Math.max(...report.testResults.map((file) => file.endTime));
  const sum = files.reduce((total, file) => total + file.ms, 0);
  // scripts/setup ends with "setup: ready in <seconds>s".
  const setup = existsSync(SETUP) ? /ready in (\d+)s/.exec(readFileSync(SETUP, 'utf8'))?.[1] : undefined;
  printTable(
    `The last \`npm test\` (started ${new Date(report.startTime).toISOString()}), from its JSON report`,
    COMMAND,
    [
      'setup',
      'tests (first file start to last file end)',
      'sum of the files’ times',
      'files',
      'passed',
      'failed',
      'skipped',
    ],
    [
      [
        setup ? `${setup} s` : '-',
        duration(end - Math.min(...report.testResults.map((file) => file.startTime))),
        duration(sum),
        String(files.length),
        String(report.numPassedTests),
        String(report.numFailedTests),
        String(report.numPendingTests),
      ],
    ],
  );
  printTable(
    'Its ten longest files',
    COMMAND,
    ['file', 'time'],
    files
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 10)
      .map((file) => [file.name, duration(file.ms)]),
  );
}
