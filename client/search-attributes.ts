/**
 * Every deploy upserts the search attributes in `DEPLOY_SEARCH_ATTRIBUTES`; on a namespace that lacks
 * them the server fails each workflow task, and the deploy would retry forever without a word. So
 * the CLI and the worker check first and say how to create them.
 */
import type { Connection } from '@temporalio/client';
// CommonJS: Node's ESM loader sees only its default export.
import proto from '@temporalio/proto';
import { DEPLOY_SEARCH_ATTRIBUTES } from '../workflows/search-attributes.js';
import { UsageError } from './errors.js';

export async function requireSearchAttributes(
  connection: Pick<Connection, 'operatorService'>,
  namespace: string,
): Promise<void> {
  let known: Set<string>;
  try {
    const response = await connection.operatorService.listSearchAttributes({ namespace });
    known = new Set(Object.keys(response.customAttributes ?? {}));
  } catch {
    // Some hosted services do not expose the operator API to every caller: then the deploy must tell.
    return;
  }
  const missing = Object.entries(DEPLOY_SEARCH_ATTRIBUTES).filter(([name]) => !known.has(name));
  if (missing.length === 0) return;
  const commands = missing
    .map(
      ([name, type]) =>
        `temporal operator search-attribute create --namespace ${namespace} --name ${name} --type ${type}`,
    )
    .join('; ');
  throw new UsageError(
    `namespace "${namespace}" lacks the search attributes deploys record (${missing.map(([n]) => n).join(', ')}): create them once with: ${commands} (see docs/operations.md)`,
  );
}

const { IndexedValueType } = proto.temporal.api.enums.v1;

const INDEXED_VALUE_TYPES = {
  Keyword: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Text: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  Int: IndexedValueType.INDEXED_VALUE_TYPE_INT,
  Double: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  Bool: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  Datetime: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  KeywordList: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
} as const;

/** Adds the attributes `namespace` lacks (a local dev server only: production clusters are set up once). */
export async function addSearchAttributes(
  connection: Pick<Connection, 'operatorService'>,
  namespace: string,
  attributes: Record<string, keyof typeof INDEXED_VALUE_TYPES>,
): Promise<void> {
  const response = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(response.customAttributes ?? {}));
  const missing = Object.entries(attributes).filter(([name]) => !known.has(name));
  if (missing.length === 0) return;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, INDEXED_VALUE_TYPES[type]])),
  });
}
