// Prints vitest's JSON report as one plain line that any CI reader understands.
import { readFileSync } from 'node:fs';

const path = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(path, 'utf8'));
} catch {
  console.log('0 passed, 1 failed (no test report was written)');
  process.exit(1);
}
const skipped = report.numPendingTests + report.numTodoTests;
// A file whose setup (beforeAll) fails reports its tests as skipped, not failed: count the file.
const brokenFiles = report.testResults.filter(
  (file) => file.status === 'failed' && file.assertionResults.every((t) => t.status !== 'failed'),
).length;
const failed = report.numFailedTests + brokenFiles;
const broken = brokenFiles > 0 ? ` (${brokenFiles} test files failed outside any test)` : '';
console.log(`${report.numPassedTests} passed, ${failed} failed, ${skipped} skipped${broken}`);
process.exit(failed > 0 || report.numTotalTests === 0 || report.success === false ? 1 : 0);
