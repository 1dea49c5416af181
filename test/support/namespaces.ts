/** One namespace per test file that deploys: workflow ids are per namespace, so files cannot collide. */
export const TEST_NAMESPACES = [
  'test-cli',
  'test-workflow',
  'test-duckdb',
  'test-postgres',
  'test-ui',
  'test-crash',
  'test-ops',
  'test-abort',
  'test-undo',
  'test-histories',
  'test-chaos',
  'test-inputs',
  'test-secrets',
  'test-bigquery',
  'test-package',
  'test-secure',
  'test-hosts',
  'test-snowflake',
  'test-audits-duckdb',
  'test-audits-postgres',
] as const;
export type TestNamespace = (typeof TEST_NAMESPACES)[number];
