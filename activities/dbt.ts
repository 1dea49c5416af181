/**
 * Runs the dbt CLI as a child process. Each invocation gets its own `--target-path`, so the artifacts of
 * every step are kept apart; dbt's JSON log lines become progress events; an abort signal kills dbt.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DbtProcess, startDbt } from './dbt-process.js';

/**
 * Where dbt is looked for, first found wins: `DBT_BIN`; `.venv/bin/dbt` in the working directory;
 * this checkout's own virtualenv (scripts/setup; from the sources or from the compiled `lib/`); then
 * `dbt` on `PATH`. Returns the bare name `dbt` when none exists, which the callers report.
 */
export function dbtBin(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  if (env['DBT_BIN']) return env['DBT_BIN'];
  const candidates = [
    join(cwd, '.venv', 'bin', 'dbt'),
    fileURLToPath(new URL('../.venv/bin/dbt', import.meta.url)),
    fileURLToPath(new URL('../../.venv/bin/dbt', import.meta.url)),
    ...(env['PATH'] ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, 'dbt')),
  ];
  return candidates.find((path) => existsSync(path)) ?? 'dbt';
}

/** Said by every "dbt not found" error: the ways to point the product at dbt. */
export const DBT_LOOKUP = 'set DBT_BIN, create .venv in the working directory, or put dbt on PATH';

/** dbt phones home by default; nothing the product starts may try to leave the machine. */
export const DBT_ENV = { DBT_SEND_ANONYMOUS_USAGE_STATS: 'false', DO_NOT_TRACK: '1' } as const;

export interface DbtProgress {
  /** Nodes finished so far, and how many dbt said it would run. */
  done: number;
  total: number;
  failed: number;
  lastNode?: string;
  lastStatus?: string;
}

export interface DbtInvocation {
  projectDir: string;
  profilesDir: string;
  /** The dbt command and its selection flags, e.g. `['build', '--target', 'staging']`. */
  args: string[];
  /** Folder for this invocation's artifacts; dbt writes manifest.json and run_results.json here. */
  targetPath: string;
  vars?: string;
  /**
   * A parse cache shared by invocations with the same target and vars. Every step has its own
   * `--target-path`, so without it dbt would parse the whole project from scratch every time.
   */
  partialParseFile?: string;
  signal?: AbortSignal;
  onProgress?: (progress: DbtProgress) => void;
  /** Added to dbt's environment (an engine's switches, never credentials: dbt reads those itself). */
  env?: Record<string, string>;
  /** The target's engine, so the fork server has its adapter imported ahead (see dbt-process.ts). */
  engine?: string;
}

export interface DbtOutcome {
  exitCode: number;
  targetPath: string;
  progress: DbtProgress;
  /** dbt's own error lines, when it failed before or outside running nodes. */
  errors: string[];
  /** What `dbt ls` printed, one line per resource. */
  listed: string[];
}

/** dbt could not run at all (a bad project or profile), as opposed to failing nodes: never retried. */
export class DbtInvocationError extends Error {
  override readonly name = 'DbtInvocationError';
}

/**
 * dbt failed for a reason outside the project that may pass by itself: the warehouse connection
 * refused or dropped, or another process holding the DuckDB file. The step may be retried.
 */
export class DbtTransientError extends Error {
  override readonly name = 'DbtTransientError';
}

export interface DbtFailureClass {
  kind: 'transient' | 'fatal';
  /** dbt's own error type, the words before "Error" that start its message: `Database Error`, ... */
  type: string;
}

/**
 * What dbt's adapters say when the connection, not the SQL, failed: psycopg2 and libpq for PostgreSQL
 * (refused, dropped, terminated by the server, timed out), and the DuckDB engine for a file another
 * process holds.
 */
const TRANSIENT: Record<string, RegExp[]> = {
  'Database Error': [
    /connection to server .* failed/i,
    /could not connect to server/i,
    /connection refused/i,
    /server closed the connection unexpectedly/i,
    /terminating connection due to administrator command/i,
    /connection already closed/i,
    /could not receive data from server/i,
    /SSL SYSCALL error/i,
    /timeout expired/i,
    /the database system is (starting up|shutting down|in recovery mode)/i,
  ],
  // DuckDB's own error type when dbt fails to open the file, wrapped as a Runtime Error elsewhere.
  'IO Error': [/Could not set lock on file/i],
  'Runtime Error': [/IO Error: Could not set lock on file/i],
};

