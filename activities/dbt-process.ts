/**
 * Starts the dbt process of one invocation. Most of a short dbt command's time is Python importing
 * dbt and the engine's adapter (1.5–5 s on a small machine), and a deploy starts dbt several times.
 * A fork server pays it once per worker: a Python process that has imported dbt and the adapter
 * listens on a private Unix socket and, for each invocation, forks a copy of itself that runs it
 * exactly as the `dbt` command would. A fork costs milliseconds and shares the imported modules, so
 * neither the critical path nor the machine pays the imports again.
 *
 * The process the worker starts (and kills) for an invocation is a small stand-in, `python -I -S`
 * with no imports beyond the standard library, whose command line is the dbt command's: it hands its
 * stdin, stdout and stderr to the fork server, relays signals to the forked dbt, and exits with dbt's
 * exit code, or dies of the signal that killed dbt. So the invocation behaves as a child process
 * running dbt: its output, exit code, `kill()` and `pgrep -f 'dbt build'` all work as before, and
 * nothing (environment, working directory, `DBT_*` flags, dbt's global state) is carried from one
 * invocation to the next, since each runs in its own fork of a process that never ran one.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
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
  /** The invocation's whole environment: the forked dbt drops the fork server's. */
  env: Record<string, string>;
  /** The warehouse engine (`duckdb`, `postgres`, ...): its dbt adapter is imported ahead as well. */
  engine?: string;
}

/**
 * The fork server. It imports dbt, the adapter and the modules dbt's commands load on their way, then
 * serves connections: each brings the stand-in's three file descriptors, and the server forks a
 * monitor for it at once, so a slow client never holds up the next one. The monitor reads the
 * invocation (arguments, working directory, environment), forks dbt, relays the stand-in's signals
 * to it, kills it when the stand-in disappears (SIGKILLed, its worker gone), and reports how dbt
 * ended. The server ends when its stdin closes, that is when the worker that started it ends.
 * Only the standard library and dbt are used; the process is single-threaded when it forks.
 */
