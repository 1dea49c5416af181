/**
 * A worker upgrade that changes plans: the capabilities of today's code, except that DuckDB now "swaps
 * schemas", so a blue-green plan on DuckDB has a swap step where it had a backup and a publish. Only
 * fixed-plan.test.ts bundles it, in place of activities/warehouses/capabilities.
 */
import { CAPABILITIES as TODAY } from '../../activities/warehouses/capabilities.js';

export {
  ENGINES,
  isEngine,
  type Capabilities,
  type Engine,
} from '../../activities/warehouses/capabilities.js';

export const CAPABILITIES: typeof TODAY = { ...TODAY, duckdb: { ...TODAY.duckdb, atomicSwap: 'schema' } };
