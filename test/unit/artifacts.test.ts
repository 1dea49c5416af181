import { describe, expect, it } from 'vitest';
import { type RunResults, summarizeRunResults } from '../../activities/artifacts.js';

function runResults(...results: [string, string][]): RunResults {
  return {
    metadata: { dbt_schema_version: 'https://schemas.getdbt.com/dbt/run-results/v6.json' },
    elapsed_time: 1,
    results: results.map(([unique_id, status]) => ({
      unique_id,
      status,
      message: null,
      failures: null,
      execution_time: 0.1,
    })),
  };
}

describe('audit of run_results.json', () => {
  it('passes only when every model succeeded and every test passed', () => {
    const summary = summarizeRunResults(
      runResults(
        ['model.shop.a', 'success'],
        ['test.shop.unique_a_id.1', 'pass'],
        ['test.shop.not_null_a_id.2', 'pass'],
      ),
    );
    expect(summary).toMatchObject({ passed: true, models: { success: 1 }, tests: { pass: 2 }, blocking: [] });
  });

  it.each(['warn', 'fail', 'error', 'skipped'])('blocks on a test that ends %s', (status) => {
    const summary = summarizeRunResults(
      runResults(['model.shop.a', 'success'], ['test.shop.unique_a_id.1', status]),
    );
    expect(summary.passed).toBe(false);
    expect(summary.blocking).toEqual([
      { uniqueId: 'test.shop.unique_a_id.1', name: 'unique_a_id.1', status },
    ]);
  });

  it.each(['error', 'skipped', 'partial success'])('blocks on a model that ends %s', (status) => {
    expect(summarizeRunResults(runResults(['model.shop.a', status])).passed).toBe(false);
  });

  it('does not pass an empty run', () => {
    expect(summarizeRunResults(runResults()).passed).toBe(false);
  });

  it('names at most 25 blocking nodes but counts them all', () => {
    const many = Array.from({ length: 40 }, (_, i) => [`test.shop.t${i}`, 'fail'] as [string, string]);
    const summary = summarizeRunResults(runResults(...many));
    expect(summary.blocking).toHaveLength(25);
    expect(summary.tests['fail']).toBe(40);
  });
});
