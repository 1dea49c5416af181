/**
 * Why an audit blocked publish, in the words a person reads first: the nodes that failed, each with
 * dbt's own message, then how many dbt skipped because of them, and, when a source table is not in
 * the warehouse, which one and what loads it. Pure: the client renders reports with it too.
 */
import type { ArtifactRef, AuditSummary, NodeOutcome } from '../workflows/types.js';
import { type Manifest, readArtifact } from './artifacts.js';

/** A source table a failing node read and the warehouse does not have. */
export interface MissingSource {
  /** `shop.orders`: the source and table, as `source('shop', 'orders')` names it. */
  name: string;
  /** Where dbt looked for it (`"jaffle_shop"."raw"."orders"`). */
  relation: string;
  /** The source's `loader` in its YAML: what loads it, outside dbt. */
  loader?: string;
}

/** How many failed nodes a reason names before it says "and N more". */
const NAMED_FAILURES = 5;

/** The nodes that failed on their own (error, fail, warn), not those dbt skipped because of them. */
export function rootFailures(audit: Pick<AuditSummary, 'blocking'>): NodeOutcome[] {
  return audit.blocking.filter((node) => node.status !== 'skipped');
}

/** Every node dbt skipped (models, seeds, snapshots and tests), from the audit's counts. */
export function skippedCount(audit: Pick<AuditSummary, 'models' | 'tests'>): number {
  return (audit.models['skipped'] ?? 0) + (audit.tests['skipped'] ?? 0);
}

/**
 * dbt's message in one line, without its heading: `Runtime Error in model x (models/x.sql)` and the
 * SQL excerpt after the database's words add nothing to `x (error): Catalog Error: ...`.
 */
export function dbtMessage(message: string | undefined, max = 240): string {
  if (!message) return '';
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const body = lines.filter((line) => !/^[\w ]*Error in \w+ \S+ \(.*\)$/.test(line));
  const until = body.findIndex((line) => /^LINE \d+:/.test(line));
  const kept = (until < 0 ? body : body.slice(0, until)).join(' ') || lines.join(' ');
  return kept.length > max ? `${kept.slice(0, max - 1)}…` : kept;
}

/**
 * The source tables that failing nodes read and the warehouse says do not exist: the node's message
 * says "does not exist" or "not found" (DuckDB, PostgreSQL, BigQuery, Snowflake) and names the table,
 * and is not about a column.
 */
export function missingSources(manifest: Manifest, failures: NodeOutcome[]): MissingSource[] {
  const found = new Map<string, MissingSource>();
  for (const failure of failures) {
    const message = failure.message ?? '';
    if (!/does not exist|doesn't exist|not found|no such table/i.test(message)) continue;
    if (/\bcolumn\b/i.test(message)) continue;
    for (const parent of manifest.nodes[failure.uniqueId]?.depends_on.nodes ?? []) {
      const source = manifest.sources?.[parent];
      if (!source || found.has(parent)) continue;
      const identifier = source.identifier.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      if (!new RegExp(`\\b${identifier}\\b`, 'i').test(message)) continue;
      found.set(parent, {
        name: `${source.source_name}.${source.name}`,
        relation: source.relation_name ?? `${source.schema}.${source.identifier}`,
        ...(source.loader ? { loader: source.loader } : {}),
      });
    }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * `2 failed: raw_orders (error): Catalog Error: ...; ...; 21 skipped because of them; missing source
 * tables: ...`: the failures first, with dbt's message, the skipped ones counted.
 */
export function explainBlocking(audit: AuditSummary, missing: MissingSource[] = []): string {
  const failures = rootFailures(audit);
  const skipped = skippedCount(audit);
  const parts: string[] = [];
  if (failures.length > 0) {
    const named = failures.slice(0, NAMED_FAILURES).map((node) => {
      const message = dbtMessage(node.message);
      return `${node.name} (${node.status})${message ? `: ${message}` : ''}`;
    });
    const more = failures.length > NAMED_FAILURES ? `; and ${failures.length - NAMED_FAILURES} more` : '';
    parts.push(`${failures.length} failed: ${named.join('; ')}${more}`);
  }
  if (skipped > 0) parts.push(`${skipped} skipped ${failures.length > 0 ? 'because of them' : ''}`.trim());
  if (missing.length > 0) parts.push(missingSourcesHint(missing));
  return parts.join('; ') || 'dbt built nothing (does the selection match any model?)';
}

/** Which sources are missing and how they get loaded: the loader the project names, or a general hint. */
export function missingSourcesHint(missing: MissingSource[]): string {
  const one = missing.length === 1;
  const names = missing.map((s) => `${s.name} (${s.relation})`).join(', ');
  const loaders = [...new Set(missing.flatMap((s) => (s.loader ? [s.loader] : [])))];
  const how =
    loaders.length > 0
      ? `dbt does not load sources; load ${one ? 'it' : 'them'} with ${loaders.join(' or ')}, then deploy again`
      : `dbt does not load sources; load ${one ? 'it' : 'them'} into the warehouse, then deploy again`;
  return `the source ${one ? 'table' : 'tables'} ${names} ${one ? 'does' : 'do'} not exist: ${how}`;
}

/**
 * The reason for a build that did not pass, from its audit summary and its manifest (for the sources
 * the failures read). A manifest that cannot be read only loses the hint about sources.
 */
export async function explainAudit(audit: AuditSummary, manifest: ArtifactRef | undefined): Promise<string> {
  let missing: MissingSource[] = [];
  if (manifest) {
    try {
      missing = missingSources(await readArtifact<Manifest>(manifest), rootFailures(audit));
    } catch {
      // The reason stands without it.
    }
  }
  return explainBlocking(audit, missing);
}

/** The audit step's summary: counts and the failed nodes' names. */
export function blockingSummary(audit: AuditSummary): string {
  const failures = rootFailures(audit);
  const skipped = skippedCount(audit);
  if (failures.length === 0 && skipped === 0) return explainBlocking(audit);
  const names = failures.map((n) => `${n.name} (${n.status})`).join(', ');
  return `${failures.length} failed${skipped > 0 ? `, ${skipped} skipped` : ''}${names ? `: ${names}` : ''}`;
}
