/**
 * Starts the Temporal CLI's dev server as a child process and waits until it answers. Used by
 * `dbt-deploy dev`, the demo and the test suite. The SDK's own `createLocal()` would download the CLI,
 * which these machines cannot, and waits only 5 s for start-up.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import { UsageError } from './errors.js';
import { DEPLOY_SEARCH_ATTRIBUTES } from '../workflows/search-attributes.js';
import { addSearchAttributes } from './search-attributes.js';

export const PROJECT_TEMPORAL_CLI = fileURLToPath(new URL('../.tools/bin/temporal', import.meta.url));

/** `TEMPORAL_CLI_PATH`, then the copy scripts/setup installed, then `temporal` on PATH. */
export function temporalCliPath(): string {
  const fromEnv = process.env['TEMPORAL_CLI_PATH'];
  if (fromEnv) return fromEnv;
  if (existsSync(PROJECT_TEMPORAL_CLI)) return PROJECT_TEMPORAL_CLI;
  return 'temporal';
}

export interface DevServerOptions {
  port?: number;
  /** Omit for a headless server. */
  uiPort?: number;
  /** Keeps history across restarts; in memory when omitted. */
  dbFilename?: string;
  namespace?: string;
  /** More namespaces to register at start, e.g. one per test file so workflow ids never collide. */
  extraNamespaces?: readonly string[];
  /** Added to the deploy's own search attributes (`DEPLOY_SEARCH_ATTRIBUTES`), always registered. */
  searchAttributes?: Record<
    string,
    'Keyword' | 'Text' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList'
  >;
  /** The codec server the UI decodes payloads with (`--ui-codec-endpoint`), e.g. `http://127.0.0.1:8888`. */
  uiCodecEndpoint?: string;
  /** How long to wait for the server to answer; a cold start on 2 busy cores can take a while. */
  startupTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  namespace: string;
  stop(): Promise<void>;
}

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const port = options.port ?? (await freePort());
  const namespace = options.namespace ?? 'default';
  const address = `127.0.0.1:${port}`;
  if (options.dbFilename) await mkdir(dirname(options.dbFilename), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--namespace',
    namespace,
    '--log-level',
    'warn',
  ];
  args.push(...(options.uiPort ? ['--ui-port', String(options.uiPort)] : ['--headless']));
  for (const extra of options.extraNamespaces ?? []) args.push('--namespace', extra);
  if (options.dbFilename) args.push('--db-filename', options.dbFilename);
  if (options.uiCodecEndpoint) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  // The deploy's own attributes are always there, so the UI and `history` can filter by them.
  for (const [name, type] of Object.entries({ ...DEPLOY_SEARCH_ATTRIBUTES, ...options.searchAttributes }))
    args.push('--search-attribute', `${name}=${type}`);
  const bin = temporalCliPath();
  const child: ResultPromise = execa(bin, args, {
    reject: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    cleanup: true,
    forceKillAfterDelay: 5_000,
  });
  const output: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stdout?.on('data', (chunk: Buffer) => options.log?.(chunk.toString().trimEnd()));
  let exited = false;
  void child.then((result) => {
    exited = true;
    // A missing binary ends here too (ENOENT): execa reports spawn errors through the result.
    if (result.failed && !result.isTerminated) {
      output.push(result.shortMessage ?? 'exited');
      options.log?.(`temporal dev server exited: ${result.shortMessage ?? ''}`);
    }
  });
  const deadline = Date.now() + (options.startupTimeoutMs ?? 90_000);
  for (;;) {
    if (exited) {
      const detail = output.join('\n').trim().split('\n').slice(-3).join(' ');
      throw new UsageError(
        `the Temporal dev server (${bin}) did not start: ${detail}; run \`npm run setup\` or set TEMPORAL_CLI_PATH`,
      );
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: '1 second' });
      try {
        await connection.workflowService.getSystemInfo({});
        // A history file from an earlier start keeps its namespaces, and the server then skips
        // `--search-attribute`: add whatever is missing, so every deploy can record its attributes.
        for (const name of [namespace, ...(options.extraNamespaces ?? [])])
          await addSearchAttributes(connection, name, {
            ...DEPLOY_SEARCH_ATTRIBUTES,
            ...options.searchAttributes,
          });
      } finally {
        await connection.close();
      }
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new UsageError(
          `the Temporal dev server did not answer at ${address} in time: ${String(error)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  return {
    address,
    namespace,
    uiUrl: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : null,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      await child;
    },
  };
}

/** Asks the OS for a port nobody listens on (loopback only). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
