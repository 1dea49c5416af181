/** DuckDB resolves names case-insensitively and keeps them as written. */
import { AS_WRITTEN, doubleQuoteDialect } from '../shared/dialect.js';

export const duckDbDialect = doubleQuoteDialect(AS_WRITTEN, 'VARCHAR');
