/** Every strategy on DuckDB (the embedded default): publish, a failing audit, a fault after publish, the snapshot. */
import { strategyMatrix } from './scenarios.js';

// wac on DuckDB has its own file (deploy-wac.test.ts), which also records the replay histories.
strategyMatrix('duckdb', 'test-duckdb', ['blue-green', 'clone-back', 'wap']);
