/**
 * Diffs each relation a deploy is about to publish against its current prod version, in the warehouse:
 * row counts, rows added, removed and changed by primary key, columns added, removed and retyped, and a
 * few sample rows of each kind. Which key: the model's `unique_key`, else a `unique` test on one of its
 * columns (or `unique_combination_of_columns`), `dbt_scd_id` for a snapshot; without one, counts and
 * checksums only. Relations larger than `sampleAboveRows` are compared on a deterministic sample of
 * their keys. The SQL is each engine's (`warehouses/<engine>/diff.ts`); this file decides what runs.
 */
import type { Engine } from './warehouses/capabilities.js';
import type { Manifest, ManifestNode } from './artifacts.js';
import type { DiffColumn, DiffSettings, RelationDiff } from '../workflows/diff.js';
import type { PublishSet, Relation } from '../workflows/types.js';
import { type AuditTarget, field, plain } from './audit-rules.js';
import { bigQueryDiffStatements } from './warehouses/bigquery/diff.js';
import { duckDbDiffStatements } from './warehouses/duckdb/diff.js';
import { postgresDiffStatements } from './warehouses/postgres/diff.js';
import type { DiffPair, DiffStatements, SampleKind } from './warehouses/shared/diff-sql.js';
import { snowflakeDiffStatements } from './warehouses/snowflake/diff.js';
import type { RelationKind } from './warehouses/adapter.js';
import { relationName } from './warehouses/adapter.js';

export function diffStatementsFor(engine: Engine): DiffStatements {
  switch (engine) {
    case 'duckdb':
      return duckDbDiffStatements;
    case 'postgres':
      return postgresDiffStatements;
    case 'snowflake':
      return snowflakeDiffStatements;
    case 'bigquery':
      return bigQueryDiffStatements;
  }
}

/** What the diff needs of a warehouse session: read-only statements and where relations are. */
export interface DiffSession {
  query(sql: string): Promise<Array<Record<string, unknown>>>;
  relationKind(relation: Relation): Promise<RelationKind>;
}

/** A relation to diff: a published model with its candidate, or a prod relation the publish drops. */
export interface DiffTarget {
  name: string;
  resourceType: string;
  materialized: string;
  tags: string[];
  prod: Relation;
  /** Null: the publish drops the prod relation. */
  candidate: Relation | null;
  key?: { columns: string[]; from: 'unique_key' | 'unique test' | 'snapshot' };
}

/** The published models (and the relations blue-green drops) with what the manifest says of each. */
export function diffTargets(publishSet: PublishSet, manifest: Manifest | undefined): DiffTarget[] {
  const tests = uniqueTestsByNode(manifest);
  const models = [...publishSet.tables, ...publishSet.views].map((model): DiffTarget => {
    const node = manifest?.nodes[model.uniqueId];
    const resourceType = model.uniqueId.split('.')[0] ?? 'model';
    const key = keyOf(node, resourceType, tests.get(model.uniqueId));
    return {
      name: model.name,
      resourceType,
      materialized: model.materialized,
      tags: node?.tags ?? [],
      prod: model.prod,
      candidate: model.staging,
      ...(key ? { key } : {}),
    };
  });
  const dropped = (publishSet.drop ?? []).map((prod): DiffTarget => ({
    name: prod.identifier,
    resourceType: 'relation',
    materialized: 'unknown',
    tags: [],
    prod,
    candidate: null,
  }));
  return [...models, ...dropped];
}

/** A test node as far as finding a model's unique columns goes (manifest v12). */
interface TestNode extends ManifestNode {
  attached_node?: string | null;
  column_name?: string | null;
  test_metadata?: { name?: string; namespace?: string | null; kwargs?: Record<string, unknown> } | null;
}

const IDENTIFIER = /^[A-Za-z_][\w$]*$/;

