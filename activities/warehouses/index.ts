import type { WarehouseConnection } from '../profiles.js';
import { takeTurn } from '../turns.js';
import type { StatementLog, WarehouseAdapter } from './adapter.js';
import { BigQueryAdapter, type JobTag } from './bigquery/adapter.js';
import { DuckDbAdapter } from './duckdb/adapter.js';
import { PostgresAdapter } from './postgres/adapter.js';

/** The key under which dbt and the worker take turns on a warehouse; shared with the dbt runner. */
export function turnKey(connection: WarehouseConnection): string {
  switch (connection.engine) {
    case 'duckdb':
      return `duckdb:${connection.path}`;
    case 'postgres':
      // PostgreSQL takes concurrent writers; the queue still keeps our own cut-overs in order.
      return `postgres:${connection.host}:${connection.port}/${connection.dbname}`;
    case 'bigquery':
      // Jobs run concurrently; the queue keeps our own cut-overs of one project in order.
      return `bigquery:${connection.apiEndpoint ?? ''}/${connection.project}`;
    case 'snowflake':
      // Every database of an account is reachable from one session: staging may be another database.
      return `snowflake:${connection.accessUrl ?? ''}${connection.account.toLowerCase()}`;
  }
}

/** Who is running statements: an engine that labels its jobs or tags its queries names them after it. */
export type SessionTag = JobTag;

/** Opens the warehouse for `work` and closes it afterwards, so a dbt process can have the file next. */
export async function withWarehouse<T>(
  connection: WarehouseConnection,
  log: StatementLog,
  work: (warehouse: WarehouseAdapter) => Promise<T>,
  tag?: SessionTag,
): Promise<T> {
  return takeTurn(turnKey(connection), async () => {
    const warehouse = await open(connection, log, tag);
    try {
      return await work(warehouse);
    } finally {
      await warehouse.close();
    }
  });
}

async function open(
  connection: WarehouseConnection,
  log: StatementLog,
  tag?: SessionTag,
): Promise<WarehouseAdapter> {
  switch (connection.engine) {
    case 'duckdb':
      return DuckDbAdapter.open(connection, log);
    case 'postgres':
      return PostgresAdapter.open(connection, log);
    case 'bigquery':
      return BigQueryAdapter.open(connection, log, tag);
    case 'snowflake': {
      // Loaded on first use: the driver pulls in cloud SDKs that DuckDB and PostgreSQL workers never need.
      const { SnowflakeAdapter } = await import('./snowflake/adapter.js');
      return SnowflakeAdapter.open(connection, log, tag);
    }
  }
}
