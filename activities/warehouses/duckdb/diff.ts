/**
 * DuckDB's spelling of the diff (see shared/diff-sql.ts): `hash()` over the columns cast to text (one
 * call hashes several values, NULLs included by position), its sum as the order-independent checksum
 * (as `fingerprint` does), and a row alias read as a struct for `to_json`.
 */
import { quoteIdentifier } from '../shared/dialect.js';
import { type DiffFunctions, diffStatements } from '../shared/diff-sql.js';
import { duckDbDialect } from './dialect.js';

const { quoteLiteral, quoteRelation } = duckDbDialect;

const rowHash = (expressions: string[]) =>
  expressions.length ? `hash(${expressions.map((e) => `${e}::VARCHAR`).join(', ')})` : '0';

export const duckDbDiff: DiffFunctions = {
  quoteRelation,
  quoteIdentifier,
  quoteLiteral,
  columns: (relation) =>
    `SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = ${quoteLiteral(relation.database)} ` +
    `AND table_schema = ${quoteLiteral(relation.schema)} AND table_name = ${quoteLiteral(relation.identifier)} ORDER BY ordinal_position`,
  rowHash,
  checksum: (expressions) => `coalesce(sum(${rowHash(expressions)}), 0)::HUGEINT::VARCHAR`,
  bucket: (expressions) => `(${rowHash(expressions)} % 10000)`,
  rowJson: (alias) => `CAST(to_json(${alias}) AS VARCHAR)`,
};

export const duckDbDiffStatements = diffStatements(duckDbDiff);
