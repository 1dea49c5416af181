/**
 * The steps that put an earlier prod back: a rollback's find, restore and verify, and the saga's
 * compensations (restore, unswap, drop the backup). Each is safe to run twice.
 */

import { ApplicationFailure } from '@temporalio/common';
import { backupHandle } from '../../workflows/state.js';
import { kindsOf, relationName } from '../warehouses/adapter.js';
import {
  backupIn,
  forgetProdStateBefore,
  listed,
  publishedState,
  pruneBackups,
  putBackProdState,
  requireBackupIn,
  requireRestoreFrom,
  type StepOutcome,
  type StepPaths,
  type StepRequest,
  warehouse,
} from '../step-context.js';

export function restoreSteps(paths: StepPaths) {
  return {
    async findBackup({ input, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const backups = (await warehouse(input, args.prodTarget, (w) => w.listBackups())).filter(
        (b) => b.env === input.env,
      );
      const wanted = input.rollbackTo;
      const found = wanted
        ? backups.find((b) => b.deployId === wanted)
        : backups.find((b) => (b.operation ?? 'deploy') === 'deploy');
      if (!found) {
        const known = backups.map((b) => `${b.deployId} (${b.operation ?? 'deploy'}, ${b.createdAt})`);
        const which = wanted ? `deploy ${wanted}` : `any deploy to "${input.env}"`;
        throw ApplicationFailure.nonRetryable(
          `no backup of ${which} is kept${known.length ? ` (kept: ${known.join(', ')})` : ' (no backups are kept)'}`,
          'BackupNotFound',
        );
      }
      return {
        summary: `backup of ${found.deployId}, taken ${found.createdAt}: ${found.entries.length} relations`,
        // Only the handle: the steps after this read the entries from the backup's manifest.
        state: { restoreFrom: backupHandle(found) },
      };
    },

    async restoreBackup({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const handle = requireRestoreFrom(state);
      const from = await warehouse(input, args.prodTarget, async (w) => {
        const backup = await requireBackupIn(w, handle);
        await w.restore(backup);
        return backup;
      });
      return { summary: `restored ${from.entries.length} relations from ${from.location.schema}` };
    },

    async verifyRestore({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const handle = requireRestoreFrom(state);
      const { from, mismatches, pruned } = await warehouse(input, args.prodTarget, async (w) => {
        const from = await requireBackupIn(w, handle);
        const found: string[] = [];
        const kindOf = await kindsOf(
          w,
          from.entries.map((entry) => entry.prod),
        );
        for (const entry of from.entries) {
          const kind = kindOf(entry.prod);
          if (kind !== entry.kind) {
            found.push(`${relationName(entry.prod)} is ${kind}, the backup had ${entry.kind}`);
          } else if (entry.kind === 'table' && entry.copy) {
            const [prod, copy] = [await w.fingerprint(entry.prod), await w.fingerprint(entry.copy)];
            if (prod.rows !== copy.rows || prod.checksum !== copy.checksum)
              found.push(`${relationName(entry.prod)}: ${prod.rows} rows, the backup has ${copy.rows}`);
          }
        }
        // Retention only after a verified restore, in the same session with the warehouse.
        return {
          from,
          mismatches: found,
          pruned: found.length ? '' : await pruneBackups(w, input, [from.deployId]),
        };
      });
      if (mismatches.length > 0) {
        const blocked = `verify failed, prod differs from the backup: ${listed(mismatches, 25, '; ')}`;
        return { summary: blocked, blocked };
      }
      // Prod is an older version now: the next state:modified selection compares with what it had then.
      await putBackProdState(paths, input, from.deployId);
      return {
        summary: `${from.entries.length} relations match the backup of ${from.deployId}${pruned}`,
        state: publishedState(
          from.entries.filter((e) => e.kind !== 'absent').map((e) => relationName(e.prod)),
        ),
      };
    },

    async restoreProd({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const handle = state.backup;
      if (!handle) return { summary: 'no backup was taken: nothing to restore' };
      const backup = await warehouse(input, args.prodTarget, async (w) => {
        const backup = await requireBackupIn(w, handle);
        await w.restore(backup);
        return backup;
      });
      const record = await putBackProdState(paths, input, input.deployId);
      return {
        summary: `restored ${backup.entries.length} relations from ${backup.location.schema}; ${record}`,
      };
    },

    async unswapSchemas({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const swapped = await warehouse(input, args.prodTarget, async (w) => {
        // A swap that committed but whose activity then failed left no backup in the state: look it up.
        // A manifest already gone (an unswap that stopped half-way) leaves the handle's swapped names.
        const handle = state.backup ?? { deployId: input.deployId };
        const backup = (await backupIn(w, handle)) ?? (state.backup && { ...state.backup, entries: [] });
        if (backup?.swapped) await w.unswapLocations(backup);
        return backup?.swapped;
      });
      if (!swapped) return { summary: 'no swap happened: nothing to undo' };
      const record = await putBackProdState(paths, input, input.deployId);
      return {
        summary: `swapped back: ${swapped.map((s) => s.prod).join(', ')} is the old prod again; ${record}`,
      };
    },

    async dropBackup({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const handle = state.backup;
      if (!handle) return { summary: 'no backup to drop' };
      // Dropping twice changes nothing: a manifest already gone leaves the handle's locations to drop.
      await warehouse(input, args.prodTarget, async (w) =>
        w.dropBackup((await backupIn(w, handle)) ?? { ...handle, entries: [] }),
      );
      await forgetProdStateBefore(paths, input, input.deployId);
      return { summary: `dropped ${handle.location.schema}` };
    },
  };
}
