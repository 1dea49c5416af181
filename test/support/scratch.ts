/**
 * Everything a test makes outside its own process (temporary folders, PostgreSQL databases) is
 * registered here and removed after the test file, whether its tests passed or failed. Global
 * teardown then counts what is left under the run's scratch root: a test that bypasses this
 * registry shows up there. Free of vitest, so the chaos script uses it too.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Cleanup = () => Promise<unknown>;

const cleanups: Cleanup[] = [];

/** A fresh folder under `root` (the run's scratch root, else the system temp folder), removed by `cleanUp()`. */
export async function scratchDir(prefix: string, root: string = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(root, prefix));
  onCleanUp(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Registers anything else to undo (a database, a process). */
export function onCleanUp(cleanup: Cleanup): void {
  cleanups.push(cleanup);
}

/** Runs every registered cleanup, newest first; one that fails does not stop the others. */
export async function cleanUp(): Promise<string[]> {
  const failures: string[] = [];
  while (cleanups.length > 0) {
    const cleanup = cleanups.pop()!;
    try {
      await cleanup();
    } catch (error) {
      failures.push(error instanceof Error ? error.message : String(error));
    }
  }
  return failures;
}

/** What is left in a scratch root: the names a test forgot to remove. */
export async function leftovers(root: string): Promise<string[]> {
  return (await readdir(root).catch(() => [])).sort();
}
