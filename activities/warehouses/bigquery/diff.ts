/**
 * BigQuery's spelling of the diff (see shared/diff-sql.ts), built as data and checked against Google's
 * documentation in test/unit/diff-statements.test.ts:
 * - FARM_FINGERPRINT over TO_JSON_STRING of a STRUCT of the columns: one INT64 per row, NULLs kept
 *   (https://cloud.google.com/bigquery/docs/reference/standard-sql/hash_functions#farm_fingerprint,
 *   https://cloud.google.com/bigquery/docs/reference/standard-sql/json_functions#to_json_string);
 * - its SUM as BIGNUMERIC for the checksum, as `fingerprintSql` does (an INT64 sum overflows);
 * - MOD and ABS for the sample's bucket (ABS after MOD: ABS of the smallest INT64 is an error)
 *   (https://cloud.google.com/bigquery/docs/reference/standard-sql/mathematical_functions);
 * - TO_JSON_STRING(<alias>) for a whole row;
 * - INFORMATION_SCHEMA.COLUMNS of the dataset, left unquoted as the emulator needs
 *   (https://cloud.google.com/bigquery/docs/information-schema-columns).
 */
import { type DiffFunctions, diffStatements } from '../shared/diff-sql.js';
import { bigQueryDialect } from './dialect.js';

const { quoteIdentifier, quoteLiteral, quoteRelation, quoteLocation } = bigQueryDialect;

const rowHash = (expressions: string[]) =>
  `FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(${expressions.join(', ')})))`;

export const bigQueryDiff: DiffFunctions = {
  quoteRelation,
  quoteIdentifier,
  quoteLiteral,
  columns: (relation) =>
    `SELECT column_name, data_type FROM ${quoteLocation(relation)}.INFORMATION_SCHEMA.COLUMNS ` +
    `WHERE table_name = ${quoteLiteral(relation.identifier)} ORDER BY ordinal_position`,
  rowHash,
  checksum: (expressions) => `CAST(COALESCE(SUM(CAST(${rowHash(expressions)} AS BIGNUMERIC)), 0) AS STRING)`,
  bucket: (expressions) => `ABS(MOD(${rowHash(expressions)}, 10000))`,
  rowJson: (alias) => `TO_JSON_STRING(${alias})`,
};

export const bigQueryDiffStatements = diffStatements(bigQueryDiff);
