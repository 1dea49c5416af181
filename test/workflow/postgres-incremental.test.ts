/** Incremental models across three blue-green deploys on PostgreSQL, then rollback. */
import { incrementalAndRollback } from './scenarios.js';

incrementalAndRollback('postgres', 'test-postgres-incremental');
