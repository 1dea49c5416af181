/**
 * Loads the shop's raw source tables (schema `raw`) into a DuckDB file or a PostgreSQL database, as
 * an upstream loader would. The deploy never writes here; the demo and the tests call this before
 * deploying. The data is generated from a seed, so the same call always yields the same rows.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import pg from 'pg';

/**
 * A BigQuery project: on an emulator (`apiEndpoint`) without credentials, otherwise with the
 * application default credentials.
 */
export interface BigQueryRawTarget {
  projectId: string;
  location: string;
  apiEndpoint?: string;
  /** The dataset of the sources, when not `raw` (a live test's own). */
  rawDataset?: string;
}

/**
 * A DuckDB file's path, or how to reach a PostgreSQL database or a BigQuery project, or any session
 * that runs a statement and returns its rows with lower-case column names (a Snowflake stand-in's).
 */
export type RawTarget =
  | string
  | { postgres: pg.ClientConfig }
  | { bigquery: BigQueryRawTarget }
  | { execute: (sql: string) => Promise<Record<string, unknown>[]> };

export interface RawDataOptions {
  customers?: number;
  orders?: number;
  /** Orders get ids from this one up, so later loads can append new orders (the T+1 of a deploy). */
  firstOrderId?: number;
  seed?: number;
}

const STATUSES = ['placed', 'shipped', 'completed', 'returned'] as const;
const METHODS = ['card', 'bank_transfer', 'voucher'] as const;
const FIRST_NAMES = [
  'Ada',
  'Ben',
  'Chloe',
  'Dev',
  'Elif',
  'Femi',
  'Greta',
  'Hiro',
  'Ines',
  'Jonas',
  'Kai',
  'Lena',
];
const LAST_NAMES = [
  'Okafor',
  'Nguyen',
  'Silva',
  'Kowalski',
  'Haddad',
  'Berg',
  'Ito',
  'Moreau',
  'Rossi',
  'Walsh',
];

/** Creates (or replaces) raw.customers, raw.orders and raw.payments. */
export async function loadRawData(target: RawTarget, options: RawDataOptions = {}): Promise<void> {
  const customers = options.customers ?? 200;
  await withDatabase(target, async (run) => {
    await run('CREATE SCHEMA IF NOT EXISTS raw');
    // Plain SQL both engines speak: the same loader feeds the DuckDB and the PostgreSQL tests.
    for (const [table, columns] of Object.entries(RAW_TABLES)) {
      await run(`DROP TABLE IF EXISTS raw.${table}`);
      await run(`CREATE TABLE raw.${table} (${columns.replaceAll('VARCHAR', textType(target))})`);
    }
    const random = seeded(options.seed ?? 7);
    const rows: string[] = [];
    for (let id = 1; id <= customers; id += 1) {
      const first = pick(random, FIRST_NAMES);
      const last = pick(random, LAST_NAMES);
      const created = timestamp(Date.UTC(2024, 0, 1) + Math.floor(random() * 400) * 86_400_000);
      rows.push(`(${id}, '${first}', '${last}', '${first}.${last}${id}@Example.com', '${created}')`);
    }
    await run(`INSERT INTO raw.customers VALUES ${rows.join(', ')}`);
  });
  await appendRawOrders(target, {
    customers,
    orders: options.orders ?? 600,
    firstOrderId: options.firstOrderId ?? 1,
    seed: (options.seed ?? 7) + 1,
  });
}

