/**
 * Secured clusters for real: HAProxy from Debian terminates TLS in front of the run's dev server (see
 * terminator.ts). A worker connects with mutual TLS through a temporal.toml profile, the CLI deploys
 * through the API-key port with the `TEMPORAL_*` variables, and prod is read back from DuckDB. A wrong
 * client certificate, a certificate without its key, no certificate, and a missing or wrong API key
 * each fail with one line and exit code 2. What is checked is the terminator's doing: the dev server
 * behind it accepts anything.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type ExampleProject, exampleProject, ROOT, snapshotSchema } from '../support/harness.js';
import type { TestNamespace } from '../support/namespaces.js';
import { startTerminator, type Terminator } from './terminator.js';
import { waitForLine } from '../support/processes.js';

const CLI = join(ROOT, 'bin', 'dbt-deploy');
const NAMESPACE: TestNamespace = 'test-secure';

type WorkerProcess = ResultPromise<{ reject: false; all: true }>;

describe('secured clusters', () => {
  const taskQueue = `secure-${randomBytes(4).toString('hex')}`;
  let terminator: Terminator;
  let project: ExampleProject;
  let profileFile: string;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    [terminator, project] = await Promise.all([startTerminator(inject('temporalAddress')), exampleProject()]);
    const { certificates: c } = terminator;
    // The worker's settings as a team keeps them: a profile in temporal.toml.
    profileFile = join(c.dir, 'temporal.toml');
    await writeFile(
      profileFile,
      [
        '[profile.secure]',
        `address = "${terminator.mtlsAddress}"`,
        `namespace = "${NAMESPACE}"`,
        '[profile.secure.tls]',
        `client_cert_path = "${c.clientCert}"`,
        `client_key_path = "${c.clientKey}"`,
        `server_ca_cert_path = "${c.ca}"`,
        'server_name = "localhost"',
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    worker?.kill('SIGTERM');
    await worker;
    await terminator?.stop();
  });

  /** Nothing inherited: only the settings named here reach the process. */
  function run(args: string[], env: Record<string, string>) {
    return execa(CLI, args, {
      reject: false,
      all: true,
      extendEnv: false,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: process.env['HOME'] ?? '/tmp',
        DBT_DEPLOY_TASK_QUEUE: taskQueue,
        ...env,
      },
    });
  }

  const apiKeyEnv = () => ({
    TEMPORAL_ADDRESS: terminator.apiKeyAddress,
    TEMPORAL_NAMESPACE: NAMESPACE,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: terminator.certificates.ca,
    // The certificate names localhost; an IP as server name also makes Node warn on stderr.
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
  });
  const mtlsEnv = (cert: string, key?: string) => ({
    TEMPORAL_ADDRESS: terminator.mtlsAddress,
    TEMPORAL_NAMESPACE: NAMESPACE,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: terminator.certificates.ca,
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
    TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
    ...(key ? { TEMPORAL_TLS_CLIENT_KEY_PATH: key } : {}),
  });

  it('a worker on mutual TLS (temporal.toml profile) and the CLI with an API key deploy through the terminator', async () => {
    worker = run(['worker', '--log-format', 'text'], {
      TEMPORAL_CONFIG_FILE: profileFile,
      TEMPORAL_PROFILE: 'secure',
    }) as WorkerProcess;
    await waitForLine(worker, 'worker polling', 120_000);

    const deployed = await run(['deploy', '--project-dir', project.dir, '--env', 'prod'], {
      ...apiKeyEnv(),
      TEMPORAL_API_KEY: terminator.apiKey,
    });
    expect(deployed.exitCode, deployed.all).toBe(0);
    const prod = await snapshotSchema(project, 'analytics');
    const staging = await snapshotSchema(project, 'analytics_staging');
    expect(prod['fct_orders']?.rows).toBe(600);
    for (const [name, relation] of Object.entries(prod)) expect(relation, name).toEqual(staging[name]);

    // history reads no profile: a host with only dbt_project.yml and deploy.yml, no profiles.yml and no
    // dbt, can run it, here over mutual TLS.
    const cliHost = await mkdtemp(join(tmpdir(), 'dbt-deploy-cli-host-'));
    for (const file of ['dbt_project.yml', 'deploy.yml'])
      await copyFile(join(project.dir, file), join(cliHost, file));
    const history = await run(['history', '--project-dir', cliHost, '--env', 'prod', '--json'], {
      ...mtlsEnv(terminator.certificates.clientCert, terminator.certificates.clientKey),
      DBT_BIN: '/nonexistent/dbt',
      DBT_PROFILES_DIR: '/nonexistent',
    });
    expect(history.exitCode, history.all).toBe(0);
    expect(JSON.parse(history.all) as Array<{ status: string }>).toEqual([
      expect.objectContaining({ status: 'published' }),
    ]);
  }, 600_000);

  it.each([
    [
      'a client certificate from another CA',
      () => mtlsEnv(terminator.certificates.strangerCert, terminator.certificates.strangerKey),
      /over TLS: the server does not accept the client certificate/,
    ],
    [
      'no client certificate',
      () => ({ ...mtlsEnv(''), TEMPORAL_TLS: 'true' }),
      /over TLS: the server requires a client certificate and none was sent/,
    ],
    [
      'a certificate without its key',
      () => mtlsEnv(terminator.certificates.clientCert),
      /a client certificate is set but no client key: set TEMPORAL_TLS_CLIENT_KEY_PATH/,
    ],
    ['no API key', () => apiKeyEnv(), /refused the credentials: it needs an API key/],
    [
      'a wrong API key',
      () => ({ ...apiKeyEnv(), TEMPORAL_API_KEY: 'not-the-key' }),
      /refused the credentials: the API key \(TEMPORAL_API_KEY\) was refused/,
    ],
  ])('%s fails with one line and exit code 2', async (_name, env, message) => {
    const result = await run(['status', '--project-dir', project.dir, '--env', 'prod'], env());
    expect(result.exitCode, result.all).toBe(2);
    const lines = result.all.split('\n').filter((line) => line.trim() !== '');
    expect(lines, result.all).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });
});
