/**
 * Every statement sequence the Snowflake adapter sends, built as data first: `plan` prints them, the
 * unit tests compare them with Snowflake's documentation, and the adapter runs them. Nothing here
 * talks to Snowflake. Pages cited are under https://docs.snowflake.com/en/sql-reference/.
 */
import type { Location, Relation } from '../../../workflows/types.js';
import { type StagingOwner, UnsupportedOperation } from '../adapter.js';
import { snowflakeDialect } from './dialect.js';

const { quoteIdentifier, quoteRelation, quoteLocation, quoteLiteral } = snowflakeDialect;

/** One row of `SHOW GRANTS ON DATABASE|SCHEMA` (columns lower-cased). */
export interface GrantRow {
  privilege: string;
  granted_on: string;
  granted_to: string;
  grantee_name: string;
  grant_option: string;
}

/** One row of `SHOW FUTURE GRANTS IN DATABASE|SCHEMA` (columns lower-cased). */
export interface FutureGrantRow {
  privilege: string;
  grant_on: string;
  grant_to: string;
  grantee_name: string;
  grant_option: string;
}

/** sql-reference/sql/show-grants: what prod's database or schema grants, to copy onto staging. */
export function showGrants(on: 'DATABASE' | 'SCHEMA', name: string): string {
  return `SHOW GRANTS ON ${on} ${name}`;
}

export function showFutureGrants(on: 'DATABASE' | 'SCHEMA', name: string): string {
  return `SHOW FUTURE GRANTS IN ${on} ${name}`;
}

/**
 * sql-reference/sql/grant-privilege: prod's grants re-applied to staging before a swap, since grants
 * belong to objects, not names. OWNERSHIP moves with a swap by itself (and only one role holds it);
 * grants to anything but a role (shares, database roles) are left to the administrator.
 */
export function copyGrants(rows: GrantRow[], on: 'DATABASE' | 'SCHEMA', target: string): string[] {
  return rows
    .filter((row) => row.privilege !== 'OWNERSHIP' && row.granted_to === 'ROLE')
    .map(
      (row) =>
        `GRANT ${row.privilege} ON ${on} ${target} TO ROLE ${quoteIdentifier(row.grantee_name)}` +
        (row.grant_option === 'true' ? ' WITH GRANT OPTION' : ''),
    );
}

/** sql-reference/sql/grant-privilege (future grants): objects created later in staging get prod's. */
export function copyFutureGrants(
  rows: FutureGrantRow[],
  on: 'DATABASE' | 'SCHEMA',
  target: string,
): string[] {
  return rows
    .filter((row) => row.grant_to === 'ROLE' && row.privilege !== 'OWNERSHIP')
    .map(
      (row) =>
        `GRANT ${row.privilege} ON FUTURE ${pluralObject(row.grant_on)} IN ${on} ${target} TO ROLE ${quoteIdentifier(row.grantee_name)}` +
        (row.grant_option === 'true' ? ' WITH GRANT OPTION' : ''),
    );
}

function pluralObject(kind: string): string {
  const upper = kind.toUpperCase().replace(/_/g, ' ');
  return upper.endsWith('S') ? upper : `${upper}S`;
}

/**
 * What a staging database's COMMENT says about who cloned it: one deploy per project and environment
 * runs at a time, so a clone another deploy of the same project and environment left has ended.
 */
export function stagingComment(owner: StagingOwner): string {
  return `dbt-deploy staging: project=${owner.project} env=${owner.env} deploy=${owner.deployId}`;
}

/**
 * sql-reference/info-schema/databases: the account's databases, readable from any database's
 * information_schema; staging's row (absent when there is none) and its comment.
 */
export function findDatabase(from: string, name: string): string {
  return (
    `SELECT database_name, comment FROM ${quoteIdentifier(from)}.information_schema.databases ` +
    `WHERE database_name = ${quoteLiteral(snowflakeDialect.storedName(name))}`
  );
}

/** Who holds the staging database at a deploy's start, read from its comment. */
export type StagingHolder =
  | { kind: 'absent' }
  | { kind: 'this-deploy' }
  | { kind: 'ended-deploy'; deployId: string }
  | { kind: 'other'; comment: string };

export function stagingHolder(found: { comment?: unknown } | undefined, owner: StagingOwner): StagingHolder {
  if (found === undefined) return { kind: 'absent' };
  const comment = typeof found.comment === 'string' ? found.comment : '';
  const match = /^dbt-deploy staging: project=(\S+) env=(\S+) deploy=(\S+)$/.exec(comment);
  if (!match || match[1] !== owner.project || match[2] !== owner.env) return { kind: 'other', comment };
  return match[3] === owner.deployId
    ? { kind: 'this-deploy' }
    : { kind: 'ended-deploy', deployId: match[3]! };
}

