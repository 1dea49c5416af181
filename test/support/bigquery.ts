/**
 * The BigQuery emulator (bqemulator 1.4.0, installed by `scripts/setup --bigquery` in a virtualenv of
 * its own) for the test run, on free loopback ports. Its DuckDB home holds the spatial extension that
 * setup installed from PyPI, so the emulator never tries to download one.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { freePort } from '../../client/dev-server.js';

const VENV = fileURLToPath(new URL('../../.tools/bqemulator-venv', import.meta.url));
export const EMULATOR_BIN = join(VENV, 'bin', 'bqemulator');

export interface RunningEmulator {
  /** `http://127.0.0.1:P`: dbt-bigquery's `api_endpoint`, the Node client's `apiEndpoint`. */
  endpoint: string;
  stop(): Promise<void>;
}

export function emulatorInstalled(): boolean {
  return existsSync(EMULATOR_BIN);
}

export async function startBigQueryEmulator(timeoutMs = 120_000): Promise<RunningEmulator> {
  const [restPort, grpcPort] = [await freePort(), await freePort()];
  const dir = await mkdtemp(join(tmpdir(), 'dbt-deploy-bqemulator-'));
  const logFile = join(dir, 'emulator.log');
  // The default project is never used: every test file deploys to a project of its own.
  const child = execa(
    EMULATOR_BIN,
    ['start', '--ephemeral', '--rest-host', '127.0.0.1', '--rest-port', String(restPort)].concat([
      '--grpc-host',
      '127.0.0.1',
      '--grpc-port',
      String(grpcPort),
      '--project',
      'test-project',
    ]),
    {
      cwd: dir,
      env: { HOME: join(VENV, 'home'), BQEMU_ENABLE_FORMAT_EXTENSIONS: 'false' },
      stdout: { file: logFile },
      stderr: { file: logFile, append: true },
      reject: false,
      cleanup: true,
      forceKillAfterDelay: 5_000,
    },
  );
  const endpoint = `http://127.0.0.1:${restPort}`;
  const stop = async () => {
    child.kill('SIGTERM');
    await child;
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const response = await fetch(`${endpoint}/healthz`);
      if (response.ok) return { endpoint, stop };
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const output = await readFile(logFile, 'utf8').catch(() => '');
  await stop();
  throw new Error(`bqemulator did not become healthy on ${endpoint}:\n${output.slice(-2000)}`);
}
