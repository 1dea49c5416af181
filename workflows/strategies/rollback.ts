/**
 * Rollback: put prod back to the state it had before an earlier deploy, from that deploy's backup.
 * The current prod is backed up first, so a rollback can itself be rolled back, and the backup it
 * restores from stays: rolling back twice to the same deploy gives the same prod.
 */
import { type Plan, withAttempts } from '../plan.js';
import type { DeployInput } from '../types.js';
import { dropBackup, restoreProd, steps } from './common.js';

export function planRollback(input: DeployInput): Plan {
  const { prod } = input.targets;
  const which = input.rollbackTo ? `deploy ${input.rollbackTo}` : `the latest deploy to "${input.env}"`;
  return withAttempts({
    strategy: 'rollback',
    rationale: `restore "${prod}" to its state before ${which}, from that deploy's backup`,
    steps: steps(
      {
        id: 'find',
        activity: 'findBackup',
        title: `Find the backup taken by ${which}`,
        touches: 'nothing',
        args: { prodTarget: prod },
      },
      {
        id: 'backup',
        activity: 'backupProd',
        title: `Back up the current "${prod}" relations that the rollback replaces`,
        touches: 'backup',
        args: { prodTarget: prod, operation: 'rollback' },
        compensation: dropBackup(input),
      },
      {
        id: 'restore',
        activity: 'restoreBackup',
        title: `Restore those relations of "${prod}" from the backup in one transaction`,
        touches: 'prod',
        args: { prodTarget: prod },
        compensation: restoreProd(input),
      },
      {
        id: 'verify',
        activity: 'verifyRestore',
        title: `Verify "${prod}" matches the backup (row count and checksum per relation)`,
        touches: 'nothing',
        args: { prodTarget: prod },
      },
    ),
  });
}
