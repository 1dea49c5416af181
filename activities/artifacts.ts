/**
 * The parts of dbt's artifacts (manifest v12, run_results v6) this product reads, typed, plus the
 * artifact folder: dbt writes its files there and only `{uri, sha256, bytes}` references go through
 * Temporal history.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import type { ArtifactRef, AuditSummary, NodeOutcome } from '../workflows/types.js';

export interface ManifestNode {
  unique_id: string;
  resource_type: string;
  name: string;
  database: string | null;
  schema: string;
  alias: string | null;
  relation_name: string | null;
  tags: string[];
  config: {
    materialized: string;
    incremental_strategy?: string | null;
    unique_key?: string | string[] | null;
  };
  /** Seeds depend on nothing but macros: their `depends_on` has no `nodes`. */
  depends_on: { nodes?: string[] };
  /** Present after `dbt compile` (or a build): the SELECT rendered for the invocation's target. */
  compiled_code?: string | null;
}

/** A dbt source table: loaded outside dbt, by what its `loader` names. */
export interface ManifestSource {
  unique_id: string;
  source_name: string;
  name: string;
  identifier: string;
  schema: string;
  relation_name: string | null;
  /** dbt's free text for the tool that loads the source ('' when unset). */
  loader?: string;
}

export interface Manifest {
  metadata: { dbt_schema_version: string; project_name?: string };
  nodes: Record<string, ManifestNode>;
  sources?: Record<string, ManifestSource>;
}

export interface RunResult {
  unique_id: string;
  status: string;
  message: string | null;
  failures: number | null;
  execution_time: number;
  relation_name?: string | null;
}

export interface RunResults {
  metadata: { dbt_schema_version: string };
  results: RunResult[];
  elapsed_time: number;
}

/** The statuses that let a deploy publish; dbt's `warn`, `skipped`, `error` and `fail` all block. */
const PUBLISHABLE: Record<string, readonly string[]> = {
  model: ['success'],
  seed: ['success'],
  snapshot: ['success'],
  test: ['pass'],
  unit_test: ['pass'],
};

/** How many blocking nodes a summary names; the full list stays in run_results.json. */
const MAX_BLOCKING_LISTED = 25;

export function summarizeRunResults(runResults: RunResults): AuditSummary {
  const models: Record<string, number> = {};
  const tests: Record<string, number> = {};
  // The nodes that failed come first, then those dbt skipped because of them: a listing cut at
  // MAX_BLOCKING_LISTED keeps the causes.
  const failed: NodeOutcome[] = [];
  const skipped: NodeOutcome[] = [];
  let blockingCount = 0;
  for (const result of runResults.results) {
    const type = resourceTypeOf(result.unique_id);
    const counts = type === 'test' || type === 'unit_test' ? tests : models;
    counts[result.status] = (counts[result.status] ?? 0) + 1;
    const allowed = PUBLISHABLE[type] ?? ['success', 'pass'];
    if (!allowed.includes(result.status)) {
      blockingCount += 1;
      const list = result.status === 'skipped' ? skipped : failed;
      if (list.length < MAX_BLOCKING_LISTED) {
        list.push({
          uniqueId: result.unique_id,
          name: result.unique_id.split('.').slice(2).join('.'),
          status: result.status,
          ...(result.message ? { message: result.message } : {}),
          ...(result.failures ? { failures: result.failures } : {}),
        });
      }
    }
  }
  const blocking = [...failed, ...skipped].slice(0, MAX_BLOCKING_LISTED);
  return { passed: blockingCount === 0 && runResults.results.length > 0, models, tests, blocking };
}

function resourceTypeOf(uniqueId: string): string {
  return uniqueId.split('.')[0] ?? 'unknown';
}

export async function artifactRef(path: string): Promise<ArtifactRef> {
  const bytes = await readFile(path);
  return {
    uri: pathToFileURL(path).href,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    bytes: bytes.length,
  };
}

/**
 * Writes `value` as a JSON artifact and returns its reference: what a step learned that grows with the
 * project (the publish set, fingerprints) goes to a file, and only the reference through history.
 * Written under a temporary name first, so a reader never sees half a file.
 */
export async function writeArtifact(path: string, value: unknown): Promise<ArtifactRef> {
  const bytes = Buffer.from(JSON.stringify(value), 'utf8');
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, bytes);
  await rename(temporary, path);
  return {
    uri: pathToFileURL(path).href,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    bytes: bytes.length,
  };
}

/** Reads an artifact back, refusing one that changed since its reference was taken. */
export async function readArtifact<T>(ref: ArtifactRef): Promise<T> {
  const bytes = await readFile(fileURLToPath(ref.uri));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== ref.sha256)
    throw new Error(`artifact ${ref.uri} changed since it was written (sha256 mismatch)`);
  return JSON.parse(bytes.toString('utf8')) as T;
}