const SERVER = `
import atexit, ctypes, json, os, selectors, signal, socket, sys, threading, traceback

engine, path = sys.argv[1], sys.argv[2]
if sys.path and sys.path[0] == '':
    del sys.path[0]
from dbt.cli.main import cli
for module in ['dbt.adapters.' + engine, 'dbt.task.build', 'dbt.task.list', 'dbt.task.compile',
               'dbt.task.run', 'dbt.task.seed', 'dbt.task.snapshot', 'dbt.task.test', 'dbt.compilation',
               'dbt.graph.thread_pool', 'sqlparse']:
    try:
        __import__(module)
    except Exception:
        pass

def retitle(argv):
    # The forked dbt takes the command line of the dbt command it runs, in the room the padding
    # argument kept for it (Linux; elsewhere it keeps the server's).
    try:
        with open('/proc/self/stat', 'rb') as stat:
            fields = stat.read().rsplit(b')', 1)[1].split()
        start, end = int(fields[45]), int(fields[46])
        title = '\\0'.join(argv).encode()[: end - start - 1]
        ctypes.memmove(start, title + b'\\0' * (end - start - len(title)), end - start)
        ctypes.CDLL(None).prctl(15, b'dbt', 0, 0, 0)
    except Exception:
        pass

def run_dbt(request, fds):
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # dies with its monitor
    except Exception:
        pass
    retitle(['dbt', *request['args']])
    os.environ.clear()
    os.environ.update(request['env'])
    os.chdir(request['cwd'])
    sys.argv = ['dbt', *request['args']]
    interrupted = False
    try:
        code = cli()
    except SystemExit as stop:
        code = stop.code
    except KeyboardInterrupt:
        code, interrupted = 1, True
    except BaseException:
        traceback.print_exc()
        code = 1
    # The console script's own ending, less the C++ static destructors: a library imported before the
    # fork (DuckDB's) aborts in them in a forked process. Exit handlers still close dbt's connections,
    # its semaphores and its logs.
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code or 0)

def monitor(connection, fds):
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    reader = connection.makefile('rb')
    request = json.loads(reader.readline())
    child = os.fork()
    if child == 0:
        connection.close()
        run_dbt(request, fds)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in fds:
        os.close(fd)
    finished = threading.Event()

    def relay():
        # Each line from the stand-in is a signal for dbt; its end means the stand-in is gone.
        for line in reader:
            if finished.is_set():
                return
            try:
                os.kill(child, int(line))
            except (ValueError, OSError):
                pass
        for number in (signal.SIGTERM, signal.SIGKILL):
            if finished.wait(0 if number == signal.SIGTERM else 3):
                return
            try:
                os.kill(child, number)
            except OSError:
                return

    threading.Thread(target=relay, daemon=True).start()
    _, status = os.waitpid(child, 0)
    finished.set()
    ended = (b'signal %d\\n' % os.WTERMSIG(status)) if os.WIFSIGNALED(status) else (b'exit %d\\n' % os.waitstatus_to_exitcode(status))
    try:
        connection.sendall(ended)
    except OSError:
        pass
    os._exit(0)

listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen(64)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C reaches dbt itself; the worker ends this
events = selectors.DefaultSelector()
events.register(listener, selectors.EVENT_READ)
events.register(sys.stdin, selectors.EVENT_READ)
sys.stdout.write('ready\\n')
sys.stdout.flush()
while True:
    for key, _ in events.select():
        if key.fileobj is sys.stdin:
            if not sys.stdin.readline():
                os._exit(0)
            continue
        connection, _ = listener.accept()
        try:
            _, fds, _, _ = socket.recv_fds(connection, 1, 3)
        except OSError:
            fds = []
        if len(fds) == 3:
            sys.stdout.flush()
            if os.fork() == 0:
                listener.close()
                events.close()
                monitor(connection, fds)
        for fd in fds:
            os.close(fd)
        connection.close()
`;

/**
 * The stand-in the worker starts for each invocation: `argv` is the socket, then the dbt command line
 * (so the process shows as that command), and stdin brings the invocation as one JSON line (arguments,
 * working directory, environment). It passes its three descriptors and the invocation on, relays
 * SIGTERM and SIGHUP (a Ctrl-C reaches dbt directly, through the process group), and ends as dbt did.
 */
const STAND_IN = `
import os, signal, socket, sys
# The invocation comes on stdin, one line: an environment can be longer than one variable may be.
request = sys.stdin.buffer.readline()
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.connect(sys.argv[1])
socket.send_fds(connection, [b'r'], [0, 1, 2])
connection.sendall(request)
def relay(number, frame):
    try:
        connection.sendall(b'%d\\n' % number)
    except OSError:
        pass
signal.signal(signal.SIGTERM, relay)
signal.signal(signal.SIGHUP, relay)
signal.signal(signal.SIGINT, signal.SIG_IGN)
ended = connection.makefile('rb').readline().split()
if len(ended) != 2:
    # The server went away before dbt ended (killed with its worker's group): as if dbt was stopped.
    sys.stderr.write('dbt-deploy: the dbt fork server ended before dbt did\\n')
    ended = [b'signal', b'%d' % signal.SIGTERM]
if ended[0] == b'signal':
    number = int(ended[1])
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
os._exit(int(ended[1]))
`;

/**
 * Both scripts come through the environment, not the command line: the server's command line then
 * names no dbt command (a `pgrep -f dbt` finds only processes running one), and the stand-in's is
 * the dbt command it stands for.
 */
const SCRIPT_VARIABLE = 'DEPLOY_PYTHON_SCRIPT';
const BOOT = `import os; exec(os.environ.pop('${SCRIPT_VARIABLE}'))`;
/** Room in the server's command line for each forked dbt's own (longer ones are cut: `ps` shows their start). */
const TITLE_ROOM = ' '.repeat(8_192);
/** A server older than this is replaced, so an upgraded dbt is picked up without restarting the worker. */
const MAX_AGE_MS = 15 * 60_000;

