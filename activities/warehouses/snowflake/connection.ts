/**
 * The session with Snowflake: driver options from the dbt profile target, one `execute()` that tags,
 * logs and retries, and nothing else. Credentials go to the driver only: logs carry the statement, the
 * query tag and the attempt, never an option.
 */
import { randomUUID } from 'node:crypto';
import snowflake from 'snowflake-sdk';
import type { SnowflakeConnection } from '../../profiles.js';
import type { StatementCounter } from '../shared/statement-log.js';

type Row = Record<string, unknown>;

/** What every statement of one session is tagged with, so an admin finds it in QUERY_HISTORY. */
export interface SessionTag {
  deployId: string;
  step: string;
}

/** The profile's own tag first (dbt-snowflake's `query_tag`), then the deploy and step. */
export function queryTag(target: SnowflakeConnection, tag: SessionTag | undefined): string {
  const ours = tag ? `dbt-deploy deploy=${tag.deployId} step=${tag.step}` : 'dbt-deploy';
  return target.queryTag ? `${target.queryTag} ${ours}` : ours;
}

/** The driver's options for a profile target (docs: developer-guide/node-js/nodejs-driver-options). */
export function driverOptions(target: SnowflakeConnection, tag?: SessionTag): snowflake.ConnectionOptions {
  const auth: snowflake.ConnectionOptions = (() => {
    switch (target.auth.kind) {
      case 'password':
        return { password: target.auth.password };
      case 'key-pair':
        return {
          authenticator: 'SNOWFLAKE_JWT',
          ...(target.auth.privateKey !== undefined ? { privateKey: target.auth.privateKey } : {}),
          ...(target.auth.privateKeyPath !== undefined ? { privateKeyPath: target.auth.privateKeyPath } : {}),
          ...(target.auth.passphrase !== undefined ? { privateKeyPass: target.auth.passphrase } : {}),
        };
      case 'oauth':
        return { authenticator: 'OAUTH', token: target.auth.token };
    }
  })();
  return {
    account: target.account,
    username: target.user,
    ...auth,
    role: target.role,
    warehouse: target.warehouse,
    database: target.database,
    schema: target.schema,
    application: 'dbt-temporal-deploy',
    queryTag: queryTag(target, tag),
    ...(target.accessUrl !== undefined ? { accessUrl: target.accessUrl } : {}),
  };
}

/** Errors worth another attempt: the network, an expired session token, a warehouse still resuming. */
export function isTransient(error: unknown): boolean {
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  const message = error instanceof Error ? error.message : String(error);
  // 390114: session token expired; 401001/401002: the driver's network and request failures.
  if (['390114', '390112', '401001', '401002', '000625'].includes(code)) return true;
  return /ECONNRESET|ETIMEDOUT|ECONNREFUSED|EAI_AGAIN|socket hang up|network error|token has expired|is resuming|currently resuming/i.test(
    message,
  );
}

const ATTEMPTS = 4;

export class SnowflakeSession {
  private constructor(
    private connection: snowflake.Connection,
    private readonly target: SnowflakeConnection,
    private readonly tag: SessionTag | undefined,
    private readonly statements: StatementCounter,
  ) {}

  static async open(
    target: SnowflakeConnection,
    statements: StatementCounter,
    tag?: SessionTag,
  ): Promise<SnowflakeSession> {
    quietDriver();
    return new SnowflakeSession(await connect(target, tag), target, tag, statements);
  }

  /**
   * Runs one statement. A retry resubmits the same request id: Snowflake then answers with the first
   * attempt's result when that attempt ran, instead of running the statement again (docs:
   * developer-guide/node-js/nodejs-driver-execute, "resubmitting requests"), so a DDL statement that
   * committed before the reply was lost is never run twice.
   */
  async execute(sql: string): Promise<Row[]> {
    const requestId = randomUUID();
    for (let attempt = 1; ; attempt += 1) {
      this.statements.record(sql, attempt === 1 ? undefined : `retry ${attempt}`);
      try {
        const rows = await run(this.connection, sql, requestId);
        return rows.map((row) =>
          Object.fromEntries(Object.entries(row).map(([k, v]) => [k.toLowerCase(), v])),
        );
      } catch (error) {
        if (attempt >= ATTEMPTS || !isTransient(error)) throw error;
        this.statements.event(
          `transient error, retrying: ${error instanceof Error ? error.message : String(error)}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
        if (!this.connection.isUp()) this.connection = await connect(this.target, this.tag);
      }
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.connection.destroy(() => resolve()));
  }
}

let quieted = false;
/**
 * The driver logs to `snowflake.log` in the working directory by default, which litters a dbt project
 * or a checkout; every error it would log reaches the step's failure, and the worker has its own log.
 */
function quietDriver(): void {
  if (quieted) return;
  const drop = (): void => undefined;
  snowflake.configure({
    logLevel: 'ERROR',
    customLogger: { error: drop, warn: drop, info: drop, debug: drop, trace: drop },
  });
  quieted = true;
}

async function connect(
  target: SnowflakeConnection,
  tag: SessionTag | undefined,
): Promise<snowflake.Connection> {
  const connection = snowflake.createConnection(driverOptions(target, tag));
  await new Promise<void>((resolve, reject) =>
    connection.connect((error) => (error ? reject(redacted(error, target)) : resolve())),
  );
  return connection;
}

function run(connection: snowflake.Connection, sqlText: string, requestId: string): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    connection.execute({
      sqlText,
      requestId,
      complete: (error, _statement, rows) => (error ? reject(error) : resolve((rows ?? []) as Row[])),
    });
  });
}

/** A login error must not carry a secret into a failure message (failures go to Temporal history). */
function redacted(error: Error, target: SnowflakeConnection): Error {
  const secrets = Object.entries(target.auth)
    .filter(([key]) => key !== 'kind')
    .map(([, value]) => value)
    .filter((v): v is string => typeof v === 'string' && v.length > 3);
  let message = error.message;
  for (const secret of secrets) message = message.split(secret).join('***');
  const clean = new Error(
    `cannot connect to Snowflake account ${target.account} as ${target.user}: ${message}`,
  );
  clean.name = 'SnowflakeConnectError';
  return clean;
}
