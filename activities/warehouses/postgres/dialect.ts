/** dbt-postgres quotes every name it renders, so PostgreSQL stores them exactly as written. */
import { AS_WRITTEN, doubleQuoteDialect } from '../shared/dialect.js';

export const postgresDialect = doubleQuoteDialect(AS_WRITTEN, 'text');

/** PostgreSQL silently truncates longer names, which would make a lookup by the full name miss. */
export const MAX_IDENTIFIER_BYTES = 63;

/** Cuts a name to PostgreSQL's identifier limit without splitting a UTF-8 character. */
export function truncateBytes(name: string): string {
  let result = '';
  for (const character of name) {
    if (Buffer.byteLength(result + character) > MAX_IDENTIFIER_BYTES) break;
    result += character;
  }
  return result;
}