/**
 * Tells a failure that may pass on a retry from one that will not, by dbt's own error type and its
 * message, not by the exit code: dbt exits 2 for a refused connection and for a compilation error
 * alike, and 1 for a connection dropped mid-run and for a failing model alike. A `Database Error` is
 * transient only when its message is about the connection; compilation, parsing and every other
 * error is the project's and fatal.
 */
export function classifyDbtFailure(message: string): DbtFailureClass {
  const text = message.replace(/^Encountered an error:\s*/, '');
  const type = /^\s*([A-Z][\w ]*? Error)\b/.exec(text)?.[1] ?? 'Error';
  const transient = (TRANSIENT[type] ?? []).some((pattern) => pattern.test(text));
  return { kind: transient ? 'transient' : 'fatal', type };
}

export async function runDbt(invocation: DbtInvocation): Promise<DbtOutcome> {
  const bin = dbtBin();
  if (!existsSync(bin)) throw new DbtInvocationError(`dbt not found (${bin}): ${DBT_LOOKUP}`);
  await mkdir(invocation.targetPath, { recursive: true });
  const args = [
    ...invocation.args,
    '--project-dir',
    invocation.projectDir,
    '--profiles-dir',
    invocation.profilesDir,
    '--target-path',
    invocation.targetPath,
    '--log-path',
    join(invocation.targetPath, 'logs'),
    '--log-format',
    'json',
    '--no-use-colors',
    ...(invocation.vars ? ['--vars', invocation.vars] : []),
    ...(invocation.partialParseFile && existsSync(invocation.partialParseFile)
      ? ['--partial-parse-file-path', invocation.partialParseFile]
      : []),
  ];
  const { dbt: child } = await startDbt(bin, args, {
    cwd: invocation.projectDir,
    env: { ...(process.env as Record<string, string>), ...invocation.env, ...DBT_ENV },
    ...(invocation.engine ? { engine: invocation.engine } : {}),
  });
  // An abort kills dbt (SIGTERM, then SIGKILL after 3 s: see dbt-process.ts).
  let cancelled = false;
  const cancel = () => {
    cancelled = true;
    child.kill();
  };
  if (invocation.signal?.aborted) cancel();
  invocation.signal?.addEventListener('abort', cancel, { once: true });
  const progress: DbtProgress = { done: 0, total: 0, failed: 0 };
  const errors: string[] = [];
  const listed: string[] = [];
  // Ctrl-C on a worker in a terminal reaches dbt too; dbt then exits 2, like a broken project would.
  let interrupted = false;
  let result: Awaited<DbtProcess>;
  try {
    for await (const line of child.iterable({ from: 'stdout' })) {
      const event = parseEvent(String(line));
      if (!event) continue;
      if (applyEvent(progress, event)) invocation.onProgress?.({ ...progress });
      if (event.level === 'error' && event.msg) errors.push(event.msg);
      if (event.name === 'MainKeyboardInterrupt') interrupted = true;
      // `dbt ls` prints each resource as a PrintEvent whose message is the resource's JSON.
      if (event.name === 'PrintEvent' && event.msg?.startsWith('{')) listed.push(event.msg);
    }
    result = await child;
  } finally {
    invocation.signal?.removeEventListener('abort', cancel);
  }
  if (cancelled) throw new Error('dbt was cancelled');
  // Killed from outside (Ctrl-C reaching the whole process group, a service manager stopping the
  // worker): nothing is wrong with the project, so the step may be retried; a plain Error is retryable.
  if (result.signal || interrupted)
    throw new Error(`dbt ${invocation.args[0]} was stopped by ${result.signal ?? 'SIGINT'}`);
  const exitCode = result.exitCode ?? -1;
  if (exitCode !== 0 && exitCode !== 1) {
    // dbt's own summary of what stopped it; a traceback may follow it at the same level.
    const detail =
      errors.find((line) => line.startsWith('Encountered an error')) ??
      errors.at(-1) ??
      String(result.stderr ?? '')
        .trim()
        .split('\n')
        .at(-1) ??
      '';
    const message = `dbt ${invocation.args[0]} failed (exit ${exitCode}): ${oneLine(detail)}`;
    if (classifyDbtFailure(detail).kind === 'transient') throw new DbtTransientError(message);
    throw new DbtInvocationError(message);
  }
  if (exitCode === 1) {
    // Nodes failed. A node that lost its connection says nothing about the project: the whole run is
    // no audit result, and the step may be retried.
    const lost = (await nodeErrors(invocation.targetPath)).find(
      (node) => classifyDbtFailure(node.message).kind === 'transient',
    );
    if (lost)
      throw new DbtTransientError(
        `dbt ${invocation.args[0]} lost its connection at ${lost.uniqueId}: ${lost.message.split('\n').join(' ').replace(/\s+/g, ' ')}`,
      );
  }
  if (invocation.partialParseFile) await keepParse(invocation.targetPath, invocation.partialParseFile);
  return { exitCode, targetPath: invocation.targetPath, progress, errors, listed };
}

