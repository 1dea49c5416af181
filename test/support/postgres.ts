/**
 * A throwaway PostgreSQL cluster for the test run: its own data directory, a free loopback port and a
 * password-authenticated superuser, so tests connect exactly as dbt-postgres would. As root the
 * cluster runs as the `postgres` OS user, because PostgreSQL refuses to run as root.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { freePort } from '../../client/dev-server.js';
import { quoteIdentifier } from '../../activities/warehouses/adapter.js';

/** Where a test connects; what global setup hands to every test file. */
export interface PostgresServer {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export interface RunningPostgres extends PostgresServer {
  dataDir: string;
  stop(): Promise<void>;
}

const INSTALL_ROOT = '/usr/lib/postgresql';
const SUPERUSER = 'dbt_deploy';

/** The newest Debian-installed major version's bin directory. */
export function postgresBinDir(): string {
  const versions = existsSync(INSTALL_ROOT)
    ? readdirSync(INSTALL_ROOT)
        .filter((name) => /^\d+$/.test(name) && existsSync(join(INSTALL_ROOT, name, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined)
    throw new Error(`no PostgreSQL found under ${INSTALL_ROOT}: run \`scripts/setup --postgres\``);
  return join(INSTALL_ROOT, newest, 'bin');
}

export async function startPostgres(): Promise<RunningPostgres> {
  const bin = postgresBinDir();
  const owner = await postgresOwner();
  const root = await mkdtemp(join(tmpdir(), 'dbt-deploy-pg-'));
  const dataDir = join(root, 'data');
  const logFile = join(root, 'server.log');
  const password = randomBytes(18).toString('base64url');
  const passwordFile = join(root, 'password');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  if (owner) {
    await chown(root, owner.uid, owner.gid);
    await chown(passwordFile, owner.uid, owner.gid);
  }
  const run = (command: string, args: string[]) =>
    owner
      ? execa('runuser', ['-u', 'postgres', '--', join(bin, command), ...args], { cwd: root })
      : execa(join(bin, command), args, { cwd: root });

  try {
    // Host connections need the password (as with dbt-postgres); the socket, private to the
    // cluster's directory, trusts so nothing here depends on the OS user's name.
    await run('initdb', [
      `--pgdata=${dataDir}`,
      `--username=${SUPERUSER}`,
      `--pwfile=${passwordFile}`,
      '--auth-host=scram-sha-256',
      '--auth-local=trust',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    await rm(passwordFile);
    const port = await startOnFreePort(run, dataDir, root, logFile);
    const server = { host: '127.0.0.1', port, user: SUPERUSER, password, database: 'postgres' };
    await waitUntilAccepting(server);
    const database = 'dbt_deploy_test';
    await createDatabase(server, database);
    return {
      ...server,
      database,
      dataDir,
      async stop() {
        await run('pg_ctl', ['stop', `--pgdata=${dataDir}`, '--mode=fast', '--wait']).catch(() => undefined);
        await rm(root, { recursive: true, force: true });
      },
    };
  } catch (error) {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    await run('pg_ctl', ['stop', `--pgdata=${dataDir}`, '--mode=immediate']).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${String(error)}${log ? `\n${log.slice(-2000)}` : ''}`, {
      cause: error,
    });
  }
}

/**
 * A fresh, empty database on `server`, so each test file (or test) sees only its own schemas.
 * Replaces a database of the same name left by an earlier run.
 */
export async function createDatabase(server: PostgresServer, name: string): Promise<PostgresServer> {
  await withClient(server, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
  });
  return { ...server, database: name };
}

export async function dropDatabase(server: PostgresServer, name: string): Promise<void> {
  await withClient(server, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`),
  );
}

/** A plain client for setting up and inspecting a database, independent of any adapter. */
export async function withClient<T>(
  server: PostgresServer,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ ...server });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

type Run = (command: string, args: string[]) => Promise<unknown>;

/** A free port can be taken between asking and binding; a few attempts make that race harmless. */
async function startOnFreePort(
  run: Run,
  dataDir: string,
  socketDir: string,
  logFile: string,
): Promise<number> {
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    const settings = [
      `-p ${port}`,
      "-c listen_addresses='127.0.0.1'",
      `-c unix_socket_directories='${socketDir}'`,
      // Test data is thrown away: durability only costs time.
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
    ];
    try {
      await run('pg_ctl', [
        'start',
        `--pgdata=${dataDir}`,
        `--log=${logFile}`,
        `--options=${settings.join(' ')}`,
        '--wait',
        '--timeout=60',
      ]);
      return port;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function waitUntilAccepting(server: PostgresServer): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await withClient(server, (client) => client.query('SELECT 1'));
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** The `postgres` OS user when running as root (the server refuses root); otherwise run as ourselves. */
async function postgresOwner(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const { stdout } = await execa('id', ['-u', 'postgres']).catch(() => {
    throw new Error('running as root but there is no `postgres` user: run `scripts/setup --postgres`');
  });
  const { stdout: group } = await execa('id', ['-g', 'postgres']);
  return { uid: Number(stdout.trim()), gid: Number(group.trim()) };
}