/** Appends orders (and their payments) placed after every existing one, as a new day of source data. */
export async function appendRawOrders(target: RawTarget, options: RawDataOptions = {}): Promise<void> {
  const customers = options.customers ?? 200;
  const count = options.orders ?? 50;
  const random = seeded(options.seed ?? 99);
  await withDatabase(target, async (run, query) => {
    const [latest] = await query(
      `SELECT coalesce(max(id), 0) AS max_id, cast(coalesce(max(ordered_at), TIMESTAMP '2025-01-01') AS ${textType(target)}) AS last_at FROM raw.orders`,
    );
    const firstId = Math.max(options.firstOrderId ?? 1, Number(latest?.['max_id'] ?? 0) + 1);
    const [payments] = await query('SELECT coalesce(max(id), 0) AS max_id FROM raw.payments');
    let paymentId = Number(payments?.['max_id'] ?? 0);
    // BigQuery's text form of a timestamp ends in its zone (`+00`); the others' has none.
    const lastAt = String(latest?.['last_at'])
      .replace(' ', 'T')
      .replace(/\+00(:00)?$/, '');
    let orderedAt = Date.parse(`${lastAt}Z`);
    const orderRows: string[] = [];
    const paymentRows: string[] = [];
    for (let id = firstId; id < firstId + count; id += 1) {
      orderedAt += 60_000 + Math.floor(random() * 6 * 3_600_000);
      const customer = 1 + Math.floor(random() * customers);
      orderRows.push(`(${id}, ${customer}, '${timestamp(orderedAt)}', '${pick(random, STATUSES)}')`);
      const split = random() < 0.1 ? 2 : 1;
      for (let part = 0; part < split; part += 1) {
        paymentId += 1;
        const cents = 500 + Math.floor(random() * 20_000);
        paymentRows.push(
          `(${paymentId}, ${id}, '${pick(random, METHODS)}', ${cents}, '${timestamp(orderedAt + 60_000)}')`,
        );
      }
    }
    if (orderRows.length > 0) await run(`INSERT INTO raw.orders VALUES ${orderRows.join(', ')}`);
    if (paymentRows.length > 0) await run(`INSERT INTO raw.payments VALUES ${paymentRows.join(', ')}`);
  });
}

/**
 * Changes the email of the given customers in place, as the shop's own database does when a customer
 * edits their profile: what the example's snapshot records as a new version.
 */
export async function changeCustomerEmails(target: RawTarget, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await withDatabase(target, async (run) => {
    await run(`UPDATE raw.customers SET email = 'new.' || email WHERE id IN (${ids.map(Number).join(', ')})`);
  });
}

type Run = (sql: string) => Promise<void>;
type Query = (sql: string) => Promise<Record<string, unknown>[]>;

const RAW_TABLES = {
  customers: 'id INTEGER, first_name VARCHAR, last_name VARCHAR, email VARCHAR, created_at TIMESTAMP',
  orders: 'id INTEGER, customer_id INTEGER, ordered_at TIMESTAMP, status VARCHAR',
  payments: 'id INTEGER, order_id INTEGER, method VARCHAR, amount_cents INTEGER, created_at TIMESTAMP',
};

/** BigQuery has no VARCHAR. */
function textType(target: RawTarget): string {
  return typeof target === 'object' && 'bigquery' in target ? 'STRING' : 'VARCHAR';
}

async function withDatabase(
  target: RawTarget,
  work: (run: Run, query: Query) => Promise<void>,
): Promise<void> {
  if (typeof target === 'object' && 'bigquery' in target) {
    const { projectId, location, apiEndpoint, rawDataset } = target.bigquery;
    const client = new BigQuery({
      projectId,
      location,
      ...(apiEndpoint ? { apiEndpoint, authClient: new PassThroughClient() } : {}),
    });
    // Jobs, not the fast query path: only they report every error (an emulator's too).
    const query: Query = async (sql) => {
      const text = rawDataset ? sql.replace(/\braw(?=\.|$)/g, rawDataset) : sql;
      const [job] = await client.createQueryJob({ query: text, location });
      const [rows] = await job.getQueryResults();
      return rows as Record<string, unknown>[];
    };
    await work(async (sql) => {
      await query(sql);
    }, query);
    return;
  }
  if (typeof target === 'object' && 'execute' in target) {
    await work(async (sql) => {
      await target.execute(sql);
    }, target.execute);
    return;
  }
  if (typeof target !== 'string') {
    const client = new pg.Client(target.postgres);
    await client.connect();
    try {
      await work(
        async (sql) => {
          await client.query(sql);
        },
        async (sql) => (await client.query<Record<string, unknown>>(sql)).rows,
      );
    } finally {
      await client.end();
    }
    return;
  }
  const instance = await DuckDBInstance.create(target);
  const connection = await instance.connect();
  try {
    await work(
      async (sql) => {
        await connection.run(sql);
      },
      async (sql) => (await connection.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[],
    );
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** mulberry32: a tiny deterministic generator, so every run loads identical data. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function pick<T>(random: () => number, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)] as T;
}

function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}
