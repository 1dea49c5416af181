/**
 * A secured front for the run's dev server, as a team's cluster would have: Debian's HAProxy
 * terminates TLS with certificates of a throw-away CA made by openssl, and forwards gRPC (HTTP/2) to
 * the plain dev server. One port asks for a client certificate (mutual TLS); the other asks for an
 * API key, checked in the `authorization` metadata, and answers a missing or wrong key the way a
 * gRPC server does (status 16, UNAUTHENTICATED). The dev server itself checks neither.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { freePort } from '../../client/dev-server.js';

export interface Certificates {
  dir: string;
  /** The CA that signed the server's and the good client's certificates. */
  ca: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA, which the terminator must refuse. */
  strangerCert: string;
  strangerKey: string;
}

export interface Terminator {
  certificates: Certificates;
  /** Mutual TLS: a certificate of `ca` is required. */
  mtlsAddress: string;
  /** TLS plus `authorization: Bearer <apiKey>`. */
  apiKeyAddress: string;
  apiKey: string;
  stop(): Promise<void>;
}

const EXTENSIONS = `
[server]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[client]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
`;

export async function makeCertificates(): Promise<Certificates> {
  const dir = await mkdtemp(join(tmpdir(), 'dbt-deploy-tls-'));
  const at = (name: string) => join(dir, name);
  await writeFile(at('extensions.cnf'), EXTENSIONS);
  const openssl = (args: string[]) => execa('openssl', args, { cwd: dir });
  for (const ca of ['ca', 'stranger-ca']) {
    await openssl(
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${ca}`]
        .concat(['-keyout', `${ca}.key`, '-out', `${ca}.pem`])
        .concat([
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ]),
    );
  }
  const issue = async (name: string, ca: string, extensions: 'server' | 'client') => {
    await openssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    ]);
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        `${ca}.pem`,
        '-CAkey',
        `${ca}.key`,
        '-CAcreateserial',
      ].concat([
        '-days',
        '1',
        '-out',
        `${name}.pem`,
        '-extfile',
        'extensions.cnf',
        '-extensions',
        extensions,
      ]),
    );
  };
  await issue('server', 'ca', 'server');
  await issue('client', 'ca', 'client');
  await issue('stranger', 'stranger-ca', 'client');
  return {
    dir,
    ca: at('ca.pem'),
    clientCert: at('client.pem'),
    clientKey: at('client.key'),
    strangerCert: at('stranger.pem'),
    strangerKey: at('stranger.key'),
  };
}

export async function startTerminator(backend: string): Promise<Terminator> {
  const haproxy = await execa('haproxy', ['-v'], { reject: false });
  if (haproxy.exitCode !== 0) throw new Error('haproxy is not installed: run `bash scripts/setup --tls`');
  const certificates = await makeCertificates();
  const { dir } = certificates;
  const [mtlsPort, apiKeyPort] = [await freePort(), await freePort()];
  const apiKey = `test-key-${Date.now().toString(36)}`;
  // HAProxy reads the server's certificate and key from one file.
  const server = (await execa('cat', [join(dir, 'server.pem'), join(dir, 'server.key')])).stdout;
  await writeFile(join(dir, 'server-with-key.pem'), `${server}\n`);
  const config = `
global
  maxconn 256
defaults
  mode http
  timeout connect 5s
  # Workers long-poll for about a minute.
  timeout client 5m
  timeout server 5m
frontend mtls
  bind 127.0.0.1:${mtlsPort} ssl crt ${join(dir, 'server-with-key.pem')} ca-file ${certificates.ca} verify required alpn h2
  default_backend temporal
frontend api_key
  bind 127.0.0.1:${apiKeyPort} ssl crt ${join(dir, 'server-with-key.pem')} alpn h2
  http-request return status 200 hdr content-type application/grpc hdr grpc-status 16 hdr grpc-message "missing or wrong API key" unless { req.hdr(authorization) -m str "Bearer ${apiKey}" }
  default_backend temporal
backend temporal
  server dev ${backend} proto h2
`;
  await writeFile(join(dir, 'haproxy.cfg'), config);
  const process: ResultPromise = execa('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], {
    reject: false,
    all: true,
  });
  await Promise.all([waitForPort(mtlsPort, process), waitForPort(apiKeyPort, process)]);
  return {
    certificates,
    mtlsAddress: `127.0.0.1:${mtlsPort}`,
    apiKeyAddress: `127.0.0.1:${apiKeyPort}`,
    apiKey,
    async stop() {
      process.kill('SIGTERM');
      await process;
    },
  };
}

async function waitForPort(port: number, process: ResultPromise, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process.exitCode !== null) throw new Error(`haproxy exited: ${String((await process).all)}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`haproxy did not listen on ${port} within ${timeoutMs} ms`);
}