/**
 * blue-green's (and clone-back's) build location at the start of a deploy: staging as a zero-copy
 * clone of prod's whole database (sql-reference/sql/create-database, `CLONE` and `COMMENT`;
 * sql-reference/sql/create-clone), so incremental models and snapshots build on prod's rows. The
 * comment records the owner in the same statement that creates the clone, so a retry finds it:
 * - absent: cloned;
 * - this deploy's (a retried step): not cloned again;
 * - left by an ended deploy of the same project and environment: replaced in one statement
 *   (`CREATE OR REPLACE`), the old clone kept by Time Travel;
 * - anything else (another project's or environment's, or a database dbt-deploy did not make):
 *   refused, never dropped.
 * Then prod's backup schemas, cloned along, are dropped from it (sql-reference/sql/drop-schema): they
 * stay prod's history, in the database that becomes the backup. Grants follow (`copyGrants`).
 */
export function cloneStaging(
  prod: string,
  staging: string,
  holder: StagingHolder,
  owner: StagingOwner,
  backupSchemas: string[],
): string[] {
  if (holder.kind === 'other')
    throw new UnsupportedOperation(
      `staging database ${staging} exists and is not this environment's dbt-deploy staging (comment: ${holder.comment || 'none'}): ` +
        `drop it, or give the staging target a database of its own`,
    );
  const clone =
    holder.kind === 'this-deploy'
      ? []
      : [
          `CREATE ${holder.kind === 'ended-deploy' ? 'OR REPLACE ' : ''}DATABASE ${quoteIdentifier(staging)} ` +
            `CLONE ${quoteIdentifier(prod)} COMMENT = ${quoteLiteral(stagingComment(owner))}`,
        ];
  return [
    ...clone,
    ...backupSchemas.map(
      (schema) => `DROP SCHEMA IF EXISTS ${quoteLocation({ database: staging, schema })} CASCADE`,
    ),
  ];
}

/**
 * sql-reference/sql/create-view (`COPY GRANTS`): a view built in staging names the staging database in
 * its text and would read the old prod after the swap; re-created from the SELECT dbt compiled for
 * prod, it names prod's database, which after the swap is the new prod.
 */
export function repointView(view: Relation, prodSql: string): string {
  return `CREATE OR REPLACE VIEW ${quoteRelation(view)} COPY GRANTS AS ${prodSql.trim().replace(/;$/, '')}`;
}

/**
 * sql-reference/sql/alter-database (`SWAP WITH`): the one statement readers can observe; then the old
 * prod, now under the staging name, is renamed to this deploy's backup (sql-reference/sql/alter-database
 * `RENAME TO`), so the next deploy's staging never overwrites it.
 */
export function swapDatabases(prod: string, staging: string, backup: string): string[] {
  return [
    `ALTER DATABASE ${quoteIdentifier(prod)} SWAP WITH ${quoteIdentifier(staging)}`,
    `ALTER DATABASE ${quoteIdentifier(staging)} RENAME TO ${quoteIdentifier(backup)}`,
  ];
}

/** The undo: one swap puts the old prod back, then the new build gets the staging name again. */
export function unswapDatabases(prod: string, staging: string, backup: string): string[] {
  return [
    `ALTER DATABASE ${quoteIdentifier(prod)} SWAP WITH ${quoteIdentifier(backup)}`,
    `ALTER DATABASE ${quoteIdentifier(backup)} RENAME TO ${quoteIdentifier(staging)}`,
  ];
}

/**
 * sql-reference/sql/alter-schema (`SWAP WITH`): staging schemas in prod's database, one swap per pair;
 * each is atomic, the set is not (readers can see one schema new and the next still old).
 */
export function swapSchemas(
  database: string,
  pairs: Array<{ prod: string; staging: string; backup: string }>,
): string[] {
  return pairs.flatMap((pair) => [
    `ALTER SCHEMA ${quoteLocation({ database, schema: pair.prod })} SWAP WITH ${quoteLocation({ database, schema: pair.staging })}`,
    `ALTER SCHEMA ${quoteLocation({ database, schema: pair.staging })} RENAME TO ${quoteLocation({ database, schema: pair.backup })}`,
  ]);
}