/** For each model, the column lists its `unique` (or `unique_combination_of_columns`) tests assert. */
function uniqueTestsByNode(manifest: Manifest | undefined): Map<string, string[][]> {
  const found = new Map<string, string[][]>();
  for (const node of Object.values(manifest?.nodes ?? {}) as TestNode[]) {
    if (node.resource_type !== 'test' || !node.test_metadata) continue;
    const attached = node.attached_node ?? node.depends_on.nodes?.find((id) => !id.startsWith('test.'));
    if (!attached) continue;
    const { name, kwargs = {} } = node.test_metadata;
    let columns: unknown[] | undefined;
    if (name === 'unique') columns = [node.column_name ?? kwargs['column_name']];
    if (name === 'unique_combination_of_columns') columns = kwargs['combination_of_columns'] as unknown[];
    if (!Array.isArray(columns) || !columns.every((c) => typeof c === 'string' && IDENTIFIER.test(c)))
      continue;
    found.set(attached, [...(found.get(attached) ?? []), columns as string[]]);
  }
  return found;
}

function keyOf(
  node: ManifestNode | undefined,
  resourceType: string,
  tested: string[][] = [],
): DiffTarget['key'] {
  // A snapshot holds many versions of each source row: dbt's own id of a version is what is unique.
  if (resourceType === 'snapshot') return { columns: ['dbt_scd_id'], from: 'snapshot' };
  const declared = node?.config.unique_key;
  const columns =
    declared === undefined || declared === null ? [] : Array.isArray(declared) ? declared : [declared];
  if (columns.length > 0 && columns.every((c) => IDENTIFIER.test(c))) return { columns, from: 'unique_key' };
  // The narrowest tested key, and among equals the first by name, so the same project picks the same key.
  const [best] = [...tested].sort((a, b) => a.length - b.length || a.join().localeCompare(b.join()));
  return best ? { columns: best, from: 'unique test' } : undefined;
}

/** One relation's diff, and what its comparison ran on (the rules reuse it). */
export async function diffRelation(
  session: DiffSession,
  statements: DiffStatements,
  target: DiffTarget,
  settings: DiffSettings,
): Promise<{ diff: RelationDiff; pair?: DiffPair }> {
  const diff: RelationDiff = {
    name: target.name,
    status: 'unchanged',
    materialized: target.materialized,
    prod: relationName(target.prod),
    candidate: target.candidate ? relationName(target.candidate) : null,
    rows: { before: null, after: null },
    columns: { added: [], removed: [], retyped: [] },
  };
  const first = async (sql: string) => (await session.query(sql))[0];
  try {
    const prodKind = await session.relationKind(target.prod);
    if (!target.candidate) {
      diff.status = 'dropped';
      if (prodKind !== 'absent')
        diff.rows.before = count(await first(statements.count(target.prod)), 'row_count');
      return { diff };
    }
    const { candidate } = target;
    if (prodKind === 'absent') {
      diff.status = 'new';
      diff.rows.after = count(await first(statements.count(candidate)), 'row_count');
      return { diff };
    }
    const counts = await first(statements.counts(target.prod, candidate));
    diff.rows = { before: count(counts, 'prod_rows'), after: count(counts, 'candidate_rows') };
    const [before, after] = [
      await columnsOf(session, statements, target.prod),
      await columnsOf(session, statements, candidate),
    ];
    const shared = compareColumns(before, after, diff);
    const pair: DiffPair = { prod: target.prod, candidate, columns: shared };
    if (target.key) {
      const key = target.key.columns.map((name) =>
        shared.find((c) => c.prod.toLowerCase() === name.toLowerCase()),
      );
      const missing = target.key.columns.filter((_, i) => key[i] === undefined);
      if (missing.length === 0) {
        pair.key = key as NonNullable<DiffPair['key']>;
        diff.key = { columns: pair.key.map((k) => k.prod), from: target.key.from };
      } else
        diff.keyNote = `key ${missing.join(', ')} (${target.key.from}) is not a column of both relations`;
    } else diff.keyNote = 'no unique_key and no unique test: counts and checksums only';
    if (Math.max(diff.rows.before ?? 0, diff.rows.after ?? 0) > settings.sampleAboveRows) {
      pair.sampleBasisPoints = Math.max(1, Math.round(settings.samplePercent * 100));
      diff.sampledPercent = settings.samplePercent;
    }
    if (shared.length > 0) {
      const sums = await first(statements.checksums(pair));
      diff.checksums = {
        before: String(field(sums, 'prod_checksum')),
        after: String(field(sums, 'candidate_checksum')),
        columns: shared.length,
      };
    }
    const sameColumns =
      !diff.columns.added.length && !diff.columns.removed.length && !diff.columns.retyped.length;
    const identical =
      sameColumns && diff.rows.before === diff.rows.after && diff.checksums?.before === diff.checksums?.after;
    if (identical) {
      if (pair.key) diff.rowChanges = { added: 0, removed: 0, changed: 0 };
      return { diff, pair };
    }
    diff.status = 'changed';
    if (!pair.key) return { diff, pair };
    const compared = await first(statements.compare(pair));
    const scale = (n: number) =>
      pair.sampleBasisPoints === undefined ? n : Math.round((n * 10_000) / pair.sampleBasisPoints);
    const found = {
      added: count(compared, 'added'),
      removed: count(compared, 'removed'),
      changed: count(compared, 'changed'),
    };
    diff.rowChanges = {
      added: scale(found.added),
      removed: scale(found.removed),
      changed: scale(found.changed),
    };
    if (settings.sampleRows > 0)
      diff.samples = await samples(session, statements, pair, found, settings.sampleRows);
    return { diff, pair };
  } catch (error) {
    diff.status = 'error';
    diff.error = (error instanceof Error ? error.message : String(error)).split('\n')[0];
    return { diff };
  }
}

