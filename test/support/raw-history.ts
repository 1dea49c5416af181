/**
 * A workflow's history as Temporal keeps it, read with the Temporal CLI (no codec): every string in it,
 * with each payload's `data` and metadata also read as the bytes they are (JSON shows them as base64).
 * What a person with access to the server, but not to the keys, can read.
 */
import { execa } from 'execa';
import { inject } from 'vitest';
import { temporalCliPath } from '../../client/dev-server.js';

export async function rawHistoryText(namespace: string, workflowId: string, runId?: string): Promise<string> {
  const { stdout } = await execa(temporalCliPath(), [
    'workflow',
    'show',
    '--workflow-id',
    workflowId,
    ...(runId ? ['--run-id', runId] : []),
    '--output',
    'json',
    '--address',
    inject('temporalAddress'),
    '--namespace',
    namespace,
  ]);
  const strings: string[] = [];
  const walk = (value: unknown, key: string, inPayload: boolean): void => {
    if (typeof value === 'string') {
      strings.push(value);
      // Payload bytes (data, metadata values) are base64 in JSON: read them as the server stores them.
      if (inPayload || key === 'data') strings.push(Buffer.from(value, 'base64').toString('latin1'));
    } else if (Array.isArray(value)) {
      for (const item of value) walk(item, key, inPayload);
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, k, inPayload || k === 'metadata');
    }
  };
  walk(JSON.parse(stdout), '', false);
  return strings.join('\n');
}
