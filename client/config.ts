/**
 * deploy.yml: which dbt targets play which role, the strategy, what to publish and how long backups
 * stay. It holds no secrets; credentials stay in profiles.yml on the worker. Validated completely before
 * any workflow starts, and every error names the file, the key and what would fix it.
 */
import { readFileSync } from 'node:fs';
import { parse, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { AuditsSchema, DiffConfigSchema } from '../activities/audit-rules.js';
import { NOTIFY_EVENTS, STRATEGIES } from '../workflows/types.js';
import { UsageError } from './errors.js';

const EnvironmentSchema = z.strictObject({
  /** The dbt target readers use. */
  target: z.string().min(1),
  /** The dbt target the candidate is built and audited in. */
  staging_target: z.string().min(1),
  /** Where `wap` builds and tests everything before it rebuilds the tagged models in prod (default: staging_target). */
  audit_target: z.string().min(1).optional(),
  strategy: z.enum(STRATEGIES).optional(),
});

const Selectors = z.array(z.string().min(1)).min(1);

export const DeployConfigSchema = z.strictObject({
  strategy: z.enum(STRATEGIES).default('wac'),
  environments: z.record(z.string(), EnvironmentSchema).refine((envs) => Object.keys(envs).length > 0, {
    message: 'at least one environment is required',
  }),
  /**
   * What `wac` and `wap` publish: `tags` (a shorthand for `select: [tag:...]`), or `select`, a list of
   * dbt selectors or the name of a YAML selector of selectors.yml. Neither: `tags: [mart, utils]`.
   */
  publish: z
    .strictObject({
      tags: z.array(z.string().min(1)).min(1).optional(),
      select: z.union([Selectors, z.string().min(1)]).optional(),
    })
    .refine((publish) => !(publish.tags && publish.select), {
      message: 'give tags or select, not both (tags: [mart] is short for select: [tag:mart])',
    })
    .default({}),
  /** What `clone-back` rebuilds, as dbt selectors (default: state:modified+ and the publish tags). */
  select: Selectors.optional(),
  /** A raw layer copying each source 1:1: refreshed by `dbt-deploy mirror refresh`, read by every deploy. */
  mirror: z.strictObject({ select: Selectors.default(['tag:raw']) }).optional(),
  backups: z.strictObject({ keep: z.number().int().min(1).default(3) }).default({ keep: 3 }),
  approval: z
    .strictObject({
      required: z.boolean().default(false),
      timeout: z.string().default('24h'),
      on_timeout: z.enum(['abort', 'approve']).default('abort'),
    })
    .default({ required: false, timeout: '24h', on_timeout: 'abort' }),
  /** A webhook (Slack-compatible) told when an operation ends or waits for approval; sent by the worker. */
  notify: z
    .strictObject({
      /** An http(s) URL, or `{{ env_var('NAME') }}` for one the worker reads from its environment. */
      webhook: z.string().min(1),
      on: z
        .array(z.enum(NOTIFY_EVENTS))
        .min(1)
        .default([...NOTIFY_EVENTS]),
    })
    .optional(),
  /** Rules run on the diff of prod against the candidate before the cut-over (docs/audits.md). */
  audits: AuditsSchema.optional(),
  /** How much the diff shows, and past which size it compares a sample of keys (docs/audits.md). */
  diff: DiffConfigSchema.optional(),
  /**
   * How long a step may go without a heartbeat before Temporal counts its worker as lost and retries
   * the step (steps beat every 2 s). A duration with a unit, at least 5s; unset: 20s.
   */
  heartbeat_timeout: z.string().optional(),
});

export type DeployConfig = z.infer<typeof DeployConfigSchema>;

/** What `publish` means when deploy.yml has neither `publish.tags` nor `publish.select`. */
export const DEFAULT_PUBLISH_TAGS = ['mart', 'utils'];
export type EnvironmentConfig = z.infer<typeof EnvironmentSchema>;

export function loadDeployConfig(path: string): DeployConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new UsageError(`${path}: cannot read it (${readFailure(error)}); --config takes a file`);
    }
    throw new UsageError(
      `${path}: not found (create it beside dbt_project.yml, see docs/configuration.md, or pass --config)`,
    );
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    const detail = error instanceof YAMLParseError ? error.message.split('\n')[0] : String(error);
    throw new UsageError(`${path}: not valid YAML: ${detail}`);
  }
  const parsed = DeployConfigSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!parsed.success) {
    // A misspelt key also makes the key it stands for missing: the unknown key is the one to name.
    const issue = parsed.error.issues.find((i) => i.code === 'unrecognized_keys') ?? parsed.error.issues[0];
    throw new UsageError(`${path}: ${issue ? describeIssue(issue) : 'invalid'}`);
  }
  return parsed.data;
}

