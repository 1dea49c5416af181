/**
 * Bad inputs that preflight cannot see, because they only show when the deploy runs: a relation
 * dropped by hand between deploys, a warehouse nobody answers at, a full disk under the artifacts
 * folder. Each must end as a deploy that did not publish, with one line saying why, and prod exactly
 * as it was (checksums read with a plain client).
 */
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../client/dev-server.js';
import {
  type ExampleProject,
  exampleProject,
  listSchemas,
  look,
  snapshotSchema,
  startTestWorker,
  type TestWorker,
} from '../support/harness.js';
import { onCleanUp } from '../support/scratch.js';

const PROD = 'analytics';
const backups = async (project: ExampleProject) =>
  (await listSchemas(project)).filter((s) => s.startsWith('dbt_deploy_backup__'));

// Two deploys each, on a machine that may be busy: generous, since a timed-out deploy blocks the next.
describe('bad inputs at run time: not published, one line why, prod untouched', { timeout: 600_000 }, () => {
  let worker: TestWorker;
  beforeAll(async () => {
    worker = await startTestWorker('test-inputs');
  });
  afterAll(async () => worker?.stop());

  it('a source relation dropped by hand between deploys', async () => {
    const project = await exampleProject();
    expect((await worker.deploy({ projectDir: project.dir })).status).toBe('published');
    const [prod, kept] = [await snapshotSchema(project, PROD), await backups(project)];
    await look(project, (read) => read('DROP TABLE raw.payments'));

    const result = await worker.deploy({ projectDir: project.dir });

    expect(result.status).toBe('failed');
    expect(result.reason?.split('\n'), result.reason).toHaveLength(1);
    expect(result.reason).toMatch(/raw_payments|payments/);
    expect(await snapshotSchema(project, PROD)).toEqual(prod);
    expect(await backups(project)).toEqual(kept);
  });

  it('a prod relation dropped by hand between deploys is rebuilt by the next publish, or prod stays as it was', async () => {
    const project = await exampleProject('postgres');
    expect((await worker.deploy({ projectDir: project.dir, strategy: 'blue-green' })).status).toBe(
      'published',
    );
    const full = Object.keys(await snapshotSchema(project, PROD)).sort();
    await look(project, (read) => read(`DROP TABLE ${PROD}.dim_customers CASCADE`));
    const dropped = await snapshotSchema(project, PROD);

    const result = await worker.deploy({ projectDir: project.dir, strategy: 'blue-green' });

    const after = await snapshotSchema(project, PROD);
    if (result.status === 'published') expect(Object.keys(after).sort()).toEqual(full);
    else {
      expect(result.reason?.split('\n'), result.reason).toHaveLength(1);
      expect(after).toEqual(dropped);
    }
  });

  it('a warehouse nobody answers at', async () => {
    const project = await exampleProject('postgres');
    const closed = await freePort();
    const profiles = join(project.dir, 'profiles.yml');
    await writeFile(profiles, (await readFile(profiles, 'utf8')).replace(/port: \d+/g, `port: ${closed}`));

    const result = await worker.deploy({ projectDir: project.dir, strategy: 'wac' });

    expect(result.status).toBe('failed');
    expect(result.reason?.split('\n'), result.reason).toHaveLength(1);
    expect(result.reason).toMatch(new RegExp(`ECONNREFUSED|connection refused|${closed}`, 'i'));
    expect(result.steps.some((s) => s.status === 'compensated')).toBe(false);
  });

  it('a full disk under the artifacts folder (a 192 KiB tmpfs mounted on target/)', async () => {
    const project = await exampleProject();
    expect((await worker.deploy({ projectDir: project.dir })).status).toBe('published');
    const [prod, kept] = [await snapshotSchema(project, PROD), await backups(project)];
    const target = join(project.dir, 'target');
    await mkdir(target, { recursive: true });
    // Root in a container that allows mounts (checked by this test); a read-only folder would not
    // stop root from writing, so a real size limit is the only honest full disk.
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=192k', 'tmpfs', target]);
    onCleanUp(() => execa('umount', ['-l', target]));

    const result = await worker.deploy({ projectDir: project.dir });

    expect(result.status).toBe('failed');
    expect(result.reason?.split('\n'), result.reason).toHaveLength(1);
    expect(result.reason).toMatch(/No space left on device|ENOSPC/i);
    expect(await snapshotSchema(project, PROD)).toEqual(prod);
    expect(await backups(project)).toEqual(kept);
  });
});
