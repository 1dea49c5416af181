/**
 * The Dockerfile and docker-compose.yml against the code, since Docker cannot build or run here: every
 * file the image copies exists and is not excluded from the build context, its installs are
 * scripts/setup's parts (the script the tests run), the compose services set the variables the worker
 * and the example's profiles read and start the worker with flags the CLI has, and the dev server
 * registers exactly the search attributes the workflows record. A compose CLI, where one exists, also
 * validates the file; no image is built and no container started.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildCli } from '../../client/cli.js';
import { temporalSettings } from '../../client/connection.js';
import { DEPLOY_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes.js';
import { ROOT } from '../support/harness.js';

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
}

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const compose = parse(read('docker-compose.yml')) as { services: Record<string, Service> };
const dockerfile = read('Dockerfile');
const dockerignore = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

/** `${NAME:-default}` as compose reads it with NAME unset. */
const interpolate = (value: string) => value.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');

/** Which compose CLI exists here, if any (Docker's plugin or the standalone docker-compose). */
function composeCli(): string[] | undefined {
  for (const command of [['docker', 'compose'], ['docker-compose']]) {
    try {
      execFileSync(command[0]!, [...command.slice(1), 'version'], { stdio: 'ignore' });
      return command;
    } catch {
      // Not this one.
    }
  }
  return undefined;
}

describe('the worker image and the compose file', () => {
  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const copies = [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].map((m) => m[1]!.trim().split(/\s+/));
    expect(copies.length).toBeGreaterThan(0);
    for (const parts of copies) {
      for (const source of parts.slice(0, -1)) {
        if (source === '.') continue;
        expect(existsSync(join(ROOT, source)), source).toBe(true);
        const top = source.split('/')[0]!;
        expect(dockerignore, `${source} is excluded from the build context`).not.toContain(top);
      }
    }
    // Every requirements file the dbt virtualenv installs (requirements-dbt.txt includes the others).
    const requirements = readdirSync(join(ROOT, 'scripts')).filter((f) =>
      /^requirements-dbt.*\.txt$/.test(f),
    );
    for (const file of requirements) expect(dockerfile).toContain(`scripts/${file}`);
  });

  it("installs with scripts/setup's own parts and points the worker at the virtualenv they make", () => {
    const setups = [...dockerfile.matchAll(/RUN bash scripts\/setup --only=([a-z,]+)/g)].map((m) => m[1]);
    expect(setups).toEqual(['npm', 'dbt']);
    const setup = read('scripts/setup');
    expect(setup).toContain('if wanted npm; then part npm');
    expect(setup).toContain('if wanted dbt; then part dbt');
    // setup makes .venv beside scripts/, i.e. in the WORKDIR the runtime stage copies it to.
    const workdir = [...dockerfile.matchAll(/^WORKDIR (.+)$/gm)].at(-1)![1];
    expect(dockerfile).toContain(`DBT_BIN=${workdir}/.venv/bin/dbt`);
    // The image runs the packed bin, as package.json names it.
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    expect(Object.keys(pkg.bin)).toEqual(['dbt-deploy']);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["dbt-deploy"\]$/m);
    // The baked example is made by the example's own workspace module, compiled into lib/ by the build.
    expect(dockerfile).toContain('lib/examples/jaffle_shop/workspace.js');
    expect(read('examples/jaffle_shop/workspace.ts')).toContain(
      'export async function createExampleWorkspace',
    );
    expect(read('scripts/build-lib.mjs')).toContain("'lib/worker/failure-converter.cjs'");
  });

  it('starts the dev server with the search attributes the workflows record, at the CLI version setup installs', () => {
    const temporal = compose.services['temporal']!;
    const attributes = Object.fromEntries(
      temporal
        .command!.filter((a) => a.startsWith('--search-attribute='))
        .map((a) => a.slice('--search-attribute='.length).split('=') as [string, string]),
    );
    expect(attributes).toEqual(DEPLOY_SEARCH_ATTRIBUTES);
    const version = /^TEMPORAL_CLI_VERSION=(.+)$/m.exec(read('scripts/setup'))![1];
    expect(temporal.image).toBe(`temporalio/temporal:${version}`);
  });

  it("sets only variables the worker, the CLI or the example's profiles read, and the worker reads them as meant", () => {
    const worker = compose.services['worker']!;
    const env = Object.fromEntries(Object.entries(worker.environment!).map(([k, v]) => [k, interpolate(v)]));
    const settings = temporalSettings(env);
    expect(settings).toMatchObject({
      address: 'temporal:7233',
      namespace: 'default',
      taskQueue: 'dbt-deploy',
    });
    // An empty DBT_DEPLOY_CODEC_KEYS leaves payloads in clear.
    expect(settings.codec).toBeUndefined();

    const sources = ['client', 'worker', 'activities']
      .flatMap((dir) =>
        readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).map((f) => join(dir, f)),
      )
      .filter((f) => f.endsWith('.ts'))
      .map(read)
      .join('\n');
    const profiles = read('examples/jaffle_shop/profiles.yml');
    for (const name of Object.keys(env)) {
      const known =
        sources.includes(`'${name}'`) || // read by the code, e.g. env['DBT_DEPLOY_TASK_QUEUE']
        ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE'].includes(name) || // read by @temporalio/envconfig
        profiles.includes(`env_var('${name}'`) || // the example's PostgreSQL targets
        read('docs/configuration.md').includes(`env_var('${name}')`); // deploy.yml's notify.webhook
      expect(known, `${name} is read by nothing`).toBe(true);
    }
    // The worker reaches the other services by their compose names.
    expect(env['TEMPORAL_ADDRESS']!.split(':')[0]).toBe('temporal');
    expect(env['PGHOST']).toBe('postgres');
    expect(worker.build).toBe('.');
  });

  it('starts the worker and the codec server with flags the CLI has, every port on loopback', () => {
    const cli = buildCli();
    for (const [service, name] of [
      ['worker', 'worker'],
      ['codec-server', 'codec-server'],
    ] as const) {
      const command = compose.services[service]!.command!;
      expect(command[0]).toBe(name);
      const known = cli.commands.find((c) => c.name() === name)!.options.map((o) => o.long);
      for (const flag of command.filter((a) => a.startsWith('--')))
        expect(known, `${service} ${flag}`).toContain(flag);
    }
    for (const [name, service] of Object.entries(compose.services))
      for (const port of service.ports ?? [])
        expect(port, `${name} publishes ${port}`).toMatch(/^127\.0\.0\.1:/);
  });

  const cli = composeCli();
  it.skipIf(!cli)('is a valid compose file for the compose CLI found here', () => {
    execFileSync(cli![0]!, [...cli!.slice(1), '-f', join(ROOT, 'docker-compose.yml'), 'config', '-q'], {
      cwd: ROOT,
      stdio: 'pipe',
    });
  });
});
