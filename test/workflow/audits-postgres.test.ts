/** The diff and the audit rules through blue-green deploys (a schema swap) on PostgreSQL (see audit-scenarios.ts). */
import { auditScenario } from './audit-scenarios.js';

auditScenario('postgres', 'test-audits-postgres', 'blue-green');
