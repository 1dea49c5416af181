/**
 * Why an audit blocked, as the deploy's reason says it: the nodes that failed first, with dbt's own
 * message, the skipped ones counted, and a missing source table named with what loads it.
 */
import { describe, expect, it } from 'vitest';
import { type Manifest, type RunResults, summarizeRunResults } from '../../activities/artifacts.js';
import {
  blockingSummary,
  dbtMessage,
  explainBlocking,
  missingSources,
  rootFailures,
} from '../../activities/audit-reason.js';

const DUCKDB_MISSING =
  'Runtime Error in model raw_orders (models/raw/raw_orders.sql)\n  Catalog Error: Table with name "raw.orders" does not exist because schema "raw" does not exist.\n  \n  LINE 13: select * from "jaffle_shop"."raw"."orders"\n                         ^';
const POSTGRES_MISSING =
  'Database Error in model raw_orders (models/raw/raw_orders.sql)\n  relation "raw.orders" does not exist\n  LINE 13: select * from "jaffle"."raw"."orders"\n                         ^';

function run(...results: Array<[string, string, string?]>): RunResults {
  return {
    metadata: { dbt_schema_version: 'https://schemas.getdbt.com/dbt/run-results/v6.json' },
    elapsed_time: 1,
    results: results.map(([unique_id, status, message]) => ({
      unique_id,
      status,
      message: message ?? null,
      failures: null,
      execution_time: 0.1,
    })),
  };
}

/** 30 skipped tests listed before the two nodes whose failure skipped them, as dbt may order them. */
const SKIPPED_FIRST = run(
  ...Array.from({ length: 30 }, (_, i): [string, string] => [`test.shop.t${i}.${i}`, 'skipped']),
  ['model.shop.stg_orders', 'skipped'],
  ['model.shop.raw_orders', 'error', DUCKDB_MISSING],
  ['test.shop.accepted_values_status.1', 'fail', 'Got 1 result, configured to fail if != 0'],
  ['model.shop.util_calendar', 'success', 'OK'],
);

const MANIFEST: Manifest = {
  metadata: { dbt_schema_version: 'v12' },
  nodes: {
    'model.shop.raw_orders': {
      unique_id: 'model.shop.raw_orders',
      resource_type: 'model',
      name: 'raw_orders',
      database: 'jaffle_shop',
      schema: 'analytics_staging',
      alias: null,
      relation_name: null,
      tags: [],
      config: { materialized: 'table' },
      depends_on: { nodes: ['source.shop.shop.orders'] },
    },
  },
  sources: {
    'source.shop.shop.orders': {
      unique_id: 'source.shop.shop.orders',
      source_name: 'shop',
      name: 'orders',
      identifier: 'orders',
      schema: 'raw',
      relation_name: '"jaffle_shop"."raw"."orders"',
      loader: 'npm run example:sources',
    },
  },
};

describe('why an audit blocked', () => {
  it('lists the failed nodes before the skipped ones, even past the 25 it keeps', () => {
    const audit = summarizeRunResults(SKIPPED_FIRST);
    expect(audit.blocking).toHaveLength(25);
    expect(audit.blocking.slice(0, 2).map((n) => [n.name, n.status])).toEqual([
      ['raw_orders', 'error'],
      ['accepted_values_status.1', 'fail'],
    ]);
    expect(rootFailures(audit).map((n) => n.name)).toEqual(['raw_orders', 'accepted_values_status.1']);
  });

  it("keeps dbt's own words, without its heading and the SQL excerpt", () => {
    expect(dbtMessage(DUCKDB_MISSING)).toBe(
      'Catalog Error: Table with name "raw.orders" does not exist because schema "raw" does not exist.',
    );
    expect(dbtMessage(POSTGRES_MISSING)).toBe('relation "raw.orders" does not exist');
    expect(dbtMessage('Got 1 result, configured to fail if != 0')).toBe(
      'Got 1 result, configured to fail if != 0',
    );
    expect(dbtMessage(`x ${'y'.repeat(400)}`, 50)).toHaveLength(50);
  });

  it('names the failures with their messages, then counts the skipped, then the missing source and its loader', () => {
    const audit = summarizeRunResults(SKIPPED_FIRST);
    const missing = missingSources(MANIFEST, rootFailures(audit));
    expect(missing).toEqual([
      { name: 'shop.orders', relation: '"jaffle_shop"."raw"."orders"', loader: 'npm run example:sources' },
    ]);
    expect(explainBlocking(audit, missing)).toBe(
      '2 failed: raw_orders (error): Catalog Error: Table with name "raw.orders" does not exist because schema "raw" does not exist.; ' +
        'accepted_values_status.1 (fail): Got 1 result, configured to fail if != 0; ' +
        '31 skipped because of them; ' +
        'the source table shop.orders ("jaffle_shop"."raw"."orders") does not exist: dbt does not load sources; load it with npm run example:sources, then deploy again',
    );
    expect(blockingSummary(audit)).toBe(
      '2 failed, 31 skipped: raw_orders (error), accepted_values_status.1 (fail)',
    );
  });

  it('finds a source missing on PostgreSQL too, and none when the error is about something else', () => {
    const postgres = summarizeRunResults(run(['model.shop.raw_orders', 'error', POSTGRES_MISSING]));
    expect(missingSources(MANIFEST, rootFailures(postgres)).map((s) => s.name)).toEqual(['shop.orders']);
    const other = summarizeRunResults(
      run([
        'model.shop.raw_orders',
        'error',
        'Runtime Error in model raw_orders (x.sql)\n  Binder Error: column "id" not found in orders',
      ]),
    );
    // "not found" and the table's name, but the relation exists: a column is what is missing.
    expect(missingSources(MANIFEST, rootFailures(other))).toEqual([]);
  });

  it('names five failures and counts the rest', () => {
    const audit = summarizeRunResults(
      run(
        ...Array.from({ length: 8 }, (_, i): [string, string, string] => [
          `model.shop.m${i}`,
          'error',
          `boom ${i}`,
        ]),
      ),
    );
    expect(explainBlocking(audit)).toBe(
      '8 failed: m0 (error): boom 0; m1 (error): boom 1; m2 (error): boom 2; m3 (error): boom 3; m4 (error): boom 4; and 3 more',
    );
  });
});
