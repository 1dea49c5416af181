/**
 * A corpus of bad inputs, each given to `dbt-deploy deploy` as a user would: deploy.yml keys and
 * values, profiles.yml, dbt_project.yml, --vars, names with quotes, semicolons and unicode. Every one
 * must end in exactly one clear line on stderr and exit code 2, before anything is started: the CLI
 * points at an address where no Temporal server listens, so a case that slipped through preflight
 * would fail on a different message.
 */
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, inject, it } from 'vitest';
import { EXAMPLE_DIR } from '../../examples/jaffle_shop/workspace.js';
import { ROOT } from '../support/harness.js';
import { scratchDir } from '../support/scratch.js';

const CLI = join(ROOT, 'bin', 'dbt-deploy');

/** A file of the project copy: its new text, or a change to the example's text. */
type Edit = string | ((original: string) => string);

interface BadInput {
  name: string;
  files?: Record<string, Edit>;
  args?: string[];
  env?: Record<string, string>;
  message: RegExp;
}

const ENV = (extra: string) =>
  `strategy: wac\nenvironments:\n  prod: {target: prod, staging_target: staging, audit_target: audit${extra}}\n`;

/** A PostgreSQL output for profiles.yml; `fields` replaces or adds keys. */
function postgresOutput(schema: string, fields: Record<string, string> = {}): string {
  const base: Record<string, string> = {
    type: 'postgres',
    host: '127.0.0.1',
    port: '5432',
    user: 'dbt',
    password: 'secret',
    dbname: 'jaffle',
    schema,
    threads: '1',
  };
  return Object.entries({ ...base, ...fields })
    .map(([k, v]) => `      ${k}: ${v}`)
    .join('\n');
}

function postgresProfiles(prod: Record<string, string> = {}, staging: Record<string, string> = {}): string {
  return [
    'jaffle_shop:',
    '  target: staging',
    '  outputs:',
    '    prod:',
    postgresOutput('analytics', prod),
    '    staging:',
    postgresOutput('analytics_staging', staging),
    '    audit:',
    postgresOutput('analytics_audit'),
    '',
  ].join('\n');
}

const replaceIn =
  (from: string | RegExp, to: string): Edit =>
  (original) => {
    const changed = original.replace(from, to);
    if (changed === original) throw new Error(`the edit found no ${String(from)} to replace`);
    return changed;
  };