/** The nodes dbt reports as `error` in run_results.json, with their messages. */
async function nodeErrors(targetPath: string): Promise<Array<{ uniqueId: string; message: string }>> {
  let parsed: { results?: Array<{ unique_id?: string; status?: string; message?: string | null }> };
  try {
    parsed = JSON.parse(await readFile(join(targetPath, 'run_results.json'), 'utf8')) as typeof parsed;
  } catch {
    // No results (a command that writes none): nothing to tell apart.
    return [];
  }
  return (parsed.results ?? [])
    .filter((r) => r.status === 'error' && r.message)
    .map((r) => ({ uniqueId: r.unique_id ?? '?', message: r.message ?? '' }));
}

/** dbt writes its parse into the target path; the cache takes it by rename, so readers never see half a file. */
async function keepParse(targetPath: string, cacheFile: string): Promise<void> {
  const written = join(targetPath, 'partial_parse.msgpack');
  if (!existsSync(written)) return;
  await mkdir(dirname(cacheFile), { recursive: true });
  const temporary = `${cacheFile}.${process.pid}.${Date.now()}`;
  await copyFile(written, temporary);
  await rename(temporary, cacheFile);
}

interface DbtEvent {
  name: string;
  level: string;
  msg?: string;
  data: Record<string, unknown>;
}

function parseEvent(line: string): DbtEvent | null {
  if (!line.startsWith('{')) return null;
  try {
    const parsed = JSON.parse(line) as {
      info?: { name?: string; level?: string; msg?: string };
      data?: Record<string, unknown>;
    };
    if (!parsed.info?.name) return null;
    return {
      name: parsed.info.name,
      level: parsed.info.level ?? 'info',
      ...(parsed.info.msg ? { msg: parsed.info.msg } : {}),
      data: parsed.data ?? {},
    };
  } catch {
    return null;
  }
}

/** Folds one dbt event into the progress; returns true when something a reader would see changed. */
function applyEvent(progress: DbtProgress, event: DbtEvent): boolean {
  const total = event.data['total'];
  if (typeof total === 'number' && total > progress.total) progress.total = total;
  // Every finished node is reported by a Log*Result event (LogModelResult, LogTestResult, ...).
  if (!/^Log\w*Result$/.test(event.name)) return false;
  const node = event.data['node_info'] as { unique_id?: string; node_status?: string } | undefined;
  progress.done += 1;
  if (node?.unique_id) progress.lastNode = node.unique_id;
  if (node?.node_status) progress.lastStatus = node.node_status;
  if (node?.node_status && !['success', 'pass'].includes(node.node_status)) progress.failed += 1;
  return true;
}

/**
 * dbt's error events span lines (a heading, the database's own lines, at times a Python traceback);
 * a deploy's reason is one line: the heading and details joined, a traceback cut to its last line.
 */
export function oneLine(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && line !== 'Encountered an error:');
  const traceback = lines.findIndex((line) => line.startsWith('Traceback (most recent call last)'));
  const kept = traceback < 0 ? lines : [...lines.slice(0, traceback), ...lines.slice(-1)];
  return kept.join(' ');
}
