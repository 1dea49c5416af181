/**
 * The opt-in payload codec: every payload the client and the worker send to Temporal (workflow and
 * activity inputs and results, memos, summaries, heartbeats, query answers, and, with the failure
 * converter beside it, error messages and stack traces) is sealed with AES-256-GCM before it leaves the
 * process. Each sealed payload names its key in its metadata (`encryption-key-id`), so keys can rotate:
 * the newest key seals, every listed key opens what it sealed.
 *
 * Keys come from `DBT_DEPLOY_CODEC_KEYS_FILE` (a file) or `DBT_DEPLOY_CODEC_KEYS` (the same lines in
 * the variable): one key a line, `<id>:<base64 of 32 random bytes>`, oldest first, `#` comments. With
 * neither set, nothing is encrypted.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
// CommonJS: Node's ESM loader sees only its default export.
import proto from '@temporalio/proto';
import { UsageError } from './errors.js';
import { readFailure } from './config.js';

/** The `encoding` of a sealed payload, as Temporal's samples name it. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** The metadata key that names the key a payload was sealed with. */
export const KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface CodecKey {
  id: string;
  /** 32 bytes: AES-256. */
  key: Buffer;
}

/**
 * Reads key lines: `<id>:<base64 key>`, one a line (or separated by commas or spaces in a variable),
 * oldest first. `where` names the source in errors; the keys themselves never appear in one.
 */
export function parseCodecKeys(text: string, where: string): CodecKey[] {
  const keys: CodecKey[] = [];
  const entries = text
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .flatMap((line) => line.split(/[\s,]+/))
    .filter(Boolean);
  for (const [index, entry] of entries.entries()) {
    const at = entry.indexOf(':');
    const id = at > 0 ? entry.slice(0, at) : '';
    if (!KEY_ID.test(id)) {
      throw new UsageError(
        `${where}: key ${index + 1} must read <id>:<base64 key>, the id made of letters, digits, ".", "_" or "-" (make one with \`dbt-deploy codec-key\`)`,
      );
    }
    const key = Buffer.from(entry.slice(at + 1), 'base64');
    if (key.length !== 32) {
      throw new UsageError(
        `${where}: key "${id}" is ${key.length} bytes, AES-256 needs 32 (base64 of 32 random bytes: \`dbt-deploy codec-key\`)`,
      );
    }
    if (keys.some((k) => k.id === id)) throw new UsageError(`${where}: key id "${id}" is listed twice`);
    keys.push({ id, key });
  }
  if (keys.length === 0) throw new UsageError(`${where}: no key in it (one a line: <id>:<base64 key>)`);
  return keys;
}

/** The keys from `DBT_DEPLOY_CODEC_KEYS_FILE` or `DBT_DEPLOY_CODEC_KEYS`; undefined when neither is set. */
export function codecKeysFromEnv(env: NodeJS.ProcessEnv = process.env): CodecKey[] | undefined {
  const file = env['DBT_DEPLOY_CODEC_KEYS_FILE'];
  const inline = env['DBT_DEPLOY_CODEC_KEYS'];
  if (file && inline)
    throw new UsageError('set DBT_DEPLOY_CODEC_KEYS_FILE or DBT_DEPLOY_CODEC_KEYS, not both');
  if (file) return readCodecKeys(file);
  if (inline) return parseCodecKeys(inline, 'DBT_DEPLOY_CODEC_KEYS');
  return undefined;
}

export function readCodecKeys(file: string): CodecKey[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`${file}: cannot read the codec keys (${readFailure(error)})`);
  }
  return parseCodecKeys(text, file);
}

/** A new key line for a keys file: `<id>:<base64 of 32 random bytes>`; the id defaults to today's date. */
export function newCodecKeyLine(id = new Date().toISOString().slice(0, 10)): string {
  if (!KEY_ID.test(id)) throw new UsageError(`--id: "${id}" must be letters, digits, ".", "_" or "-"`);
  return `${id}:${randomBytes(32).toString('base64')}`;
}

