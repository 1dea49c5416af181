/**
 * Where the Temporal server is and how to reach it: Temporal's environment configuration
 * (`@temporalio/envconfig`), so the profiles in temporal.toml and the `TEMPORAL_*` variables the
 * Temporal CLI reads (address, namespace, API key, TLS client certificate and key, server CA, server
 * name) serve both tools. A connection that fails says why in one line: a TLS handshake is retried
 * on its own to name the certificate problem, a refused API key is named as such.
 */
import { connect as tlsConnect } from 'node:tls';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { type ClientConfigProfile, loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';
import type { PayloadCodec } from '@temporalio/common';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { AesGcmCodec, codecKeysFromEnv } from './codec.js';
import { TemporalUnavailable, UsageError } from './errors.js';
import { requireSearchAttributes } from './search-attributes.js';

export interface TemporalSettings {
  /** `TEMPORAL_ADDRESS` or the profile's `address`, default 127.0.0.1:7233 (the dev server). */
  address: string;
  /** `TEMPORAL_NAMESPACE` or the profile's `namespace`, default `default`. */
  namespace: string;
  /** `DBT_DEPLOY_TASK_QUEUE`, default `dbt-deploy`. */
  taskQueue: string;
  /**
   * TLS, API key and gRPC metadata from the profile (`TEMPORAL_PROFILE`, default `default`, in
   * `TEMPORAL_CONFIG_FILE` or ~/.config/temporalio/temporal.toml) and the `TEMPORAL_*` variables.
   * @default {} (plain TCP, no credentials)
   */
  connection?: Pick<NativeConnectionOptions, 'tls' | 'apiKey' | 'metadata'>;
  /**
   * Seals every payload with AES-256-GCM (`AesGcmCodec`, keys from `DBT_DEPLOY_CODEC_KEYS_FILE` or
   * `DBT_DEPLOY_CODEC_KEYS`); the client, every worker and the codec server need the same keys.
   * @default undefined (payloads in clear)
   */
  codec?: PayloadCodec;
}

export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TASK_QUEUE = 'dbt-deploy';

export function temporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const where = `Temporal connection settings (profile "${env['TEMPORAL_PROFILE'] || 'default'}")`;
  let profile: ClientConfigProfile;
  let connectionOptions: NativeConnectionOptions;
  let namespace: string | undefined;
  try {
    profile = loadClientConfigProfile({ overrideEnvVars: definedOnly(env) });
    requireKeyPair(profile);
    ({ connectionOptions, namespace } = toClientOptions(profile));
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(`${where}: ${error.message}`);
    throw new UsageError(`${where}: ${firstLine(error)}`);
  }
  const { tls, apiKey, metadata } = connectionOptions;
  const keys = codecKeysFromEnv(env);
  return {
    address: connectionOptions.address || DEFAULT_ADDRESS,
    namespace: namespace || 'default',
    taskQueue: env['DBT_DEPLOY_TASK_QUEUE'] || DEFAULT_TASK_QUEUE,
    connection: {
      ...(tls !== undefined ? { tls } : {}),
      ...(apiKey !== undefined ? { apiKey } : {}),
      ...(metadata && Object.keys(metadata).length > 0 ? { metadata } : {}),
    },
    ...(keys ? { codec: new AesGcmCodec(keys) } : {}),
  };
}

/** envconfig drops a certificate without its key silently; the server would then refuse a bare handshake. */
function requireKeyPair(profile: ClientConfigProfile): void {
  const { clientCert, clientKey } = profile.tls ?? {};
  if (clientCert && !clientKey)
    throw new UsageError(
      'a client certificate is set but no client key: set TEMPORAL_TLS_CLIENT_KEY_PATH (or tls.client_key_path in the profile)',
    );
  if (clientKey && !clientCert)
    throw new UsageError(
      'a client key is set but no client certificate: set TEMPORAL_TLS_CLIENT_CERT_PATH (or tls.client_cert_path in the profile)',
    );
}

export async function connectClient(settings: TemporalSettings): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({
      address: settings.address,
      connectTimeout: '5 seconds',
      ...(settings.connection as ConnectionOptions | undefined),
    });
  } catch (error) {
    throw await connectionFailure(settings, error);
  }
  try {
    await requireSearchAttributes(connection, settings.namespace);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return new Client({
    connection,
    namespace: settings.namespace,
    ...(settings.codec ? { dataConverter: { payloadCodecs: [settings.codec] } } : {}),
  });
}

