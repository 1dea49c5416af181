/**
 * The steps that put an earlier prod back: a rollback's find, restore and verify, and the saga's
 * compensations (restore, unswap, drop the backup). Each is safe to run twice.
 */

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { relationName } from '../warehouses/adapter.js';
import {
  pruneBackups,
  requireRestoreFrom,
  type StepOutcome,
  type StepPaths,
  type StepRequest,
  warehouse,
} from '../step-context.js';

export function restoreSteps(paths: StepPaths) {
  const { prodStateDirOf } = paths;
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
        state: { restoreFrom: found },
      };
    },

    async restoreBackup({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const from = requireRestoreFrom(state);
      await warehouse(input, args.prodTarget, (w) => w.restore(from));
      return { summary: `restored ${from.entries.length} relations from ${from.location.schema}` };
    },

    async verifyRestore({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const from = requireRestoreFrom(state);
      const { mismatches, pruned } = await warehouse(input, args.prodTarget, async (w) => {
        const found: string[] = [];
        for (const entry of from.entries) {
          const kind = await w.relationKind(entry.prod);
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
          mismatches: found,
          pruned: found.length ? '' : await pruneBackups(w, input, [from.deployId]),
        };
      });
      if (mismatches.length > 0) {
        const blocked = `verify failed, prod differs from the backup: ${mismatches.join('; ')}`;
        return { summary: blocked, blocked };
      }
      // Prod is an older version now: the next state:modified selection must not compare with the newer one.
      await rm(join(prodStateDirOf(input), 'manifest.json'), { force: true });
      return {
        summary: `${from.entries.length} relations match the backup of ${from.deployId}${pruned}`,
        state: {
          published: from.entries.filter((e) => e.kind !== 'absent').map((e) => relationName(e.prod)),
        },
      };
    },

    async restoreProd({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const backup = state.backup;
      if (!backup) return { summary: 'no backup was taken: nothing to restore' };
      await warehouse(input, args.prodTarget, (w) => w.restore(backup));
      return { summary: `restored ${backup.entries.length} relations from ${backup.location.schema}` };
    },

    async unswapSchemas({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const swapped = await warehouse(input, args.prodTarget, async (w) => {
        // A swap that committed but whose activity then failed left no backup in the state: look it up.
        const backup = state.backup ?? (await w.listBackups()).find((b) => b.deployId === input.deployId);
        if (backup?.swapped) await w.unswapLocations(backup);
        return backup?.swapped;
      });
      if (!swapped) return { summary: 'no swap happened: nothing to undo' };
      return { summary: `swapped back: ${swapped.map((s) => s.prod).join(', ')} is the old prod again` };
    },

    async dropBackup({ input, state, args }: StepRequest<{ prodTarget: string }>): Promise<StepOutcome> {
      const backup = state.backup;
      if (!backup) return { summary: 'no backup to drop' };
      await warehouse(input, args.prodTarget, (w) => w.dropBackup(backup));
      return { summary: `dropped ${backup.location.schema}` };
    },
  };
}
