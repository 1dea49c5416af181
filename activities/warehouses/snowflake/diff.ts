/**
 * Snowflake's spelling of the diff (see shared/diff-sql.ts), built as data and checked against
 * Snowflake's documentation in test/unit/diff-statements.test.ts (pages under
 * https://docs.snowflake.com/en/sql-reference/):
 * - functions/hash: HASH(<expr> [, ...]) over the columns as text, NULLs included;
 * - functions/hash_agg: HASH_AGG(<expr> [, ...]), order-independent, 0 on no rows (as `fingerprint`);
 * - functions/mod, functions/abs: the sample's bucket;
 * - functions/object_construct_keep_null (`<alias>.*`) and functions/to_json: a row as JSON text;
 * - info-schema/columns: the columns, with precision and scale so NUMBER(38,0) → NUMBER(18,2) shows.
 * Relations are folded like every name the adapter sends; column names come from the catalogue and are
 * quoted as stored.
 */
import { type DiffFunctions, diffStatements } from '../shared/diff-sql.js';
import { quoteIdentifier } from '../shared/dialect.js';
import { snowflakeDialect } from './dialect.js';

const { quoteLiteral, quoteRelation, storedName } = snowflakeDialect;

const asText = (expressions: string[]) => expressions.map((e) => `TO_VARCHAR(${e})`).join(', ');
const rowHash = (expressions: string[]) => `HASH(${asText(expressions)})`;

export const snowflakeDiff: DiffFunctions = {
  quoteRelation,
  quoteIdentifier,
  quoteLiteral,
  columns: (relation) =>
    'SELECT column_name, CASE WHEN numeric_precision IS NULL THEN data_type ' +
    `ELSE data_type || '(' || numeric_precision || ',' || numeric_scale || ')' END AS data_type ` +
    `FROM ${snowflakeDialect.quoteIdentifier(relation.database)}.INFORMATION_SCHEMA.COLUMNS ` +
    `WHERE table_schema = ${quoteLiteral(storedName(relation.schema))} AND table_name = ${quoteLiteral(storedName(relation.identifier))} ` +
    'ORDER BY ordinal_position',
  rowHash,
  checksum: (expressions) => `TO_VARCHAR(HASH_AGG(${asText(expressions)}))`,
  bucket: (expressions) => `ABS(MOD(${rowHash(expressions)}, 10000))`,
  rowJson: (alias) => `TO_JSON(OBJECT_CONSTRUCT_KEEP_NULL(${alias}.*))`,
};

export const snowflakeDiffStatements = diffStatements(snowflakeDiff);
