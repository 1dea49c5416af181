/**
 * Snowflake stores an unquoted name in upper case, and dbt-snowflake leaves names unquoted by default
 * (`quoting:` false), so `analytics.marts.orders` in a manifest is `ANALYTICS.MARTS.ORDERS` in the
 * catalog. Names that need quotes (lower-case letters after quoting, spaces, other characters) keep
 * their case. Every name is folded here and then quoted, so no name is ever pasted in unquoted.
 */
import { doubleQuoteDialect } from '../shared/dialect.js';

/** Docs: identifier-requirements (unquoted: letters, digits, `_`, `$`, not starting with a digit). */
const UNQUOTED = /^[A-Za-z_][A-Za-z0-9_$]*$/;

export function snowflakeStoredName(name: string): string {
  return UNQUOTED.test(name) ? name.toUpperCase() : name;
}

export const snowflakeDialect = doubleQuoteDialect(snowflakeStoredName, 'VARCHAR');
