/**
 * Runs the dbt CLI as a child process. Each invocation gets its own `--target-path`, so the artifacts of
 * every step are kept apart; dbt's JSON log lines become progress events; an abort signal kills dbt.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

/** The project's own virtualenv, created by scripts/setup; `DBT_BIN` points elsewhere. */
export const DEFAULT_DBT_BIN = fileURLToPath(new URL('../.venv/bin/dbt', import.meta.url));

export function dbtBin(): string {
  return process.env['DBT_BIN'] ?? DEFAULT_DBT_BIN;
}

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

/** dbt could not run at all (exit code 2: bad project, profile or connection), as opposed to failing nodes. */
export class DbtInvocationError extends Error {
  override readonly name = 'DbtInvocationError';
}

export async function runDbt(invocation: DbtInvocation): Promise<DbtOutcome> {
  const bin = dbtBin();
  if (!existsSync(bin))
    throw new DbtInvocationError(`dbt not found at ${bin}: run scripts/setup or set DBT_BIN`);
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
  const progress: DbtProgress = { done: 0, total: 0, failed: 0 };
  const errors: string[] = [];
  const listed: string[] = [];
  // Ctrl-C on a worker in a terminal reaches dbt too; dbt then exits 2, like a broken project would.
  let interrupted = false;
  const child = execa(bin, args, {
    cwd: invocation.projectDir,
    env: { ...DBT_ENV },
    reject: false,
    lines: true,
    // dbt handles SIGTERM by cancelling its queries; if it lingers, it is killed.
    ...(invocation.signal ? { cancelSignal: invocation.signal } : {}),
    forceKillAfterDelay: 3_000,
    buffer: { stdout: false, stderr: true },
  });
  for await (const line of child.iterable({ from: 'stdout' })) {
    const event = parseEvent(String(line));
    if (!event) continue;
    if (applyEvent(progress, event)) invocation.onProgress?.({ ...progress });
    if (event.level === 'error' && event.msg) errors.push(event.msg);
    if (event.name === 'MainKeyboardInterrupt') interrupted = true;
    // `dbt ls` prints each resource as a PrintEvent whose message is the resource's JSON.
    if (event.name === 'PrintEvent' && event.msg?.startsWith('{')) listed.push(event.msg);
  }
  const result = await child;
  if (result.isCanceled) throw new Error('dbt was cancelled');
  // Killed from outside (Ctrl-C reaching the whole process group, a service manager stopping the
  // worker): nothing is wrong with the project, so the step may be retried; a plain Error is retryable.
  if (result.signal || interrupted)
    throw new Error(`dbt ${invocation.args[0]} was stopped by ${result.signal ?? 'SIGINT'}`);
  const exitCode = result.exitCode ?? -1;
  if (exitCode !== 0 && exitCode !== 1) {
    const detail =
      errors.at(-1) ??
      String(result.stderr ?? '')
        .trim()
        .split('\n')
        .at(-1) ??
      '';
    throw new DbtInvocationError(`dbt ${invocation.args[0]} failed (exit ${exitCode}): ${oneLine(detail)}`);
  }
  if (invocation.partialParseFile) await keepParse(invocation.targetPath, invocation.partialParseFile);
  return { exitCode, targetPath: invocation.targetPath, progress, errors, listed };
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
