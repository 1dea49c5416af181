/** The diff and the audit rules through wac deploys on DuckDB (see audit-scenarios.ts). */
import { auditScenario } from './audit-scenarios.js';

auditScenario('duckdb', 'test-audits-duckdb', 'wac');