/** One line that says why the server could not be reached, for the CLI, the worker and the library. */
export async function connectionFailure(settings: TemporalSettings, error: unknown): Promise<Error> {
  const { address, connection = {} } = settings;
  if (isAuthFailure(error)) {
    const how = connection.apiKey ? 'the API key (TEMPORAL_API_KEY) was refused' : 'it needs an API key';
    return new UsageError(
      `the Temporal server at ${address} refused the credentials: ${how} (${authMessage(error)}); set TEMPORAL_API_KEY or api_key in the profile`,
    );
  }
  const tls = connection.tls ?? (connection.apiKey ? true : undefined);
  if (tls) {
    const reason = await tlsHandshakeProblem(address, tls === true ? {} : tls);
    if (reason) return new UsageError(`cannot connect to Temporal at ${address} over TLS: ${reason}`);
  }
  return new TemporalUnavailable(address, error);
}

type TlsSettings = Exclude<NonNullable<NativeConnectionOptions['tls']>, boolean | null>;

/**
 * Repeats the TLS handshake with Node's own TLS stack, which names the problem (unknown CA, missing
 * client certificate, untrusted server) where the gRPC clients only say "transport error".
 */
async function tlsHandshakeProblem(address: string, tls: TlsSettings): Promise<string | undefined> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port,
      servername: tls.serverNameOverride ?? (isIp(host) ? undefined : host),
      ALPNProtocols: ['h2'],
      ...(tls.serverRootCACertificate ? { ca: Buffer.from(tls.serverRootCACertificate) } : {}),
      ...(tls.clientCertPair
        ? { cert: Buffer.from(tls.clientCertPair.crt), key: Buffer.from(tls.clientCertPair.key) }
        : {}),
    });
    const done = (reason: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    // With TLS 1.3 a refused client certificate arrives as an alert just after the handshake.
    socket.on('secureConnect', () => setTimeout(() => done(undefined), 500));
    socket.on('error', (error: NodeJS.ErrnoException) => done(describeTlsError(error)));
    const timer = setTimeout(() => done(undefined), 5_000);
  });
}

function describeTlsError(error: NodeJS.ErrnoException): string | undefined {
  const code = error.code ?? '';
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH') return undefined;
  if (code.includes('ALERT_CERTIFICATE_REQUIRED') || code.includes('HANDSHAKE_FAILURE'))
    return 'the server requires a client certificate and none was sent: set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH';
  if (
    code.includes('ALERT_UNKNOWN_CA') ||
    code.includes('ALERT_BAD_CERTIFICATE') ||
    code.includes('ALERT_DECRYPT')
  )
    return `the server does not accept the client certificate (${code}): check TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH`;
  if (code.includes('CERTIFICATE_EXPIRED') || code.includes('CERTIFICATE_REVOKED'))
    return `the server refused the client certificate (${code}): renew it`;
  if (/VERIFY|SELF_SIGNED|CERT_|ISSUER|ERR_TLS_CERT_ALTNAME/.test(code))
    return `the server's certificate is not trusted (${error.message}): set TEMPORAL_TLS_SERVER_CA_CERT_PATH to its CA, or TEMPORAL_TLS_SERVER_NAME to the name it carries`;
  if (code.startsWith('ERR_SSL')) return `TLS handshake failed (${code})`;
  return undefined;
}

function isAuthFailure(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (code === 16 || code === 7) return true;
    if (/valid authentication credentials|UNAUTHENTICATED|PERMISSION_DENIED/i.test(e.message)) return true;
  }
  return false;
}

function authMessage(error: unknown): string {
  let last = '';
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const details = (e as { details?: unknown }).details;
    last = typeof details === 'string' && details ? details : firstLine(e);
  }
  return last.replace(/^\d+ [A-Z_]+: /, '');
}

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  return [host, Number.parseInt(address.slice(at + 1), 10)];
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}

/** envconfig wants string values; an empty variable means unset, as for the Temporal CLI. */
function definedOnly(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => Boolean(entry[1])),
  );
}
