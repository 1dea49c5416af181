/**
 * What the tests that run workers as child processes share: waiting for a line or a condition, finding
 * dbt in a worker's process group, and killing that group as a lost machine would be.
 */
import type { Readable } from 'node:stream';
import { execa } from 'execa';

/** A child process started by execa, as far as these helpers read it. */
export interface ChildProcess extends PromiseLike<unknown> {
  readonly pid?: number | undefined;
  readonly all?: Readable | undefined;
}

/** Signals the worker's whole process group (worker and its dbt); a group already gone is fine. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is already gone.
  }
}

/** Looks only in the worker's process group: other test files run dbt at the same time. */
export async function dbtBuildIn(child: ChildProcess): Promise<boolean> {
  const found = await execa('pgrep', ['-g', String(child.pid), '-f', 'dbt build'], { reject: false });
  return found.exitCode === 0;
}

export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Resolves once the child has printed `line` (on stdout or stderr); fails when it exits first. */
export async function waitForLine(child: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "${line}" within ${timeoutMs} ms:\n${seen}`)),
      timeoutMs,
    );
    child.all?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.then(
      () => reject(new Error(`worker exited before "${line}":\n${seen}`)),
      (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
    );
  });
}
