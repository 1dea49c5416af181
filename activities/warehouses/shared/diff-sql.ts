/**
 * The statements that diff a prod relation against its candidate, built as data from a few
 * expressions each engine spells its own way (a row hash, an aggregate checksum, a row as JSON): the
 * engine folders hold those (`<engine>/diff.ts`), this file the shape every engine shares. Every
 * statement reads both relations in the warehouse and returns a handful of numbers or a few sample
 * rows; no table is ever pulled into the worker. Nothing here does I/O.
 */
import type { Relation } from '../../../workflows/types.js';

/** The pieces of SQL an engine spells its own way. Column names are passed as the catalogue stores them. */
export interface DiffFunctions {
  quoteRelation(relation: Relation): string;
  /** Quotes a name exactly as given (no case folding): names here come from the catalogue. */
  quoteIdentifier(name: string): string;
  quoteLiteral(value: string): string;
  /** `column_name`, `data_type` of the relation's columns, in their order. */
  columns(relation: Relation): string;
  /** One row's hash over the given column expressions, comparable across types cast to text. */
  rowHash(expressions: string[]): string;
  /** An order-independent checksum (as text) of `rowHash` over the rows of a query. */
  checksum(expressions: string[]): string;
  /** A bucket 0..9999 from the same hash, for sampling the same keys on both sides. */
  bucket(expressions: string[]): string;
  /** A whole row of the table aliased `alias`, as JSON text. */
  rowJson(alias: string): string;
}

/** The two relations and what the statements compare them on. */
export interface DiffPair {
  prod: Relation;
  candidate: Relation;
  /** Columns both sides have, as each side stores the name (prod's order). */
  columns: Array<{ prod: string; candidate: string }>;
  /** Key columns, as each side stores them; unset: no key, counts and checksums only. */
  key?: Array<{ prod: string; candidate: string }>;
  /** Compare only rows whose key (or, without a key, whole row) falls in this many buckets of 10,000. */
  sampleBasisPoints?: number;
}

export type SampleKind = 'added' | 'removed' | 'changed';

/** The statements of one relation's diff, in the order they run. */
export interface DiffStatements {
  /** `column_name`, `data_type`, for one side. */
  columns(relation: Relation): string;
  /** `row_count` of one relation (new in prod, or dropped from it). */
  count(relation: Relation): string;
  /** `prod_rows`, `candidate_rows`: exact, whatever the size (engines with table metadata answer from it). */
  counts(prod: Relation, candidate: Relation): string;
  /** `prod_checksum`, `candidate_checksum` over the shared columns (on the sample when sampling). */
  checksums(pair: DiffPair): string;
  /** `added`, `removed`, `changed`: rows matched by key, in one pass over both sides. */
  compare(pair: DiffPair): string;
  /** Up to `limit` rows of one kind: `row_json` (added, removed) or `before_json`, `after_json` (changed). */
  sample(kind: SampleKind, pair: DiffPair, limit: number): string;
  /** `lost`: prod keys the candidate lacks, exactly, on the whole relation (the `no_lost_keys` rule). */
  lostKeys(pair: DiffPair): string;
  /** A custom assertion's first rows: wrapping it in a subquery also keeps it to one SELECT. */
  assertion(sql: string, limit: number): string;
}

