/**
 * fakesnow, a local stand-in for Snowflake's HTTP protocol over one in-memory DuckDB, started on
 * loopback for a test file, and a shim in front of it for the Node driver. fakesnow answers SELECT,
 * SHOW and DDL with Arrow result sets only (`rowsetBase64`), and snowflake-sdk reads JSON result sets
 * only: the shim decodes each Arrow answer into the JSON `rowset` the driver expects (and leaves the
 * Python connector's answers alone: dbt-snowflake reads Arrow). Test harness
 * only: the product never talks to fakesnow and never sees the shim.
 *
 * What fakesnow does not do (FACTS §5): SWAP, database or schema clones, COPY GRANTS on tables,
 * grants, time travel, HASH_AGG; a table CLONE is a full copy. Tests on it never claim those.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { freePort } from '../../client/dev-server.js';
import { ROOT } from './harness.js';

export const FAKESNOW_BIN = join(ROOT, '.tools', 'fakesnow-venv', 'bin', 'fakesnow');

export interface Fakesnow {
  /** The shim's URL, for a profile's `host`/`port`/`protocol` or the driver's `accessUrl`. */
  host: string;
  port: number;
  stop(): Promise<void>;
}

export function fakesnowInstalled(): boolean {
  return existsSync(FAKESNOW_BIN);
}

export async function startFakesnow(): Promise<Fakesnow> {
  const upstream = await freePort();
  const child = spawn(FAKESNOW_BIN, ['-s', '--host', '127.0.0.1', '-p', String(upstream)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    await waitForPort(upstream, child, () => stderr);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  const shim = createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (chunk: Buffer) => body.push(chunk));
    req.on('end', () => {
      const headers = { ...req.headers, host: `127.0.0.1:${upstream}` };
      delete headers['accept-encoding'];
      const forward = request(
        { host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => parts.push(chunk));
          answer.on('end', () => {
            const text = Buffer.concat(parts);
            // The Python connector (dbt-snowflake) reads Arrow itself: its answers pass unchanged, so one
            // profile target serves dbt and the worker alike.
            const out = /^PythonConnector\//.test(req.headers['user-agent'] ?? '')
              ? text
              : jsonResultSet(text);
            if (process.env['FAKESNOW_SHIM_DEBUG'])
              console.error(
                `${req.url}\n< ${text.toString().slice(0, 600)}\n> ${out.toString().slice(0, 600)}`,
              );
            const outHeaders = { ...answer.headers, 'content-length': String(out.length) };
            delete outHeaders['content-encoding'];
            res.writeHead(answer.statusCode ?? 500, outHeaders);
            res.end(out);
          });
        },
      );
      forward.on('error', (error) => {
        res.writeHead(502);
        res.end(String(error));
      });
      forward.end(Buffer.concat(body));
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => shim.listen(port, '127.0.0.1', resolve));
  return {
    host: '127.0.0.1',
    port,
    stop: async () => {
      await closeServer(shim);
      child.kill('SIGTERM');
    },
  };
}

interface RowType {
  name: string;
  type: string;
  scale?: number | null;
}

/** An answer with an Arrow `rowsetBase64` becomes one with a JSON `rowset` of strings and nulls. */
function jsonResultSet(raw: Buffer): Buffer {
  let parsed: { data?: Record<string, unknown> };
  try {
    parsed = JSON.parse(raw.toString('utf8')) as { data?: Record<string, unknown> };
  } catch {
    return raw;
  }
  const data = parsed.data;
  if (!data) return raw;
  const rowtype = (data['rowtype'] as RowType[] | undefined) ?? [];
  if (typeof data['rowsetBase64'] === 'string' && data['rowset'] === undefined) {
    const encoded = data['rowsetBase64'];
    const rows: Array<Array<string | null>> = [];
    if (encoded.length > 0) {
      const table = tableFromIPC(Buffer.from(encoded, 'base64'));
      for (let i = 0; i < table.numRows; i += 1) {
        const row = table.get(i)?.toArray() ?? [];
        rows.push(rowtype.map((type, column) => snowflakeJson(row[column], type)));
      }
    }
    data['rowset'] = rows;
    data['returned'] = rows.length;
    data['total'] = rows.length;
    data['queryResultFormat'] = 'json';
    delete data['rowsetBase64'];
  } else if (Array.isArray(data['rowset']) && data['returned'] === undefined) {
    data['returned'] = data['rowset'].length;
    data['total'] = data['total'] ?? data['rowset'].length;
  }
  return Buffer.from(JSON.stringify(parsed));
}

/** One value in Snowflake's JSON result encoding: text, or null. */
function snowflakeJson(value: unknown, type: RowType): string | null {
  if (value === null || value === undefined) return null;
  const kind = type.type.toLowerCase();
  if (kind.startsWith('timestamp')) {
    const ms = value instanceof Date ? value.getTime() : Number(value);
    // Snowflake's JSON encoding: seconds since the epoch; TIMESTAMP_TZ adds its offset (+1440 = UTC).
    const seconds = (ms / 1000).toFixed(9);
    return kind === 'timestamp_tz' ? `${seconds} 1440` : seconds;
  }
  if (kind === 'date') {
    const ms = value instanceof Date ? value.getTime() : Number(value);
    return String(Math.round(ms / 86_400_000));
  }
  if (kind === 'boolean') return value ? '1' : '0';
  if (kind === 'fixed' && type.scale && typeof value !== 'object') {
    return (Number(value) / 10 ** type.scale).toFixed(type.scale);
  }
  if (typeof value === 'object' && !(value instanceof Date)) return JSON.stringify(value);
  return String(value);
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`fakesnow exited: ${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`fakesnow did not listen on ${port} within 60 s: ${output()}`);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
