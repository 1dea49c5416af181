/**
 * Starts the dbt process of one invocation. Most of a short dbt command's time is Python importing
 * dbt and the engine's adapter (2–5 s on a small machine); a warm process pays that before it is
 * needed: a Python process that has imported dbt waits on stdin for one invocation (arguments,
 * working directory, environment), runs it exactly as the `dbt` command would, and exits. Each one
 * serves a single invocation, so cancelling still kills the process that runs it and nothing (env
 * vars, working directory, profiles, `DBT_*` flags, dbt's global state) is carried from one
 * invocation to the next. A replacement is started as soon as one is taken.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execa, type ResultPromise } from 'execa';

const OPTIONS = {
  reject: false,
  lines: true,
  // dbt handles SIGTERM by cancelling its queries; if it lingers, it is killed.
  forceKillAfterDelay: 3_000,
  buffer: { stdout: false, stderr: true },
} as const;

export type DbtProcess = ResultPromise<typeof OPTIONS & { cwd: string; env: Record<string, string> }>;

export interface DbtStart {
  cwd: string;
  /** The invocation's whole environment: a warm process drops the one it was started with. */
  env: Record<string, string>;
  /** The warehouse engine (`duckdb`, `postgres`, ...): its dbt adapter is imported ahead as well. */
  engine?: string;
}

/**
 * What a warm process runs. The invocation arrives as one JSON line; `cli()` is what the `dbt`
 * console script calls, so arguments, logging, exit codes and signals are the command's own. `-c`
 * puts the working directory first on `sys.path`, which the console script does not: it is removed,
 * so a project's files never shadow a module. Once it has its invocation, the process takes the
 * command line (and name) of the `dbt` command it runs, so `ps`, `pgrep -f 'dbt build'` and an
 * operator see dbt from the moment it is handed over (read by a thread while the imports may still run),
 * over the room a padding argument kept for it (Linux; elsewhere it keeps its own).
 */
const WARM = `
import ctypes, json, os, sys, threading

def retitle(argv):
    try:
        with open('/proc/self/stat', 'rb') as stat:
            fields = stat.read().rsplit(b')', 1)[1].split()
        start, end = int(fields[45]), int(fields[46])
        title = '\\0'.join(argv).encode()[: end - start - 1]
        ctypes.memmove(start, title + b'\\0' * (end - start - len(title)), end - start)
    except Exception:
        pass

request = {}

def receive():
    line = sys.stdin.readline()
    if line:
        request.update(json.loads(line))
        retitle(['dbt', *request['args']])

# The invocation is read while dbt is still importing, so its command line shows at once.
reader = threading.Thread(target=receive, daemon=True)
reader.start()
if sys.path and sys.path[0] == '':
    del sys.path[0]
from dbt.cli.main import cli
try:
    __import__('dbt.adapters.' + sys.argv[1])
except Exception:
    pass
reader.join()
if not request:
    sys.exit(0)
try:
    ctypes.CDLL(None).prctl(15, b'dbt', 0, 0, 0)
except Exception:
    pass
os.environ.clear()
os.environ.update(request['env'])
os.chdir(request['cwd'])
sys.argv = ['dbt', *request['args']]
sys.exit(cli())
`;

/**
 * How an idle warm process is started: its script comes through the environment, so until it has an
 * invocation its command line names no dbt command (a `pgrep -f dbt` finds only processes running one).
 */
const SCRIPT_VARIABLE = 'DEPLOY_WARM_SCRIPT';
const BOOT = `import os; exec(os.environ.pop('${SCRIPT_VARIABLE}'))`;
/** Room in the command line for the invocation's own (longer ones are cut: `ps` shows their start). */
const TITLE_ROOM = ' '.repeat(8_192);

/** Spare warm processes kept per interpreter and engine: a step may start two or three dbt commands at once. */
const SPARES = 2;
/** A spare older than this is replaced, so an upgraded dbt is picked up without restarting the worker. */
const MAX_AGE_MS = 15 * 60_000;

interface Spare {
  child: DbtProcess;
  startedAt: number;
}

const spares = new Map<string, Spare[]>();

/** Starts dbt: a warm process when `bin` is a Python console script and warm processes are on, else `bin` itself. */
export function startDbt(bin: string, args: string[], start: DbtStart): DbtProcess {
  const python = warmEnabled(start.env) ? pythonOf(bin) : undefined;
  if (!python) return execa(bin, args, { ...OPTIONS, cwd: start.cwd, env: start.env, extendEnv: false });
  const engine = start.engine ?? 'none';
  const key = JSON.stringify([python, engine]);
  const child = takeSpare(key) ?? spawnWarm(python, engine);
  holdOpen(child, true);
  topUp(key, python, engine);
  child.stdin?.end(`${JSON.stringify({ args, cwd: start.cwd, env: start.env })}\n`);
  return child;
}

/** `DBT_DEPLOY_WARM_DBT=0` starts every dbt command cold, as the `dbt` command itself. */
function warmEnabled(env: Record<string, string>): boolean {
  return (process.env['DBT_DEPLOY_WARM_DBT'] ?? env['DBT_DEPLOY_WARM_DBT']) !== '0';
}

function takeSpare(key: string): DbtProcess | undefined {
  const list = spares.get(key) ?? [];
  for (let spare = list.shift(); spare; spare = list.shift()) {
    if (spare.child.exitCode === null && !spare.child.killed && Date.now() - spare.startedAt < MAX_AGE_MS)
      return spare.child;
    spare.child.kill();
  }
  return undefined;
}

function topUp(key: string, python: string[], engine: string): void {
  const list = spares.get(key) ?? [];
  spares.set(key, list);
  while (list.length < SPARES) {
    const child = spawnWarm(python, engine);
    // Idle spares must not keep a finished process (a CLI, a test file) from exiting.
    holdOpen(child, false);
    list.push({ child, startedAt: Date.now() });
  }
}

interface Refable {
  ref?: () => void;
  unref?: () => void;
}

function holdOpen(child: DbtProcess, hold: boolean): void {
  for (const handle of [child, child.stdin, child.stdout, child.stderr] as Array<Refable | null>)
    if (hold) handle?.ref?.();
    else handle?.unref?.();
}

function spawnWarm(python: string[], engine: string): DbtProcess {
  const [interpreter = 'python3', ...pre] = python;
  const child = execa(interpreter, [...pre, '-c', BOOT, engine, TITLE_ROOM], {
    ...OPTIONS,
    // Anywhere that outlives every project: the invocation brings its own directory.
    cwd: tmpdir(),
    env: { ...(process.env as Record<string, string>), [SCRIPT_VARIABLE]: WARM },
    extendEnv: false,
  });
  // A spare that is never used ends when the worker does (its stdin closes); its outcome is nobody's.
  child.catch(() => undefined);
  // One that died first (or never started) fails its invocation through its result, not here.
  child.stdin?.on('error', () => undefined);
  return child;
}

/**
 * The interpreter of a Python console script, from its `#!` line (`#!/usr/bin/env python3` too), when
 * the script is dbt's own entry point; undefined for anything else (a wrapper, a missing file).
 */
export function pythonOf(bin: string): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(bin, 'utf8').slice(0, 2_000);
  } catch {
    return undefined;
  }
  const shebang = /^#!\s*(\S+)(?:[ \t]+(\S+))?/.exec(text);
  if (!shebang?.[1] || !text.includes('from dbt.cli.main import cli')) return undefined;
  const command = shebang[2] ? [shebang[1], shebang[2]] : [shebang[1]];
  return /python[\d.]*$/.test(command.at(-1) ?? '') ? command : undefined;
}