export function diffStatements(f: DiffFunctions): DiffStatements {
  const qualify = (alias: string, name: string) => `${alias}.${f.quoteIdentifier(name)}`;
  const side = (pair: DiffPair, which: 'prod' | 'candidate', alias: string) => ({
    from: `${f.quoteRelation(pair[which])} AS ${alias}`,
    columns: pair.columns.map((c) => qualify(alias, c[which])),
    key: (pair.key ?? []).map((k) => qualify(alias, k[which])),
  });
  /** The sample's filter on one side: the same keys (or rows) fall in the same buckets on both. */
  const sampled = (pair: DiffPair, expressions: string[]) =>
    pair.sampleBasisPoints === undefined ? '' : `${f.bucket(expressions)} < ${pair.sampleBasisPoints}`;
  const where = (...conditions: string[]) => {
    const kept = conditions.filter(Boolean);
    return kept.length ? ` WHERE ${kept.join(' AND ')}` : '';
  };
  const keyMatch = (p: string[], c: string[]) => p.map((k, i) => `${k} = ${c[i]}`).join(' AND ');
  const requireKey = (pair: DiffPair) => {
    if (!pair.key?.length) throw new Error('a key is needed to match rows');
  };

  return {
    columns: f.columns,

    count: (relation) => `SELECT COUNT(*) AS row_count FROM ${f.quoteRelation(relation)}`,

    counts: (prod, candidate) =>
      `SELECT (SELECT COUNT(*) FROM ${f.quoteRelation(prod)}) AS prod_rows, ` +
      `(SELECT COUNT(*) FROM ${f.quoteRelation(candidate)}) AS candidate_rows`,

    checksums(pair) {
      const [p, c] = [side(pair, 'prod', 'p'), side(pair, 'candidate', 'c')];
      const sample = (s: typeof p) => sampled(pair, s.key.length ? s.key : s.columns);
      return (
        `SELECT (SELECT ${f.checksum(p.columns)} FROM ${p.from}${where(sample(p))}) AS prod_checksum, ` +
        `(SELECT ${f.checksum(c.columns)} FROM ${c.from}${where(sample(c))}) AS candidate_checksum`
      );
    },

    compare(pair) {
      requireKey(pair);
      const [p, c] = [side(pair, 'prod', 'p'), side(pair, 'candidate', 'c')];
      const keys = (s: typeof p) => s.key.map((k, i) => `${k} AS k${i}`).join(', ');
      const cte = (s: typeof p) =>
        `SELECT ${keys(s)}, ${f.rowHash(s.columns)} AS h__, 1 AS present__ FROM ${s.from}${where(sampled(pair, s.key))}`;
      const on = pair.key!.map((_, i) => `p.k${i} = c.k${i}`).join(' AND ');
      const count = (condition: string) => `COALESCE(SUM(CASE WHEN ${condition} THEN 1 ELSE 0 END), 0)`;
      return (
        `WITH p AS (${cte(p)}), c AS (${cte(c)}) SELECT ` +
        `${count('p.present__ IS NULL')} AS added, ` +
        `${count('c.present__ IS NULL')} AS removed, ` +
        `${count('p.present__ IS NOT NULL AND c.present__ IS NOT NULL AND p.h__ <> c.h__')} AS changed ` +
        `FROM p FULL OUTER JOIN c ON ${on}`
      );
    },

    sample(kind, pair, limit) {
      requireKey(pair);
      const [p, c] = [side(pair, 'prod', 'p'), side(pair, 'candidate', 'c')];
      if (kind === 'changed') {
        return (
          `SELECT ${f.rowJson('p')} AS before_json, ${f.rowJson('c')} AS after_json ` +
          `FROM ${p.from} JOIN ${c.from} ON ${keyMatch(p.key, c.key)}` +
          where(`${f.rowHash(p.columns)} <> ${f.rowHash(c.columns)}`, sampled(pair, p.key)) +
          ` ORDER BY ${p.key.join(', ')} LIMIT ${limit}`
        );
      }
      // Added rows are the candidate's without a prod row of the same key; removed the other way round.
      const [kept, other] = kind === 'added' ? [c, p] : [p, c];
      return (
        `SELECT ${f.rowJson(kept === c ? 'c' : 'p')} AS row_json FROM ${kept.from}` +
        where(
          `NOT EXISTS (SELECT 1 FROM ${other.from} WHERE ${keyMatch(other.key, kept.key)})`,
          sampled(pair, kept.key),
        ) +
        ` ORDER BY ${kept.key.join(', ')} LIMIT ${limit}`
      );
    },

    lostKeys(pair) {
      requireKey(pair);
      const [p, c] = [side(pair, 'prod', 'p'), side(pair, 'candidate', 'c')];
      return `SELECT COUNT(*) AS lost FROM ${p.from} WHERE NOT EXISTS (SELECT 1 FROM ${c.from} WHERE ${keyMatch(c.key, p.key)})`;
    },

    // On lines of their own: a comment closing the user's SQL must not swallow the parenthesis.
    assertion: (sql, limit) =>
      `SELECT * FROM (\n${sql.trim().replace(/;\s*$/, '')}\n) AS assertion LIMIT ${limit}`,
  };
}
