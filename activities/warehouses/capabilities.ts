/**
 * What each warehouse can do, declared as data. Strategies read this to build a plan (and to refuse a
 * strategy an engine cannot run) without touching the warehouse, so this module must stay free of I/O:
 * workflow code imports it.
 */
export const ENGINES = ['duckdb', 'postgres', 'snowflake', 'bigquery'] as const;
export type Engine = (typeof ENGINES)[number];

/**
 * How much of a change readers can see half-done:
 * - `one-statement`: a single statement flips everything (Snowflake `ALTER DATABASE … SWAP WITH`);
 * - `one-transaction`: many statements commit together (PostgreSQL, DuckDB);
 * - `per-location`: each schema flips on its own, one after the other;
 * - `per-relation`: each table or view flips on its own, one after the other.
 */
export type Atomicity = 'one-statement' | 'one-transaction' | 'per-location' | 'per-relation';

/** How an engine applies a change to prod, and how atomic that is. */
export interface ChangeMethod {
  kind:
    /** the staging database takes prod's name in one swap (Snowflake) */
    | 'database-swap'
    /** each staging schema takes its prod schema's name (PostgreSQL renames, Snowflake `SWAP WITH`) */
    | 'schema-swap'
    /** every relation copied or re-created inside one transaction (DuckDB, PostgreSQL) */
    | 'transaction'
    /** one relation at a time, each its own atomic statement (Snowflake clone, BigQuery copy) */
    | 'per-relation';
  atomicity: Atomicity;
  /** What a reader of prod sees while the change is applied, in one sentence for `plan` and the docs. */
  readersSee: string;
}

/** How an engine keeps prod's previous state for `rollback` and the saga's undo. */
export interface BackupMethod {
  kind:
    /** rows written again into a backup location */
    | 'copy'
    /** a clone that shares storage until the data diverges */
    | 'zero-copy-clone'
    /** prod's own schemas or database renamed away by a swap, nothing copied */
    | 'rename';
  /** How a backup is put back; a restore changes prod, so readers see it like a cut-over. */
  restore: Atomicity;
}

export interface Capabilities {
  /** A clone shares storage with its source instead of copying rows. */
  zeroCopyClone: boolean;
  /** The largest unit that can be swapped in one atomic operation. */
  atomicSwap: 'database' | 'schema' | 'none';
  /** Several DDL statements can commit or roll back together. */
  transactionalDdl: boolean;
  /** Views can be cloned like tables (otherwise dbt re-creates them). */
  cloneViews: boolean;
  /** How far back the engine can read a dropped or changed table by itself. */
  timeTravelDays: number;
  /** Only one process may open the warehouse for writing at a time (dbt and the worker take turns). */
  singleWriter: boolean;
  /** blue-green's cut-over: how staging becomes prod. */
  cutOver: ChangeMethod;
  /**
   * blue-green's cut-over when staging schemas share prod's database, where that differs from
   * `cutOver` (Snowflake: one `ALTER SCHEMA … SWAP WITH` per schema instead of the database swap).
   */
  sharedDatabaseCutOver?: ChangeMethod;
  /**
   * A whole database is cloned in one zero-copy statement: a staging target in a database of its own
   * starts each deploy as a clone of prod's (Snowflake `CREATE DATABASE … CLONE`).
   */
  cloneDatabases: boolean;
  /** How the relations a deploy selected reach prod (clone-back, wac's tables, mirror, a restore). */
  publish: ChangeMethod;
  backup: BackupMethod;
  /**
   * Where staging may live relative to prod: in the same `database` (one DuckDB file, one PostgreSQL
   * database, different schemas), or anywhere in the same `account` (Snowflake: another database).
   */
  stagingScope: 'database' | 'account';
}