/** `is a directory`, `permission denied`: the OS's words without the call and path around them. */
export function readFailure(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'EACCES') return 'permission denied';
  return code ?? message;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.map(String).join('.') || '(top level)';
  switch (issue.code) {
    case 'unrecognized_keys':
      return `${key === '(top level)' ? '' : `${key}: `}${unknownKeys(issue.path, issue.keys)}`;
    case 'invalid_type':
      return `${key}: expected ${issue.expected}, got ${issue.input === undefined ? 'nothing' : typeof issue.input}`;
    case 'invalid_value':
      return `${key}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(issue.input)}`;
    default:
      return `${key}: ${issue.message}`;
  }
}

/**
 * `unknown key "environmentz": did you mean "environments"?`, from the keys deploy.yml knows at that
 * level (closest by edit distance), or the level where a key of that name belongs.
 */
function unknownKeys(path: PropertyKey[], keys: string[]): string {
  const known = knownKeysAt(path);
  const hints = keys.map((key) => {
    const guess = closest(key, known);
    if (guess) return `unknown key "${key}": did you mean "${guess}"?`;
    const elsewhere = KEY_PATHS.find((p) => p.split('.').at(-1) === key);
    if (elsewhere)
      return `unknown key "${key}": it belongs under ${elsewhere.split('.').slice(0, -1).join('.')}`;
    return `unknown key "${key}" (keys here: ${known.join(', ')})`;
  });
  return hints.join('; ');
}

/** Every key deploy.yml knows, by its path (`environments.<name>.target`). */
const KEY_PATHS: string[] = keyPaths(DeployConfigSchema, '');

function keyPaths(schema: z.ZodType, prefix: string): string[] {
  const object = objectOf(schema);
  if (!object) return [];
  return Object.entries(object).flatMap(([key, inner]) => {
    const path = `${prefix}${key}`;
    const record = recordValueOf(inner);
    return [path, ...keyPaths(record ?? inner, record ? `${path}.<name>.` : `${path}.`)];
  });
}

function knownKeysAt(path: PropertyKey[]): string[] {
  let schema: z.ZodType | undefined = DeployConfigSchema;
  for (const segment of path) {
    if (!schema) break;
    const record = recordValueOf(schema);
    schema = record ?? objectOf(schema)?.[String(segment)];
  }
  return Object.keys((schema && objectOf(schema)) ?? {});
}

/** The fields of an object schema, through `.default()` and `.optional()`; undefined for anything else. */
function objectOf(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  const inner = unwrap(schema);
  return inner instanceof z.ZodObject ? (inner.shape as Record<string, z.ZodType>) : undefined;
}

function recordValueOf(schema: z.ZodType): z.ZodType | undefined {
  const inner = unwrap(schema);
  return inner instanceof z.ZodRecord ? (inner.valueType as z.ZodType) : undefined;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let inner = schema;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodOptional) inner = inner.unwrap() as z.ZodType;
  return inner;
}

/** The known key closest to `key`, if it is close enough to be a typo of it. */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (!best || distance < best.distance) best = { key: candidate, distance };
  }
  return best && best.distance <= Math.max(1, Math.floor(best.key.length / 3)) ? best.key : undefined;
}

/** Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
