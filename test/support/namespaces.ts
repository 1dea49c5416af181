/** One namespace per test file that deploys: workflow ids are per namespace, so files cannot collide. */
export const TEST_NAMESPACES = [
  'test-cli',
  'test-workflow',
  'test-duckdb',
  'test-postgres',
  'test-ui',
  'test-crash',
  'test-ops',
  'test-snowflake',
] as const;
export type TestNamespace = (typeof TEST_NAMESPACES)[number];
