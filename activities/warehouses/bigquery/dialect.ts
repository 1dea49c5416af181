/**
 * BigQuery quotes with backquotes and escapes with backslashes; dataset and table names are
 * case-sensitive and kept as written, which is how dbt-bigquery renders them.
 */
import type { Location, Relation } from '../../../workflows/types.js';
import { AS_WRITTEN, type Dialect } from '../shared/dialect.js';

function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll('\\', '\\\\').replaceAll('`', '\\`')}\``;
}

/** https://cloud.google.com/bigquery/docs/reference/standard-sql/lexical#string_and_bytes_literals */
function quoteLiteral(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'").replaceAll('\n', '\\n').replaceAll('\r', '\\r')}'`;
}

export const bigQueryDialect: Dialect = {
  storedName: AS_WRITTEN,
  quoteIdentifier,
  quoteRelation: (r: Relation) => [r.database, r.schema, r.identifier].map(quoteIdentifier).join('.'),
  quoteLocation: (l: Location) => `${quoteIdentifier(l.database)}.${quoteIdentifier(l.schema)}`,
  quoteLiteral,
  relationKey: (r: Relation) => [r.database, r.schema, r.identifier].join('\u0000'),
  textType: 'STRING',
};
