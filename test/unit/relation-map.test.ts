/** Which nodes the relation map holds and which a deploy publishes: pure functions over dbt's artifacts. */
import { describe, expect, it } from 'vitest';
import type { Manifest, ManifestNode, RunResults } from '../../activities/artifacts.js';
import {
  buildRelationMap,
  modelsIn,
  pairListed,
  publishSetOf,
  relationOf,
} from '../../activities/relation-map.js';

function node(
  uniqueId: string,
  materialized: string,
  tags: string[] = [],
  dependsOn: string[] = [],
): ManifestNode {
  const [resourceType = '', , name = ''] = uniqueId.split('.');
  return {
    unique_id: uniqueId,
    resource_type: resourceType,
    name,
    database: 'shop',
    schema: 'analytics',
    alias: name,
    relation_name: `"shop"."analytics"."${name}"`,
    tags,
    config: { materialized },
    // As dbt writes them: a seed's `depends_on` lists macros only.
    depends_on: resourceType === 'seed' ? {} : { nodes: dependsOn },
    ...(materialized === 'view' ? { compiled_code: `select * from analytics.${name}` } : {}),
  };
}

const NODES = [
  node('model.p.raw_customers', 'table', ['raw']),
  node('snapshot.p.customers_snapshot', 'snapshot', ['raw']),
  node('seed.p.segments', 'seed'),
  node('model.p.dim_customers', 'table', ['mart'], ['snapshot.p.customers_snapshot']),
  node('model.p.revenue', 'view', ['mart'], ['model.p.dim_customers', 'seed.p.segments']),
  node('model.p.helper', 'ephemeral'),
  node('test.p.unique_segments', 'test'),
];
const manifest: Manifest = {
  metadata: { dbt_schema_version: 'https://schemas.getdbt.com/dbt/manifest/v12.json' },
  nodes: Object.fromEntries(NODES.map((n) => [n.unique_id, n])),
};
/** What `dbt ls` prints for the build target: the same nodes in the staging schema. */
const listing = NODES.map((n) =>
  JSON.stringify({
    unique_id: n.unique_id,
    name: n.name,
    database: 'shop',
    schema: 'staging',
    alias: n.name,
  }),
);
const targets = { prodTarget: 'prod', buildTarget: 'staging' };
const everythingBuilt: RunResults = {
  metadata: { dbt_schema_version: 'https://schemas.getdbt.com/dbt/run-results/v6.json' },
  elapsed_time: 1,
  results: NODES.filter((n) => n.config.materialized !== 'ephemeral').map((n) => ({
    unique_id: n.unique_id,
    status: n.resource_type === 'test' ? 'pass' : 'success',
    message: null,
    failures: null,
    execution_time: 0.1,
  })),
};
const names = (set: ReturnType<typeof publishSetOf>) =>
  [...set.tables, ...set.views].map((m) => m.name).sort();

describe('relation map', () => {
  it('maps seeds and snapshots beside the models, with where each lives in prod and in the build', () => {
    const map = buildRelationMap(manifest, listing, new Set(), targets);
    expect(map.models.map((m) => [m.name, m.resourceType, m.materialized]).sort()).toEqual([
      ['customers_snapshot', 'snapshot', 'snapshot'],
      ['dim_customers', 'model', 'table'],
      ['raw_customers', 'model', 'table'],
      ['revenue', 'model', 'view'],
      ['segments', 'seed', 'seed'],
    ]);
    const snapshot = map.models.find((m) => m.name === 'customers_snapshot');
    expect(snapshot?.prod).toEqual({
      database: 'shop',
      schema: 'analytics',
      identifier: 'customers_snapshot',
    });
    expect(snapshot?.build).toEqual({
      database: 'shop',
      schema: 'staging',
      identifier: 'customers_snapshot',
    });
  });

  it('publishes every seed and snapshot the build produced, parents before the view that reads them', () => {
    const map = buildRelationMap(manifest, listing, new Set(), targets);
    const all = publishSetOf(map, everythingBuilt, 'all', ['mart']);
    expect(names(all)).toEqual([
      'customers_snapshot',
      'dim_customers',
      'raw_customers',
      'revenue',
      'segments',
    ]);
    expect(all.tables.map((t) => t.materialized).sort()).toEqual(['seed', 'snapshot', 'table', 'table']);
    // A snapshot that failed is not published: prod keeps its history as it was.
    const failed = {
      ...everythingBuilt,
      results: everythingBuilt.results.map((r) =>
        r.unique_id.startsWith('snapshot.') ? { ...r, status: 'error' } : r,
      ),
    };
    expect(names(publishSetOf(map, failed, 'built', ['mart']))).not.toContain('customers_snapshot');
  });

  it('adds every seed and snapshot to the tagged models, except the raw layer a mirror owns', () => {
    const plain = buildRelationMap(manifest, listing, new Set(), targets);
    const tagged = publishSetOf(plain, everythingBuilt, 'tagged', ['mart']);
    expect(names(tagged)).toEqual(['customers_snapshot', 'dim_customers', 'revenue', 'segments']);
    expect(modelsIn(tagged)).toBe(2);

    const mirrored = buildRelationMap(
      manifest,
      listing,
      new Set(['model.p.raw_customers', 'snapshot.p.customers_snapshot']),
      targets,
    );
    expect(names(publishSetOf(mirrored, everythingBuilt, 'tagged', ['mart']))).toEqual([
      'dim_customers',
      'revenue',
      'segments',
    ]);
  });

  it('counts no model in a publish set of seeds and snapshots alone', () => {
    const map = buildRelationMap(manifest, listing, new Set(), targets);
    expect(modelsIn(publishSetOf(map, everythingBuilt, 'tagged', ['nothing-has-this-tag']))).toBe(0);
  });

  it('pairs a listing with prod relations by unique id, leaving out what prod does not know', () => {
    const prod = new Map([['snapshot.p.customers_snapshot', relationOf(NODES[1]!)]]);
    expect(pairListed(listing, (id) => prod.get(id))).toEqual([
      {
        name: 'customers_snapshot',
        prod: { database: 'shop', schema: 'analytics', identifier: 'customers_snapshot' },
        build: { database: 'shop', schema: 'staging', identifier: 'customers_snapshot' },
      },
    ]);
  });
});
