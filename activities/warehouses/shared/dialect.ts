/**
 * How an engine spells names. Every engine here quotes with double quotes; they differ in what an
 * unquoted name dbt renders becomes: Snowflake stores it in upper case, PostgreSQL (dbt-postgres quotes
 * every name) and DuckDB (case-insensitive, case-preserving) as written.
 */
import type { Location, Relation } from '../../../workflows/types.js';

export interface Dialect {
  /** The name the engine stores for `name` as dbt renders it. */
  storedName(name: string): string;
  quoteIdentifier(name: string): string;
  /** `"database"."schema"."identifier"`, each part as stored. */
  quoteRelation(relation: Relation): string;
  quoteLocation(location: Location): string;
  quoteLiteral(value: string): string;
  /** Compares relations the way the engine resolves them (case folded where the engine folds). */
  relationKey(relation: Relation): string;
  /** The column type for text in the backup manifest. */
  textType: string;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** A double-quoting dialect; `storedName` says how the engine folds names dbt leaves unquoted. */
export function doubleQuoteDialect(storedName: (name: string) => string, textType: string): Dialect {
  const quote = (name: string) => quoteIdentifier(storedName(name));
  return {
    storedName,
    quoteIdentifier: quote,
    quoteRelation: (r) => [r.database, r.schema, r.identifier].map(quote).join('.'),
    quoteLocation: (l) => `${quote(l.database)}.${quote(l.schema)}`,
    quoteLiteral,
    relationKey: (r) => [r.database, r.schema, r.identifier].map(storedName).join('\u0000'),
    textType,
  };
}

/** Names as written: DuckDB resolves them case-insensitively, dbt-postgres quotes them. */
export const AS_WRITTEN = (name: string): string => name;
