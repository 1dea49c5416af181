/** Every strategy on a real PostgreSQL started by the test run. */
import { strategyMatrix } from './scenarios.js';

// A failing audit never reaches the adapter; on PostgreSQL it is checked once, for the swap.
strategyMatrix('postgres', 'test-postgres', ['blue-green', 'clone-back', 'wap', 'wac'], ['blue-green']);
