/** Every strategy, rollback and the raw layer on DuckDB (the embedded default). */
import { incrementalAndRollback, mirrorLayer, strategyMatrix } from './scenarios.js';

// wac on DuckDB has its own file (deploy-wac.test.ts), which also records the replay histories.
strategyMatrix('duckdb', 'test-duckdb', ['blue-green', 'clone-back', 'wap']);
incrementalAndRollback('duckdb', 'test-duckdb');
mirrorLayer('duckdb', 'test-duckdb');
