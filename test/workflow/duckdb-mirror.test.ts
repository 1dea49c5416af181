/** The raw layer (mirror) on DuckDB. */
import { mirrorLayer } from './scenarios.js';

mirrorLayer('duckdb', 'test-duckdb-mirror');
