/** The raw layer (mirror) on PostgreSQL. */
import { mirrorLayer } from './scenarios.js';

mirrorLayer('postgres', 'test-postgres-mirror');
