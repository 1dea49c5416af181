/**
 * Backups are never destroyed or evicted by someone else's step (issue 8, item 5), checked on a real
 * DuckDB file: location names that cannot collide, a backup step that drops only its own earlier
 * attempt, retention per operation, and backups written by the older format still listed and restored.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backupLocationName } from '../../activities/warehouses/adapter.js';
import { DuckDbAdapter } from '../../activities/warehouses/duckdb/adapter.js';
import { staleBackups } from '../../activities/warehouses/shared/retention.js';
import type { BackupRef, Relation } from '../../workflows/types.js';
import { listSchemas, snapshotSchema } from '../support/harness.js';

const rel = (schema: string, identifier: string): Relation => ({ database: 'wh', schema, identifier });
const at = (hour: number) => `2026-11-25T${String(hour).padStart(2, '0')}:00:00.000Z`;

describe('backups', () => {
  let dir: string;
  let path: string;
  let adapter: DuckDbAdapter;

  const raw = async (sql: string) => {
    await adapter.close();
    const instance = await DuckDBInstance.create(path);
    const connection = await instance.connect();
    await connection.run(sql);
    connection.closeSync();
    instance.closeSync();
    adapter = await DuckDbAdapter.open({ engine: 'duckdb', path, database: 'wh', schema: 'prod' });
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backups-'));
    path = join(dir, 'wh.duckdb');
    adapter = await DuckDbAdapter.open({ engine: 'duckdb', path, database: 'wh', schema: 'prod' });
    await raw(`CREATE SCHEMA prod; CREATE TABLE prod.orders AS SELECT range AS id FROM range(10);`);
  });
  afterEach(async () => {
    await adapter.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives deploy ids that read alike their own locations, so one backup never replaces another', async () => {
    // The old name lower-cased the id and replaced other characters: all three mapped to one schema.
    const ids = ['prod-1', 'prod_1', 'PROD-1'];
    expect(new Set(ids.map((id) => backupLocationName(id))).size).toBe(3);
    for (const [i, id] of ids.entries())
      await adapter.backup(id, [rel('prod', 'orders')], { env: 'prod', createdAt: at(i + 1) });
    expect((await adapter.listBackups()).map((b) => b.deployId)).toEqual(['PROD-1', 'prod_1', 'prod-1']);
    // Long ids stay under PostgreSQL's 63 bytes, and still apart.
    const long = 'x'.repeat(80);
    expect(Buffer.byteLength(backupLocationName(long, 12))).toBeLessThanOrEqual(63);
    expect(backupLocationName(long)).not.toBe(backupLocationName(`${long}y`));
  });

  it('never drops a location it did not create, but replaces its own earlier attempt', async () => {
    const taken = backupLocationName('prod-2');
    await raw(`CREATE SCHEMA "${taken}"; CREATE TABLE "${taken}".keep_me AS SELECT 42 AS answer;`);
    await expect(
      adapter.backup('prod-2', [rel('prod', 'orders')], { env: 'prod', createdAt: at(1) }),
    ).rejects.toThrow(/already exists .* left untouched/);
    await adapter.close();
    expect(Object.keys(await snapshotSchema(path, taken))).toEqual(['keep_me']);
    adapter = await DuckDbAdapter.open({ engine: 'duckdb', path, database: 'wh', schema: 'prod' });

    // A retried step of the same deploy finds its own backup there and takes it again.
    await adapter.backup('prod-3', [rel('prod', 'orders')], { env: 'prod', createdAt: at(1) });
    const again = await adapter.backup('prod-3', [rel('prod', 'orders')], { env: 'prod', createdAt: at(2) });
    expect((await adapter.listBackups()).filter((b) => b.deployId === 'prod-3')).toEqual([again]);
  });

  it('keeps `backups.keep` deploy backups however many mirror refreshes and rollbacks follow', async () => {
    await adapter.backup('deploy-a', [rel('prod', 'orders')], { env: 'prod', createdAt: at(1) });
    await adapter.backup('deploy-b', [rel('prod', 'orders')], { env: 'prod', createdAt: at(2) });
    for (const [i, id] of ['mirror-1', 'mirror-2', 'mirror-3'].entries())
      await adapter.backup(id, [rel('prod', 'orders')], {
        env: 'prod',
        operation: 'mirror',
        createdAt: at(3 + i),
      });
    await adapter.backup('rollback-1', [rel('prod', 'orders')], {
      env: 'prod',
      operation: 'rollback',
      createdAt: at(7),
    });
    await adapter.backup('other-env', [rel('prod', 'orders')], { env: 'dev', createdAt: at(8) });
    const all = await adapter.listBackups();
    // Counting every operation together (the old rule) would leave no deploy backup for rollback.
    const stale = staleBackups(all, 'prod', 1);
    expect(stale.map((b) => b.deployId).sort()).toEqual(['deploy-a', 'mirror-1', 'mirror-2']);
    for (const backup of stale) await adapter.dropBackup(backup);
    const left = await adapter.listBackups();
    expect(left.map((b) => b.deployId)).toEqual(['other-env', 'rollback-1', 'mirror-3', 'deploy-b']);
    expect(staleBackups(all, 'prod', 1, ['deploy-a']).map((b) => b.deployId)).not.toContain('deploy-a');
  });

  it('lists and restores a backup written by the older format and naming', async () => {
    // As the previous code wrote it: name from the lower-cased id, header in every row, no position.
    await raw(`
      CREATE SCHEMA dbt_deploy_backup__prod_old;
      CREATE TABLE dbt_deploy_backup__prod_old.t0__orders AS SELECT range AS id FROM range(3);
      CREATE TABLE dbt_deploy_backup__prod_old._dbt_deploy_backup (deploy_id VARCHAR, env VARCHAR,
        operation VARCHAR, created_at VARCHAR, prod_database VARCHAR, prod_schema VARCHAR,
        prod_identifier VARCHAR, kind VARCHAR, copy_schema VARCHAR, copy_identifier VARCHAR, view_sql VARCHAR);
      INSERT INTO dbt_deploy_backup__prod_old._dbt_deploy_backup VALUES
        ('prod-OLD', 'prod', 'deploy', '${at(1)}', 'wh', 'prod', 'orders', 'table',
         'dbt_deploy_backup__prod_old', 't0__orders', NULL),
        ('prod-OLD', 'prod', 'deploy', '${at(1)}', 'wh', 'prod', 'gone', 'absent', NULL, NULL, NULL);
      CREATE TABLE prod.gone AS SELECT 1 AS x;
    `);
    const [old] = await adapter.listBackups();
    expect(old).toMatchObject({
      deployId: 'prod-OLD',
      operation: 'deploy',
      location: { database: 'wh', schema: 'dbt_deploy_backup__prod_old' },
    } satisfies Partial<BackupRef>);
    await adapter.restore(old as BackupRef);
    expect((await adapter.fingerprint(rel('prod', 'orders'))).rows).toBe(3);
    expect(await adapter.relationKind(rel('prod', 'gone'))).toBe('absent');
    await adapter.close();
    expect(await listSchemas(path)).toContain('dbt_deploy_backup__prod_old');
    adapter = await DuckDbAdapter.open({ engine: 'duckdb', path, database: 'wh', schema: 'prod' });
  });
});
