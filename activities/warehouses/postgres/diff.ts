/**
 * PostgreSQL's spelling of the diff (see shared/diff-sql.ts): md5 over a ROW of the columns cast to
 * text (NULL and '' stay apart: `(,x)` against `("",x)`), summed as 60-bit integers for the checksum,
 * as `fingerprint` does; types as `format_type` prints them, so numeric(18,2) → numeric(12,2) shows.
 */
import { type DiffFunctions, diffStatements } from '../shared/diff-sql.js';
import { quoteIdentifier } from '../shared/dialect.js';
import { postgresDialect } from './dialect.js';

const { quoteLiteral, quoteRelation } = postgresDialect;

const rowHash = (expressions: string[]) =>
  `md5(ROW(${expressions.map((e) => `${e}::text`).join(', ')})::text)`;
/** The first 60 bits of the md5 as a non-negative bigint: sums of them stay exact in numeric. */
const hashNumber = (expressions: string[]) =>
  `('x' || substr(${rowHash(expressions)}, 1, 15))::bit(60)::bigint`;

export const postgresDiff: DiffFunctions = {
  quoteRelation,
  quoteIdentifier,
  quoteLiteral,
  columns: (relation) =>
    'SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS data_type ' +
    'FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid ' +
    'JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ' +
    `WHERE n.nspname = ${quoteLiteral(relation.schema)} AND c.relname = ${quoteLiteral(relation.identifier)} ` +
    'AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum',
  rowHash,
  checksum: (expressions) => `coalesce(sum(${hashNumber(expressions)}), 0)::text`,
  bucket: (expressions) => `(${hashNumber(expressions)} % 10000)`,
  rowJson: (alias) => `row_to_json(${alias})::text`,
};

export const postgresDiffStatements = diffStatements(postgresDiff);
