/**
 * `dbt-deploy codec-server`: Temporal's codec-server HTTP protocol over the payload codec, so the
 * Temporal Web UI (and `temporal --codec-endpoint`) can show encrypted histories in clear to whoever
 * may reach it. `POST <any path>/encode` and `POST <any path>/decode` take and return a Payloads
 * message as protobuf JSON (`{"payloads": [{"metadata": {...}, "data": "<base64>"}]}`); the browser's
 * preflight is answered for the UI origins given, and only for them.
 *
 * It holds the keys: it listens on loopback unless told otherwise, and anything that reaches it can
 * decrypt. Put it behind the same access control as the UI when it serves more than one person.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 8888 */
  port?: number;
  /** Origins whose browsers may call it (the Temporal UI's, e.g. `http://127.0.0.1:8233`). */
  origins: readonly string[];
  /** One line per request (method, path, namespace, payload count, status); never payload contents. */
  log?: (line: string) => void;
}

export interface CodecServer {
  /** `http://host:port`: what the UI's codec endpoint setting (or `--ui-codec-endpoint`) takes. */
  url: string;
  /** Requests answered so far, by endpoint: for tests and the shutdown line. */
  counts: { encode: number; decode: number; refused: number };
  close(): Promise<void>;
}

/** Bodies above this are refused: a page of history is far smaller. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

export async function startCodecServer(options: CodecServerOptions): Promise<CodecServer> {
  const origins = new Set(options.origins.map((o) => o.replace(/\/+$/, '')));
  const counts = { encode: 0, decode: 0, refused: 0 };
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      counts.refused++;
      send(response, 500, { error: error instanceof Error ? error.message : String(error) });
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const origin = request.headers.origin;
    if (origin && origins.has(origin)) {
      response.setHeader('Access-Control-Allow-Origin', origin);
      response.setHeader('Access-Control-Allow-Credentials', 'true');
      response.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      response.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      response.setHeader('Access-Control-Max-Age', '600');
    }
    response.setHeader('Vary', 'Origin');
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const namespace = request.headers['x-namespace'] ?? '-';
    const done = (status: number, body: unknown, payloads = 0) => {
      send(response, status, body);
      options.log?.(
        `${request.method} ${path} namespace=${String(namespace)} payloads=${payloads} ${status}`,
      );
    };
    if (request.method === 'OPTIONS') {
      // A browser from another origin gets no allow headers above, and so no answer it may read.
      response.writeHead(origin && origins.has(origin) ? 204 : 403).end();
      return;
    }
    // Only the last part of the path counts, so the endpoints can be mounted at any depth.
    const endpoint = path.endsWith('/encode') ? 'encode' : path.endsWith('/decode') ? 'decode' : undefined;
    if (!endpoint) {
      counts.refused++;
      return done(404, { error: 'POST .../encode or .../decode' });
    }
    if (request.method !== 'POST') {
      counts.refused++;
      response.setHeader('Allow', 'POST, OPTIONS');
      return done(405, { error: `${endpoint} takes POST` });
    }
    if (origin && !origins.has(origin)) {
      counts.refused++;
      return done(403, {
        error: `origin ${origin} may not use this codec server (allowed: ${[...origins].join(', ') || 'none'})`,
      });
    }
    let payloads: Payload[];
    try {
      payloads = fromJson(JSON.parse(await readBody(request)) as { payloads?: JsonPayload[] });
    } catch (error) {
      counts.refused++;
      return done(400, {
        error: `expected {"payloads": [...]} as protobuf JSON: ${(error as Error).message}`,
      });
    }
    let out: Payload[];
    try {
      out =
        endpoint === 'encode' ? await options.codec.encode(payloads) : await options.codec.decode(payloads);
    } catch (error) {
      counts.refused++;
      return done(400, { error: (error as Error).message }, payloads.length);
    }
    counts[endpoint]++;
    done(200, { payloads: out.map(payloadToJson) }, payloads.length);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8888, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return;
  response.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error(`body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Protobuf JSON: bytes fields are base64 strings; an empty field may be left out. */
function fromJson(body: { payloads?: JsonPayload[] }): Payload[] {
  if (!body || !Array.isArray(body.payloads)) throw new Error('no "payloads" array');
  return body.payloads.map((p) => ({
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]),
    ),
    data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')),
  }));
}

/** A payload as the codec-server protocol carries it (protobuf JSON: bytes as base64). */
export function payloadToJson(payload: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([k, v]) => [
        k,
        Buffer.from(v ?? new Uint8Array()).toString('base64'),
      ]),
    ),
    data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64'),
  };
}
