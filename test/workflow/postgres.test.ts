/** Every strategy, rollback and the raw layer on a real PostgreSQL started by the test run. */
import { incrementalAndRollback, mirrorLayer, strategyMatrix } from './scenarios.js';

strategyMatrix('postgres', 'test-postgres');
incrementalAndRollback('postgres', 'test-postgres');
mirrorLayer('postgres', 'test-postgres');