function count(row: Record<string, unknown> | undefined, name: string): number {
  const value = Number(field(row, name));
  if (!Number.isFinite(value)) throw new Error(`no ${name} in the answer`);
  return value;
}

async function columnsOf(
  session: DiffSession,
  statements: DiffStatements,
  relation: Relation,
): Promise<DiffColumn[]> {
  const rows = await session.query(statements.columns(relation));
  return rows.map((row) => ({
    name: String(field(row, 'column_name')),
    type: String(field(row, 'data_type')),
  }));
}

/** Fills in added, removed and retyped columns; returns the shared ones in prod's order. */
function compareColumns(before: DiffColumn[], after: DiffColumn[], diff: RelationDiff): DiffPair['columns'] {
  const byName = new Map(after.map((c) => [c.name.toLowerCase(), c]));
  const shared: DiffPair['columns'] = [];
  for (const column of before) {
    const other = byName.get(column.name.toLowerCase());
    if (!other) {
      diff.columns.removed.push(column);
      continue;
    }
    shared.push({ prod: column.name, candidate: other.name });
    if (column.type.toLowerCase() !== other.type.toLowerCase())
      diff.columns.retyped.push({ name: column.name, before: column.type, after: other.type });
  }
  const kept = new Set(before.map((c) => c.name.toLowerCase()));
  diff.columns.added.push(...after.filter((c) => !kept.has(c.name.toLowerCase())));
  return shared;
}

async function samples(
  session: DiffSession,
  statements: DiffStatements,
  pair: DiffPair,
  found: Record<SampleKind, number>,
  limit: number,
): Promise<NonNullable<RelationDiff['samples']>> {
  const rows = async (kind: SampleKind) =>
    found[kind] > 0 ? session.query(statements.sample(kind, pair, limit)) : [];
  const added = await rows('added');
  const removed = await rows('removed');
  const changed = await rows('changed');
  return {
    added: added.map((r) => json(field(r, 'row_json'))),
    removed: removed.map((r) => json(field(r, 'row_json'))),
    changed: changed.map((r) => ({
      before: json(field(r, 'before_json')),
      after: json(field(r, 'after_json')),
    })),
  };
}

function json(value: unknown): Record<string, unknown> {
  if (typeof value === 'string') {
    try {
      return plain(JSON.parse(value) as Record<string, unknown>);
    } catch {
      return { value };
    }
  }
  return plain(value as Record<string, unknown>);
}

/** The relations rules can check: every published one, with its diff and what it was compared on. */
export function auditTargets(
  targets: DiffTarget[],
  diffs: Array<{ diff: RelationDiff; pair?: DiffPair }>,
): AuditTarget[] {
  return targets.flatMap((target, index) => {
    const found = diffs[index]!;
    if (!target.candidate) return [];
    return [
      {
        name: target.name,
        resourceType: target.resourceType,
        materialized: target.materialized,
        tags: target.tags,
        prod: target.prod,
        candidate: target.candidate,
        diff: found.diff,
        ...(found.pair ? { pair: found.pair } : {}),
      },
    ];
  });
}