/**
 * AES-256-GCM over the whole payload (its metadata too: the encoding says what the cleartext was).
 * A sealed payload's data is `iv (12 bytes) | ciphertext | tag (16 bytes)`; the key id is bound to it
 * as additional data, so a payload cannot be passed off as sealed by another key.
 */
export class AesGcmCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  private readonly newest: CodecKey;

  constructor(keys: readonly CodecKey[]) {
    const newest = keys.at(-1);
    if (!newest) throw new UsageError('the payload codec needs at least one key');
    this.newest = newest;
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  /** The id of the key that seals new payloads (the last one listed). */
  get currentKeyId(): string {
    return this.newest.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', this.newest.key, iv);
      cipher.setAAD(Buffer.from(this.newest.id));
      const clear = proto.temporal.api.common.v1.Payload.encode(payload).finish();
      const sealed = Buffer.concat([iv, cipher.update(clear), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          encoding: Buffer.from(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: Buffer.from(this.newest.id),
        },
        data: sealed,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.['encoding'];
      // Payloads written before the codec was turned on, or by another client, pass through as they are.
      if (!encoding || Buffer.from(encoding).toString() !== ENCRYPTED_ENCODING) return payload;
      const idBytes = payload.metadata?.[KEY_ID_METADATA];
      const id = idBytes ? Buffer.from(idBytes).toString() : '';
      const key = this.byId.get(id);
      if (!key) {
        throw new Error(
          `a payload is sealed with codec key "${id}", which is not among the keys given (${[...this.byId.keys()].join(', ')}); add it to the keys to read it`,
        );
      }
      const data = Buffer.from(payload.data ?? new Uint8Array());
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(id));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let clear: Buffer;
      try {
        clear = Buffer.concat([
          decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
          decipher.final(),
        ]);
      } catch {
        throw new Error(
          `a payload sealed with codec key "${id}" does not open with that key (wrong key or altered data)`,
        );
      }
      return proto.temporal.api.common.v1.Payload.decode(clear) as Payload;
    });
  }
}

/**
 * The module the worker loads as its failure converter when the codec is on: error messages and stack
 * traces travel as a payload (sealed by the codec) instead of in clear. CommonJS, so both the SDK's
 * `require` and the workflow bundler load it from the sources and from the package alike.
 */
export const ENCRYPTED_FAILURES_PATH = fileURLToPath(
  new URL('../worker/failure-converter.cjs', import.meta.url),
);

/** The data converter of a client or worker that encrypts with `codec`. */
export function encryptingDataConverter(codec: PayloadCodec): DataConverter {
  return { payloadCodecs: [codec], failureConverterPath: ENCRYPTED_FAILURES_PATH };
}

/** Whether the client seals payloads with this product's codec: then project names go by their alias. */
export function clientEncrypts(client: Client): boolean {
  return client.options.loadedDataConverter.payloadCodecs.some((codec) => codec instanceof AesGcmCodec);
}

/**
 * What a project is called where Temporal keeps things in clear (workflow ids, schedule ids, the
 * `DbtDeployProject` search attribute) when payloads are encrypted: `p-` and 12 hex digits of the
 * name's SHA-256. A pseudonym, not a secret: whoever guesses the name can confirm it by hashing it.
 */
export function projectAlias(project: string): string {
  return `p-${createHash('sha256').update(project).digest('hex').slice(0, 12)}`;
}

/** The project's name in ids and search attributes for this client: its alias when the client encrypts. */
export function projectIdFor(client: Client, project: string): string {
  return clientEncrypts(client) ? projectAlias(project) : project;
}

/** The input with `projectAlias` set when the client encrypts (the workflow then names the project by it). */
export function withProjectAlias<T extends { project: string; projectAlias?: string }>(
  client: Client,
  input: T,
): T {
  return clientEncrypts(client) ? { ...input, projectAlias: projectAlias(input.project) } : input;
}