export const CAPABILITIES: Record<Engine, Capabilities> = {
  duckdb: {
    // DuckDB copies rows; the copy of all published tables happens in one transaction instead.
    zeroCopyClone: false,
    atomicSwap: 'none',
    transactionalDdl: true,
    cloneViews: false,
    timeTravelDays: 0,
    singleWriter: true,
    cutOver: {
      kind: 'transaction',
      atomicity: 'one-transaction',
      readersSee:
        'nothing during the copy: DuckDB lets no other process open the file while the worker writes, and the next reader sees all of the new prod',
    },
    publish: {
      kind: 'transaction',
      atomicity: 'one-transaction',
      readersSee:
        'nothing during the copy: DuckDB lets no other process open the file while the worker writes, and the next reader sees all of the new prod',
    },
    backup: { kind: 'copy', restore: 'one-transaction' },
    stagingScope: 'database',
    cloneDatabases: false,
  },
  postgres: {
    // Schema renames are transactional and do not wait for readers: a true atomic blue/green swap.
    zeroCopyClone: false,
    atomicSwap: 'schema',
    transactionalDdl: true,
    cloneViews: false,
    timeTravelDays: 0,
    singleWriter: false,
    cutOver: {
      kind: 'schema-swap',
      atomicity: 'one-transaction',
      readersSee:
        'the old prod until the commit, then the new one; renames take no lock on the tables, so readers never wait (queries on views re-created around the swap wait for the commit)',
    },
    publish: {
      kind: 'transaction',
      atomicity: 'one-transaction',
      readersSee:
        'the old relations until the commit, then the new ones; queries on a replaced relation wait from its drop until the commit',
    },
    backup: { kind: 'copy', restore: 'one-transaction' },
    stagingScope: 'database',
    cloneDatabases: false,
  },
  snowflake: {
    // Every DDL statement commits on its own: atomicity comes from single statements (SWAP, CLONE).
    zeroCopyClone: true,
    atomicSwap: 'database',
    transactionalDdl: false,
    cloneViews: true,
    // Standard edition's default; Enterprise allows up to 90 (DATA_RETENTION_TIME_IN_DAYS).
    timeTravelDays: 1,
    singleWriter: false,
    cutOver: {
      kind: 'database-swap',
      atomicity: 'one-statement',
      readersSee:
        'the old prod until `ALTER DATABASE … SWAP WITH` commits, then every relation of the new prod at once; queries already running finish on the old data and nobody waits',
    },
    sharedDatabaseCutOver: {
      kind: 'schema-swap',
      atomicity: 'per-location',
      readersSee:
        'each schema flips on its own as its `ALTER SCHEMA … SWAP WITH` commits, one after the other: between two swaps a reader sees one schema new and the next still old (a query joining both can mix them); nobody waits',
    },
    publish: {
      kind: 'per-relation',
      atomicity: 'per-relation',
      readersSee:
        'each table flips on its own as its `CREATE OR REPLACE TABLE … CLONE … COPY GRANTS` commits (each one atomic), views after their tables: for a moment some relations are new and others old',
    },
    backup: { kind: 'zero-copy-clone', restore: 'per-relation' },
    stagingScope: 'account',
    cloneDatabases: true,
  },
  bigquery: {
    // Datasets cannot be renamed and DDL cannot run in a multi-statement transaction: no swap, and
    // every published table is replaced on its own (a copy job is atomic per table).
    zeroCopyClone: true,
    atomicSwap: 'none',
    transactionalDdl: false,
    cloneViews: false,
    timeTravelDays: 7,
    singleWriter: false,
    cutOver: {
      // Never run: blue-green is refused on BigQuery (workflows/strategies/index.ts).
      kind: 'per-relation',
      atomicity: 'per-relation',
      readersSee: 'no blue/green on BigQuery: datasets cannot be renamed and DDL cannot run in a transaction',
    },
    publish: {
      kind: 'per-relation',
      atomicity: 'per-relation',
      readersSee:
        'each table on its own: a copy job replaces a table atomically (a table of 10 GiB or more is dropped, then cloned, and missing in between); views are re-created one at a time',
    },
    // Table snapshots share storage with prod until it changes; a restore is a copy job per table.
    backup: { kind: 'zero-copy-clone', restore: 'per-relation' },
    // Staging is another dataset of the same project.
    stagingScope: 'database',
    cloneDatabases: false,
  },
};

export function isEngine(value: string): value is Engine {
  return (ENGINES as readonly string[]).includes(value);
}

/** What readers of prod see while a plan of `strategy` changes prod on an engine, for `plan` and reports. */
export function readersSee(
  strategy: 'blue-green' | 'clone-back' | 'wap' | 'wac' | 'mirror' | 'rollback',
  capabilities: Capabilities,
  /** `shared-database`: staging schemas live in prod's own database. */
  layout: 'own-database' | 'shared-database' = 'own-database',
): string {
  switch (strategy) {
    case 'blue-green':
      return layout === 'shared-database' && capabilities.sharedDatabaseCutOver
        ? capabilities.sharedDatabaseCutOver.readersSee
        : capabilities.cutOver.readersSee;
    case 'clone-back':
    case 'mirror':
    case 'rollback':
      return capabilities.publish.readersSee;
    case 'wac':
      return `tables: ${capabilities.publish.readersSee}; then the views, re-created from the SQL dbt compiled for prod`;
    case 'wap':
      return 'each model changes on its own as dbt rebuilds it in prod: for a while some models are new and others old';
  }
}