const CORPUS: BadInput[] = [
  // deploy.yml: structure
  {
    name: 'deploy.yml: a list instead of a mapping',
    files: { 'deploy.yml': '- prod\n- staging\n' },
    message: /deploy\.yml: \(top level\): expected object, got object|deploy\.yml: .*mapping/,
  },
  {
    name: 'deploy.yml: no environments',
    files: { 'deploy.yml': 'strategy: wac\n' },
    message: /deploy\.yml: environments: expected record, got nothing/,
  },
  {
    name: 'deploy.yml: an empty environments mapping',
    files: { 'deploy.yml': 'environments: {}\n' },
    message: /deploy\.yml: environments: at least one environment is required/,
  },
  {
    name: 'deploy.yml: a duplicated key',
    files: { 'deploy.yml': `strategy: wac\nstrategy: wap\n${ENV('').split('\n').slice(1).join('\n')}` },
    message: /deploy\.yml: not valid YAML: Map keys must be unique/,
  },
  {
    name: 'deploy.yml: a tab in the indentation',
    files: { 'deploy.yml': 'environments:\n\tprod: {target: prod, staging_target: staging}\n' },
    message: /deploy\.yml: not valid YAML/,
  },
  {
    name: 'deploy.yml: an unknown key inside an environment',
    files: { 'deploy.yml': ENV(', stagin_target: x') },
    message: /deploy\.yml: environments\.prod: unknown key "stagin_target": did you mean "staging_target"\?$/,
  },
  // A misspelt key is named with the key it probably meant, at every level, not reported as the key it
  // replaced going missing.
  {
    name: 'deploy.yml: a misspelt required key at the top level',
    files: {
      'deploy.yml': 'strategy: wac\nenvironmentz:\n  prod: {target: prod, staging_target: staging}\n',
    },
    message: /deploy\.yml: unknown key "environmentz": did you mean "environments"\?$/,
  },
  {
    name: 'deploy.yml: a misspelt optional key at the top level',
    files: { 'deploy.yml': `stratgey: wap\n${ENV('').split('\n').slice(1).join('\n')}` },
    message: /deploy\.yml: unknown key "stratgey": did you mean "strategy"\?$/,
  },
  {
    name: 'deploy.yml: a misspelt required key inside an environment',
    files: { 'deploy.yml': 'environments:\n  prod: {targt: prod, staging_target: staging}\n' },
    message: /deploy\.yml: environments\.prod: unknown key "targt": did you mean "target"\?$/,
  },
  {
    name: 'deploy.yml: a misspelt key under publish',
    files: { 'deploy.yml': `${ENV('')}publish: {tagz: [mart]}\n` },
    message: /deploy\.yml: publish: unknown key "tagz": did you mean "tags"\?$/,
  },
  {
    name: 'deploy.yml: a misspelt key under approval',
    files: { 'deploy.yml': `${ENV('')}approval: {required: true, on_timout: approve}\n` },
    message: /deploy\.yml: approval: unknown key "on_timout": did you mean "on_timeout"\?$/,
  },
  {
    name: 'deploy.yml: a misspelt key under backups',
    files: { 'deploy.yml': `${ENV('')}backups: {kepe: 2}\n` },
    message: /deploy\.yml: backups: unknown key "kepe": did you mean "keep"\?$/,
  },
  {
    name: 'deploy.yml: a misspelt key under mirror',
    files: { 'deploy.yml': `${ENV('')}mirror: {selct: [tag:raw]}\n` },
    message: /deploy\.yml: mirror: unknown key "selct": did you mean "select"\?$/,
  },
  {
    name: 'deploy.yml: a key at the wrong level',
    files: { 'deploy.yml': `${ENV('')}tags: [mart]\n` },
    message: /deploy\.yml: unknown key "tags": it belongs under publish$/,
  },
  {
    name: 'deploy.yml: an unknown key like no other',
    files: { 'deploy.yml': `${ENV('')}colour: blue\n` },
    message:
      /deploy\.yml: unknown key "colour" \(keys here: strategy, environments, publish, select, mirror, backups, approval, notify, audits, diff, heartbeat_timeout\)$/,
  },
  // publish: tags, or select as dbt selectors or a YAML selector's name
  {
    name: 'deploy.yml: publish with both tags and select',
    files: { 'deploy.yml': `${ENV('')}publish: {tags: [mart], select: [tag:utils]}\n` },
    message:
      /deploy\.yml: publish: give tags or select, not both \(tags: \[mart\] is short for select: \[tag:mart\]\)$/,
  },
  {
    name: 'deploy.yml: publish.select as an empty list',
    files: { 'deploy.yml': `${ENV('')}publish: {select: []}\n` },
    message: /deploy\.yml: publish\.select: /,
  },
  {
    name: 'deploy.yml: publish.select naming a selector selectors.yml does not define',
    files: {
      'deploy.yml': `${ENV('')}publish: {select: nightly}\n`,
      'selectors.yml': 'selectors:\n  - name: marts\n    definition: {method: tag, value: mart}\n',
    },
    message: /publish\.select: "nightly" is not a selector of .*\/selectors\.yml \(selectors: marts\)$/,
  },
  {
    name: 'deploy.yml: publish.select as one dbt selector without brackets',
    files: { 'deploy.yml': `${ENV('')}publish: {select: "tag:mart tag:utils"}\n` },
    message:
      /publish\.select: "tag:mart tag:utils" names a YAML selector, but .*\/jaffle_shop has no selectors\.yml; a list of dbt selectors needs brackets: select: \[tag:mart, tag:utils\]$/,
  },
  {
    name: 'deploy.yml: an empty target',
    files: { 'deploy.yml': 'environments:\n  prod: {target: "", staging_target: staging}\n' },
    message: /deploy\.yml: environments\.prod\.target: /,
  },
  {
    name: 'deploy.yml: backups.keep of 0',
    files: { 'deploy.yml': `${ENV('')}backups: {keep: 0}\n` },
    message: /deploy\.yml: backups\.keep: /,
  },
  {
    name: 'deploy.yml: backups.keep as words',
    files: { 'deploy.yml': `${ENV('')}backups: {keep: three}\n` },
    message: /deploy\.yml: backups\.keep: expected number, got string/,
  },
  {
    name: 'deploy.yml: an empty list of publish tags',
    files: { 'deploy.yml': `${ENV('')}publish: {tags: []}\n` },
    message: /deploy\.yml: publish\.tags: /,
  },
  {
    name: 'deploy.yml: select as a string, not a list',
    files: { 'deploy.yml': `${ENV('')}select: state:modified+\n` },
    message: /deploy\.yml: select: expected array, got string/,
  },
  {
    name: 'deploy.yml: approval.timeout without a unit',
    files: { 'deploy.yml': `${ENV('')}approval: {required: true, timeout: "90"}\n` },
    message: /approval\.timeout: "90" needs a unit/,
  },
  {
    name: 'deploy.yml: approval.timeout that is no duration',
    files: { 'deploy.yml': `${ENV('')}approval: {required: true, timeout: soon}\n` },
    message: /approval\.timeout: "soon" is not a duration/,
  },
  {
    name: 'deploy.yml: heartbeat_timeout without a unit',
    files: { 'deploy.yml': `${ENV('')}heartbeat_timeout: "30"\n` },
    message: /heartbeat_timeout: "30" needs a unit \(e\.g\. 30s\)/,
  },
  {
    name: 'deploy.yml: heartbeat_timeout shorter than the steps beat',
    files: { 'deploy.yml': `${ENV('')}heartbeat_timeout: 2s\n` },
    message: /heartbeat_timeout: "2s" is below 5s; steps heartbeat every 2 s/,
  },
  {
    name: 'deploy.yml: approval.on_timeout that is neither abort nor approve',
    files: { 'deploy.yml': `${ENV('')}approval: {required: true, on_timeout: publish}\n` },
    message: /approval\.on_timeout: must be one of "abort", "approve", got "publish"/,
  },
  {
    name: 'deploy.yml: staging writes into prod',
    files: { 'deploy.yml': 'environments:\n  prod: {target: prod, staging_target: prod}\n' },
    message: /staging_target "prod" both write to schema "analytics"; give staging its own schema/,
  },
  {
    name: 'deploy.yml: a target named with a quote and a semicolon',
    files: {
      'deploy.yml': `environments:\n  prod: {target: "prod'; DROP SCHEMA analytics; --", staging_target: staging}\n`,
    },
    message: /target "prod'; DROP SCHEMA analytics; --" not found in profile "jaffle_shop"/,
  },
  {
    name: 'deploy.yml: a folder, not a file',
    args: ['--config', EXAMPLE_DIR],
    message: /: cannot read .*is a directory/,
  },
  // the command line
  {
    name: '--env with quotes and a semicolon',
    args: ['--env', `prod"; DROP TABLE x; --`],
    message: /environment "prod"; DROP TABLE x; --" not found \(environments: prod\)/,
  },
  {
    name: '--env in unicode',
    args: ['--env', 'prød-環境'],
    message: /environment "prød-環境" not found \(environments: prod\)/,
  },
  {
    name: '--vars that are not YAML',
    args: ['--vars', '{break_audit: [}'],
    message: /--vars: not valid YAML or JSON/,
  },
  {
    name: '--vars that are a number, not a mapping',
    args: ['--vars', '42'],
    message: /--vars: expected a mapping/,
  },
  {
    name: '--project-dir that does not exist',
    args: ['--project-dir', '/nonexistent/ünïcode project'],
    message: /\/nonexistent\/ünïcode project: no dbt_project\.yml here/,
  },
  // dbt_project.yml
  {
    name: 'dbt_project.yml: not YAML',
    files: { 'dbt_project.yml': 'name: jaffle_shop\nmodels: [unclosed\n' },
    message: /dbt_project\.yml: not valid YAML/,
  },
  {
    name: 'dbt_project.yml: a profile that profiles.yml lacks',
    files: { 'dbt_project.yml': replaceIn('profile: jaffle_shop', "profile: 'jaffle;shop'") },
    message: /profiles\.yml: profile "jaffle;shop" not found/,
  },
  // profiles.yml
  {
    name: 'profiles.yml: missing',
    args: ['--profiles-dir', '/nonexistent'],
    message: /\/nonexistent\/profiles\.yml: not found/,
  },
  {
    name: 'profiles.yml: not YAML',
    files: { 'profiles.yml': 'jaffle_shop:\n  outputs: {prod: [\n' },
    message: /profiles\.yml: not valid YAML/,
  },
  {
    name: 'profiles.yml: outputs as a list',
    files: { 'profiles.yml': 'jaffle_shop:\n  target: prod\n  outputs:\n    - prod\n' },
    message: /profile "jaffle_shop" has no outputs/,
  },
  {
    name: 'profiles.yml: a target without a type',
    files: { 'profiles.yml': replaceIn(/( {4}prod:\n) {6}type: duckdb\n/, '$1') },
    message: /target "prod" has no type/,
  },
  {
    name: 'profiles.yml: an adapter this tool cannot deploy to',
    files: { 'profiles.yml': replaceIn(/( {4}prod:\n {6}type: )duckdb/, '$1oracle') },
    message: /adapter type "oracle" is not supported yet/,
  },
  {
    name: 'profiles.yml: an in-memory DuckDB',
    files: {
      'profiles.yml': replaceIn(
        /( {4}prod:\n {6}type: duckdb\n {6}path: )jaffle_shop\.duckdb/,
        "$1':memory:'",
      ),
    },
    message: /target "prod": an in-memory DuckDB cannot be deployed to/,
  },
  {
    name: 'profiles.yml: prod and staging in different DuckDB files',
    files: {
      'profiles.yml': replaceIn(
        /( {4}staging:\n {6}type: duckdb\n {6}path: )jaffle_shop\.duckdb/,
        '$1other.duckdb',
      ),
    },
    message: /must use the same file/,
  },
  {
    name: 'profiles.yml: a schema with a quote and a semicolon',
    files: {
      'profiles.yml': replaceIn('schema: analytics_staging', `schema: 'staging"; DROP SCHEMA analytics; --'`),
    },
    message: /schema "staging\\"; DROP SCHEMA analytics; --" has a quote, semicolon/,
  },
  {
    name: 'profiles.yml: PostgreSQL schema names that collide after 63 bytes',
    files: {
      'profiles.yml': postgresProfiles(
        { schema: `analytics_${'ü'.repeat(40)}_prod` },
        { schema: `analytics_${'ü'.repeat(40)}_staging` },
      ),
    },
    message: /schema "analytics_ü+_prod" is \d+ bytes: PostgreSQL keeps only the first 63/,
  },
  {
    name: 'profiles.yml: env_var() without a value or default',
    files: { 'profiles.yml': postgresProfiles({ password: `"{{ env_var('DBT_DEPLOY_UNSET_SECRET') }}"` }) },
    message: /env var DBT_DEPLOY_UNSET_SECRET is not set and has no default/,
  },
  {
    name: 'profiles.yml: Jinja other than env_var()',
    files: { 'profiles.yml': postgresProfiles({ user: `"{{ var('user') }}"` }) },
    message: /only env_var\(\) is supported in profiles/,
  },
  {
    name: 'profiles.yml: a port that is not a number',
    files: { 'profiles.yml': postgresProfiles({ port: '"54x2"' }) },
    message: /target "prod": port 54x2 is not a TCP port/,
  },
  {
    name: 'profiles.yml: a PostgreSQL target without a user',
    files: { 'profiles.yml': postgresProfiles({ user: '""' }) },
    message: /target "prod": a postgres target needs user, dbname and schema/,
  },
  {
    name: 'profiles.yml: staging on another engine than prod',
    files: {
      'profiles.yml': replaceIn(
        /( {4}staging:\n) {6}type: duckdb\n {6}path: jaffle_shop\.duckdb\n {6}schema: analytics_staging\n {6}threads: 4\n/,
        `$1${postgresOutput('analytics_staging')}\n`,
      ),
    },
    message: /target "prod" is duckdb but staging_target "staging" is postgres/,
  },
];

