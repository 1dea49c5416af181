/**
 * What a deploy carries from step to step, and which part of it each activity is sent. Everything
 * here goes through Temporal history once per step, so the state holds references (artifact files,
 * backup handles) rather than lists that grow with the project, and each activity gets only the
 * fields it reads: a deploy of thousands of models schedules the same few hundred bytes per step as
 * one of ten.
 */
import type { DeployState } from '../activities/steps.js';
import type { Compensation, Step } from './plan.js';
import { type BackupHandle, type BackupRef, PUBLISHED_LISTED } from './types.js';

type Field = keyof DeployState;

/** The publish set: a file reference, or the set itself in results recorded before references. */
const PUBLISH_SET: Field[] = ['publishSetRef', 'publishSet'];

/** Per activity, the state fields it reads; everything else stays in the workflow. */
export const STATE_READS: Record<Step['activity'] | Compensation['activity'], readonly Field[]> = {
  dbtBuild: ['artifacts', 'relations', 'syncedFromProd', ...PUBLISH_SET],
  audit: ['artifacts', ...PUBLISH_SET],
  resolveRelations: [],
  syncFromProd: ['relations'],
  resolvePublishSet: ['artifacts', 'relations', 'publishListing'],
  checkPublishSelection: [],
  selectPublishSet: ['artifacts', 'relations', 'publishListing'],
  diffProd: ['artifacts', ...PUBLISH_SET],
  backupProd: ['restoreFrom', ...PUBLISH_SET],
  publishTables: PUBLISH_SET,
  publishViews: ['relations', ...PUBLISH_SET],
  publishRelations: ['relations', ...PUBLISH_SET],
  swapSchemas: ['relations', ...PUBLISH_SET],
  verifyProd: ['artifacts', 'expectedRef', 'expected', ...PUBLISH_SET],
  findBackup: [],
  restoreBackup: ['restoreFrom'],
  verifyRestore: ['restoreFrom'],
  restoreProd: ['backup'],
  dropBackup: ['backup'],
  unswapSchemas: ['backup'],
};

/** The part of the state `activity` reads, as its request carries it. */
export function stateFor(
  activity: Step['activity'] | Compensation['activity'],
  state: DeployState,
): Partial<DeployState> {
  const picked: Partial<Record<Field, unknown>> = {};
  for (const field of STATE_READS[activity]) if (state[field] !== undefined) picked[field] = state[field];
  return picked as Partial<DeployState>;
}

/** Later steps add to what earlier ones learned; each step's artifacts are kept under its own id. */
export function mergeState(state: DeployState, update: Partial<DeployState> | undefined): DeployState {
  if (!update) return state;
  return { ...state, ...update, artifacts: { ...state.artifacts, ...update.artifacts } };
}

/** What history carries of a backup: everything but its entries, which stay in its manifest. */
export function backupHandle(backup: BackupRef | BackupHandle): BackupHandle {
  const { entries, ...handle } = backup;
  return entries ? { ...handle, relations: entries.length } : handle;
}

/** The relations a result names, and how many there were; results recorded before counts name them all. */
export function publishedOf(state: Pick<DeployState, 'published' | 'publishedCount'>): {
  published: string[];
  publishedCount: number;
} {
  const published = state.published ?? [];
  return {
    published: published.slice(0, PUBLISHED_LISTED),
    publishedCount: state.publishedCount ?? published.length,
  };
}
