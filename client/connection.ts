/**
 * Where the Temporal server is: the Temporal CLI's own variables, so one setting serves both tools.
 */
import { Client, Connection } from '@temporalio/client';
import { TemporalUnavailable } from './errors.js';
import { requireSearchAttributes } from './search-attributes.js';

export interface TemporalSettings {
  /** `TEMPORAL_ADDRESS`, default 127.0.0.1:7233 (the dev server). */
  address: string;
  /** `TEMPORAL_NAMESPACE`, default `default`. */
  namespace: string;
  /** `DBT_DEPLOY_TASK_QUEUE`, default `dbt-deploy`. */
  taskQueue: string;
}

export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TASK_QUEUE = 'dbt-deploy';

export function temporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  return {
    address: env['TEMPORAL_ADDRESS'] || DEFAULT_ADDRESS,
    namespace: env['TEMPORAL_NAMESPACE'] || 'default',
    taskQueue: env['DBT_DEPLOY_TASK_QUEUE'] || DEFAULT_TASK_QUEUE,
  };
}

export async function connectClient(settings: TemporalSettings): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: settings.address, connectTimeout: '5 seconds' });
  } catch (error) {
    throw new TemporalUnavailable(settings.address, error);
  }
  await requireSearchAttributes(connection, settings.namespace);
  return new Client({ connection, namespace: settings.namespace });
}
