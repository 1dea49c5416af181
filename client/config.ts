/**
 * deploy.yml: which dbt targets play which role, the strategy, what to publish and how long backups
 * stay. It holds no secrets; credentials stay in profiles.yml on the worker. Validated completely before
 * any workflow starts, and every error names the file, the key and what would fix it.
 */
import { readFileSync } from 'node:fs';
import { parse, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { AuditsSchema, DiffConfigSchema } from '../activities/audit-rules.js';
import { STRATEGIES } from '../workflows/types.js';
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
  publish: z
    .strictObject({ tags: z.array(z.string().min(1)).min(1).default(['mart', 'utils']) })
    .default({ tags: ['mart', 'utils'] }),
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
  /** Rules run on the diff of prod against the candidate before the cut-over (docs/audits.md). */
  audits: AuditsSchema.optional(),
  /** How much the diff shows, and past which size it compares a sample of keys (docs/audits.md). */
  diff: DiffConfigSchema.optional(),
});

export type DeployConfig = z.infer<typeof DeployConfigSchema>;
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
    const issue = parsed.error.issues[0];
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
      return `${key === '(top level)' ? '' : `${key}: `}unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')} (remove it or check its spelling)`;
    case 'invalid_type':
      return `${key}: expected ${issue.expected}, got ${issue.input === undefined ? 'nothing' : typeof issue.input}`;
    case 'invalid_value':
      return `${key}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(issue.input)}`;
    default:
      return `${key}: ${issue.message}`;
  }
}
