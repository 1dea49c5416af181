/**
 * Which backups retention drops. Each kind of operation keeps its own newest `keep`: mirror refreshes
 * and rollbacks take backups too, and counting them with deploys would let a few raw-layer refreshes
 * evict the deploy backups `rollback` restores from.
 */
import type { BackupRef } from '../../../workflows/types.js';

/** `backups` newest first; `protect` names deploy ids that stay whatever their age. */
export function staleBackups(
  backups: BackupRef[],
  env: string,
  keep: number,
  protect: readonly string[] = [],
): BackupRef[] {
  const seen = new Map<string, number>();
  const stale: BackupRef[] = [];
  for (const backup of backups) {
    if (backup.env !== env) continue;
    const operation = backup.operation ?? 'deploy';
    const count = (seen.get(operation) ?? 0) + 1;
    seen.set(operation, count);
    if (count > keep && !protect.includes(backup.deployId)) stale.push(backup);
  }
  return stale;
}
