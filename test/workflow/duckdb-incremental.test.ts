/** Incremental models across three blue-green deploys on DuckDB, then rollback. */
import { incrementalAndRollback } from './scenarios.js';

incrementalAndRollback('duckdb', 'test-duckdb-incremental');