export function unswapSchemas(
  database: string,
  pairs: Array<{ prod: string; staging: string; backup: string }>,
): string[] {
  return pairs.flatMap((pair) => [
    `ALTER SCHEMA ${quoteLocation({ database, schema: pair.prod })} SWAP WITH ${quoteLocation({ database, schema: pair.backup })}`,
    `ALTER SCHEMA ${quoteLocation({ database, schema: pair.backup })} RENAME TO ${quoteLocation({ database, schema: pair.staging })}`,
  ]);
}

/**
 * sql-reference/sql/create-clone: a table published (or synced, or restored) as a zero-copy clone;
 * `OR REPLACE` makes it one atomic statement, `COPY GRANTS` keeps the grants prod's table had. A
 * transient table cannot be cloned into a permanent one: then its rows are copied instead
 * (sql-reference/sql/create-table, `CREATE TABLE … AS SELECT`), keeping prod permanent.
 */
export function replaceTable(
  from: Relation,
  to: Relation,
  kinds: { to: 'table' | 'view' | 'absent'; fromTransient: boolean; toTransient: boolean | undefined },
): string[] {
  const statements = kinds.to === 'view' ? [`DROP VIEW ${quoteRelation(to)}`] : [];
  const keepsPermanent = kinds.to === 'table' && kinds.toTransient === false && kinds.fromTransient;
  statements.push(
    keepsPermanent
      ? `CREATE OR REPLACE TABLE ${quoteRelation(to)} COPY GRANTS AS SELECT * FROM ${quoteRelation(from)}`
      : `CREATE OR REPLACE ${kinds.fromTransient ? 'TRANSIENT ' : ''}TABLE ${quoteRelation(to)} CLONE ${quoteRelation(from)} COPY GRANTS`,
  );
  return statements;
}

/** sql-reference/sql/create-view: a view published from the SELECT dbt compiled for prod. */
export function replaceView(to: Relation, sql: string, current: 'table' | 'view' | 'absent'): string[] {
  return [
    ...(current === 'table' ? [`DROP TABLE ${quoteRelation(to)}`] : []),
    `CREATE OR REPLACE VIEW ${quoteRelation(to)} COPY GRANTS AS ${sql.trim().replace(/;$/, '')}`,
  ];
}

/** sql-reference/sql/drop-table, drop-view. */
export function dropRelation(relation: Relation, kind: 'table' | 'view' | 'absent'): string[] {
  if (kind === 'absent') return [];
  return [`DROP ${kind === 'view' ? 'VIEW' : 'TABLE'} IF EXISTS ${quoteRelation(relation)}`];
}

/** sql-reference/sql/create-schema. */
export function createSchema(location: Location): string {
  return `CREATE SCHEMA ${quoteLocation(location)}`;
}

/** sql-reference/sql/create-clone: the backup's copy of a prod table shares its storage. */
export function cloneIntoBackup(prod: Relation, copy: Relation): string {
  return `CREATE TABLE ${quoteRelation(copy)} CLONE ${quoteRelation(prod)}`;
}

/** sql-reference/sql/drop-schema, drop-database: a backup and, for a database swap, the old prod. */
export function dropBackup(location: Location, swappedDatabase?: string): string[] {
  return swappedDatabase !== undefined
    ? [`DROP DATABASE IF EXISTS ${quoteIdentifier(swappedDatabase)}`]
    : [`DROP SCHEMA IF EXISTS ${quoteLocation(location)} CASCADE`];
}

/**
 * sql-reference/constructs/at-before: the fallback when no backup is kept, within the time-travel
 * retention (1 day on Standard, up to 90 on Enterprise): a clone of the table as it was.
 */
export function timeTravelClone(relation: Relation, into: Relation, timestamp: string): string {
  return `CREATE TABLE ${quoteRelation(into)} CLONE ${quoteRelation(relation)} AT(TIMESTAMP => ${quoteLiteral(timestamp)}::TIMESTAMP_LTZ)`;
}

/** functions/hash_agg: an order-independent hash over every row, for verify. */
export function fingerprint(relation: Relation): string {
  return `SELECT COUNT(*) AS ROW_COUNT, TO_VARCHAR(HASH_AGG(*)) AS CHECKSUM FROM ${quoteRelation(relation)}`;
}

