/**
 * What a deploy carries through history: references, not lists that grow with the project. Each
 * activity is sent only the state fields it reads; the publish set travels as a file, a backup as a
 * handle whose entries are read back from its manifest in the warehouse (a real DuckDB file here).
 * Results recorded before references carried those lists inline: they must still be read, so a deploy
 * started on the older code resumes on the newer.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { writeArtifact } from '../../activities/artifacts.js';
import type { DeployState } from '../../activities/steps.js';
import { backupIn, requirePublishSet } from '../../activities/step-context.js';
import { DuckDbAdapter } from '../../activities/warehouses/duckdb/adapter.js';
import { backupHandle, publishedOf, STATE_READS, stateFor } from '../../workflows/state.js';
import type { PublishSet, Relation } from '../../workflows/types.js';
import { scratchDir } from '../support/scratch.js';

const rel = (schema: string, identifier: string): Relation => ({ database: 'wh', schema, identifier });
const PUBLISH_SET: PublishSet = {
  tables: [
    {
      uniqueId: 'model.p.orders',
      name: 'orders',
      materialized: 'table',
      staging: rel('staging', 'orders'),
      prod: rel('prod', 'orders'),
    },
  ],
  views: [],
};
const REF = { uri: 'file:///nowhere/publish-set.json', sha256: '0'.repeat(64), bytes: 10 };

describe('the state each activity is sent', () => {
  const state: DeployState = {
    artifacts: { build: { dir: '/a/build' } },
    publishSetRef: REF,
    relations: REF,
    backup: {
      deployId: 'd',
      env: 'prod',
      createdAt: 't',
      location: { database: 'wh', schema: 'b' },
      relations: 3,
    },
    published: ['wh.prod.orders'],
    publishedCount: 1,
  };

  it('holds only the fields the activity reads', () => {
    expect(stateFor('publishTables', state)).toEqual({ publishSetRef: REF });
    expect(stateFor('restoreProd', state)).toEqual({ backup: state.backup });
    expect(stateFor('resolveRelations', state)).toEqual({});
    expect(Object.keys(stateFor('verifyProd', state)).sort()).toEqual(['artifacts', 'publishSetRef']);
    // No activity is ever sent what only the workflow's result needs.
    for (const reads of Object.values(STATE_READS)) expect(reads).not.toContain('published');
  });

  it('still forwards the inline lists of results recorded before references', () => {
    const before = { artifacts: {}, publishSet: PUBLISH_SET, expected: [] } as DeployState;
    expect(stateFor('publishTables', before)).toEqual({ publishSet: PUBLISH_SET });
    expect(stateFor('verifyProd', before)).toEqual({ artifacts: {}, publishSet: PUBLISH_SET, expected: [] });
  });

  it('names at most 50 published relations and counts them all, also from results recorded before counts', () => {
    const names = Array.from({ length: 60 }, (_, i) => `wh.prod.m${i}`);
    expect(publishedOf({ published: names })).toEqual({ published: names.slice(0, 50), publishedCount: 60 });
    expect(publishedOf({ published: names.slice(0, 50), publishedCount: 5000 }).publishedCount).toBe(5000);
  });
});

describe('reading the references back', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await scratchDir('state-references-', inject('scratchRoot'));
  });

  it('reads the publish set from its file, or from the state where an older result carried it', async () => {
    const publishSetRef = await writeArtifact(join(dir, 'select', 'publish-set.json'), PUBLISH_SET);
    expect(await requirePublishSet({ publishSetRef })).toEqual(PUBLISH_SET);
    expect(await requirePublishSet({ publishSet: PUBLISH_SET })).toEqual(PUBLISH_SET);
    // A file changed after its reference was taken is refused, not published.
    await writeFile(new URL(publishSetRef.uri), JSON.stringify({ tables: [], views: [] }));
    await expect(requirePublishSet({ publishSetRef })).rejects.toThrow(/sha256 mismatch/);
  });

  describe('a backup handle', () => {
    let adapter: DuckDbAdapter;

    beforeEach(async () => {
      const path = join(dir, 'wh.duckdb');
      const instance = await DuckDBInstance.create(path);
      const connection = await instance.connect();
      await connection.run(
        'CREATE SCHEMA prod; CREATE TABLE prod.orders AS SELECT range AS id FROM range(10); ' +
          'CREATE VIEW prod.order_count AS SELECT count(*) AS n FROM prod.orders',
      );
      connection.closeSync();
      instance.closeSync();
      adapter = await DuckDbAdapter.open({ engine: 'duckdb', path, database: 'wh', schema: 'prod' });
    });
    afterEach(async () => adapter.close());

    it('carries no entries, and gets them back from the backup manifest in the warehouse', async () => {
      const relations = [rel('prod', 'orders'), rel('prod', 'order_count'), rel('prod', 'gone')];
      const backup = await adapter.backup('deploy-1', relations, { env: 'prod', createdAt: 't' });
      const handle = backupHandle(backup);
      expect(handle).not.toHaveProperty('entries');
      expect(handle.relations).toBe(3);
      expect(await backupIn(adapter, handle)).toEqual(backup);
      // A handle recorded before handles carries its entries: those are used as they are.
      const older = { ...handle, entries: backup.entries.slice(0, 1) };
      expect((await backupIn(adapter, older))?.entries).toEqual(backup.entries.slice(0, 1));
      await adapter.dropBackup(backup);
      expect(await backupIn(adapter, handle)).toBeUndefined();
    });
  });
});