describe('a corpus of bad inputs: one clear line, exit code 2, nothing started', () => {
  it('holds at least 30 cases', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(30);
  });

  it.concurrent.each(CORPUS.map((c) => [c.name, c] as const))('%s', async (_name, input) => {
    const dir = join(await scratchDir('bad-input-', inject('scratchRoot')), 'jaffle_shop');
    await mkdir(dir, { recursive: true });
    await cp(EXAMPLE_DIR, dir, {
      recursive: true,
      filter: (source) => !/(\/target|\/logs|\.duckdb(\.wal)?)$/.test(source),
    });
    for (const [file, edit] of Object.entries(input.files ?? {})) {
      const path = join(dir, file);
      const text = typeof edit === 'string' ? edit : edit(await readFile(path, 'utf8'));
      await writeFile(path, text);
    }
    const result = await execa(CLI, ['deploy', '--project-dir', dir, ...(input.args ?? [])], {
      reject: false,
      env: { TEMPORAL_ADDRESS: '127.0.0.1:1', TEMPORAL_NAMESPACE: 'test-inputs', ...input.env },
    });
    const lines = result.stderr.trim().split('\n');
    expect(lines, result.stderr).toHaveLength(1);
    expect(result.stderr).toMatch(/^dbt-deploy: /);
    expect(result.stderr).toMatch(input.message);
    expect(result.stderr).not.toMatch(/no Temporal server answers/);
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
  });
});