/** sql-reference/info-schema/tables, views: what a relation is, and whether a table is transient. */
export function describeRelations(location: Location, identifier?: string): string {
  const db = quoteIdentifier(location.database);
  const where =
    `table_schema = ${quoteLiteral(snowflakeDialect.storedName(location.schema))}` +
    (identifier === undefined
      ? ''
      : ` AND table_name = ${quoteLiteral(snowflakeDialect.storedName(identifier))}`);
  // Views are read from `views` too: a stand-in may list them there only.
  return (
    `SELECT table_name, table_type, is_transient FROM ${db}.information_schema.tables WHERE ${where} ` +
    `UNION ALL SELECT table_name, 'VIEW' AS table_type, 'NO' AS is_transient FROM ${db}.information_schema.views WHERE ${where}`
  );
}

/** sql-reference/info-schema/views: a view's full `CREATE VIEW` text, recorded in a backup. */
export function viewDefinition(relation: Relation): string {
  return (
    `SELECT view_definition FROM ${quoteIdentifier(relation.database)}.information_schema.views ` +
    `WHERE table_schema = ${quoteLiteral(snowflakeDialect.storedName(relation.schema))} ` +
    `AND table_name = ${quoteLiteral(snowflakeDialect.storedName(relation.identifier))}`
  );
}

/** sql-reference/info-schema/schemata: the schemas of one database. */
export function listSchemas(database: string): string {
  return `SELECT schema_name FROM ${quoteIdentifier(database)}.information_schema.schemata`;
}

/** sql-reference/sql/show-schemas: `_` matches any character here, so the prefix is checked again. */
export const SHOW_SCHEMAS_LIKE_BACKUP = `SHOW SCHEMAS LIKE 'DBT_DEPLOY_BACKUP__%' IN ACCOUNT`;

/**
 * How `plan` shows blue-green's and clone-back's start where staging is a database of its own under
 * prod's schema names: the one zero-copy clone (`cloneStaging`); nothing elsewhere (the sync then
 * clones table by table, or the strategy builds without a sync).
 */
export function planStagingClone(
  strategy: 'blue-green' | 'clone-back' | 'wap' | 'wac' | 'mirror' | 'rollback',
  prod: Location,
  staging: Location,
  owner: StagingOwner,
): string[] {
  const { storedName } = snowflakeDialect;
  if (strategy !== 'blue-green' && strategy !== 'clone-back') return [];
  if (storedName(prod.database) === storedName(staging.database)) return [];
  if (storedName(prod.schema) !== storedName(staging.schema)) return [];
  return cloneStaging(prod.database, staging.database, { kind: 'absent' }, owner, []);
}

/**
 * The cut-over of a strategy as `dbt-deploy plan` prints it, from the targets' databases and schemas.
 * Table and schema names dbt resolves at run time appear as `<schema>` and `<table>`; the backup's name
 * depends on the deploy id (`backupLocationName`).
 */
export function planCutOver(
  strategy: 'blue-green' | 'clone-back' | 'wap' | 'wac' | 'mirror' | 'rollback',
  prod: Location,
  staging: Location,
): string[] {
  const backup = 'DBT_DEPLOY_BACKUP__<DEPLOY_ID>_<HASH>';
  const prodTable = { database: prod.database, schema: '<schema>', identifier: '<table>' };
  const stagingTable = { database: staging.database, schema: '<schema>', identifier: '<table>' };
  const plain = (s: string) => s.replace(/"(<[a-z ]+>)"/g, '$1');
  switch (strategy) {
    case 'blue-green': {
      const sameDatabase =
        snowflakeDialect.storedName(prod.database) === snowflakeDialect.storedName(staging.database);
      if (sameDatabase)
        return swapSchemas(prod.database, [
          { prod: '<prod schema>', staging: '<staging schema>', backup: '<backup schema>' },
        ]).map(plain);
      return [
        `GRANT <prod's database, schema and future grants> ON … ${quoteIdentifier(staging.database)} …`,
        plain(
          repointView(
            { database: staging.database, schema: '<schema>', identifier: '<view>' },
            '<SELECT compiled for prod>',
          ),
        ),
        ...swapDatabases(prod.database, staging.database, backup),
      ];
    }
    case 'clone-back':
    case 'wac':
    case 'mirror':
      return [
        plain(
          replaceTable(stagingTable, prodTable, {
            to: 'table',
            fromTransient: false,
            toTransient: false,
          })[0] as string,
        ),
        plain(
          replaceView(
            { ...prodTable, identifier: '<view>' },
            '<SELECT compiled for prod>',
            'view',
          )[0] as string,
        ),
      ];
    case 'rollback':
      return [
        plain(
          replaceTable({ database: prod.database, schema: backup, identifier: 't<n>__<table>' }, prodTable, {
            to: 'table',
            fromTransient: false,
            toTransient: false,
          })[0] as string,
        ),
      ];
    case 'wap':
      return [];
  }
}
