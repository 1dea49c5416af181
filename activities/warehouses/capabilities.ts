/**
 * What each warehouse can do, declared as data. Strategies read this to build a plan (and to refuse a
 * strategy an engine cannot run) without touching the warehouse, so this module must stay free of I/O:
 * workflow code imports it.
 */
export const ENGINES = ['duckdb', 'postgres', 'bigquery'] as const;
export type Engine = (typeof ENGINES)[number];

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
  },
  postgres: {
    // Schema renames are transactional and do not wait for readers: a true atomic blue/green swap.
    zeroCopyClone: false,
    atomicSwap: 'schema',
    transactionalDdl: true,
    cloneViews: false,
    timeTravelDays: 0,
    singleWriter: false,
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
  },
};

export function isEngine(value: string): value is Engine {
  return (ENGINES as readonly string[]).includes(value);
}