interface Unrefable {
  unref?: () => void;
}

interface ForkServer {
  process: ResultPromise;
  socket: string;
  /** False when the server could not start (dbt missing, an import failing): dbt then runs as itself. */
  ready: Promise<boolean>;
  startedAt: number;
}

const servers = new Map<string, ForkServer>();
let socketDir: string | undefined;

/**
 * Starts dbt: forked from a warm server when `bin` is dbt's Python console script, else `bin` itself.
 * The process comes wrapped, as a promise of a child process would wait for it to end.
 */
export async function startDbt(bin: string, args: string[], start: DbtStart): Promise<{ dbt: DbtProcess }> {
  const python = forkEnabled(start.env) ? pythonOf(bin) : undefined;
  const server = python && (await readyServer(python, start.engine ?? 'none'));
  if (!python || !server)
    return { dbt: execa(bin, args, { ...OPTIONS, cwd: start.cwd, env: start.env, extendEnv: false }) };
  const [interpreter = 'python3', ...pre] = python;
  const dbt = execa(interpreter, [...pre, '-I', '-S', '-c', BOOT, server.socket, 'dbt', ...args], {
    ...OPTIONS,
    cwd: start.cwd,
    env: { [SCRIPT_VARIABLE]: STAND_IN },
    extendEnv: false,
  });
  dbt.stdin?.on('error', () => undefined);
  dbt.stdin?.end(`${JSON.stringify({ args, cwd: start.cwd, env: start.env })}\n`);
  return { dbt };
}

/** `DBT_DEPLOY_WARM_DBT=0` starts every dbt command cold, as the `dbt` command itself. */
function forkEnabled(env: Record<string, string>): boolean {
  return (
    (process.env['DBT_DEPLOY_WARM_DBT'] ?? env['DBT_DEPLOY_WARM_DBT']) !== '0' && process.platform !== 'win32'
  );
}

async function readyServer(python: string[], engine: string): Promise<ForkServer | undefined> {
  const key = JSON.stringify([python, engine]);
  let server = servers.get(key);
  if (server && (server.process.exitCode !== null || Date.now() - server.startedAt > MAX_AGE_MS)) {
    // An idle server ends when its stdin closes; dbt already forked from it runs on.
    server.process.stdin?.end();
    servers.delete(key);
    server = undefined;
  }
  if (!server) {
    server = startServer(python, engine, servers.size);
    servers.set(key, server);
  }
  return (await server.ready) ? server : undefined;
}

function startServer(python: string[], engine: string, index: number): ForkServer {
  socketDir ??= privateSocketDir();
  const socket = join(socketDir, `${index}-${Date.now()}`);
  const [interpreter = 'python3', ...pre] = python;
  const child = execa(interpreter, [...pre, '-c', BOOT, engine, socket, TITLE_ROOM], {
    // Anywhere that outlives every project: each invocation brings its own directory.
    cwd: tmpdir(),
    env: { ...(process.env as Record<string, string>), [SCRIPT_VARIABLE]: SERVER },
    extendEnv: false,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
  });
  child.stdin?.on('error', () => undefined);
  child.stderr?.resume();
  const ready = new Promise<boolean>((resolve) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => resolve(line === 'ready'));
    lines.once('close', () => resolve(false));
  });
  // Held open until it is ready (someone awaits it), then it must not keep a finished process (a CLI,
  // a test file) from exiting.
  void ready.then(() => {
    for (const handle of [child, child.stdin, child.stdout, child.stderr] as Array<Unrefable | null>)
      handle?.unref?.();
  });
  return { process: child, socket, ready, startedAt: Date.now() };
}

/**
 * Sockets live in a folder only this user can enter. Its name says nothing of dbt, so `pgrep -f dbt`
 * finds the processes running a dbt command and never the server waiting for one.
 */
function privateSocketDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fork-server-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
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
