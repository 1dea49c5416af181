/**
 * Errors the CLI turns into one line and an exit code. Thrown before a workflow starts, so nothing
 * has been touched when a user sees one.
 */

/** Bad input: a flag, deploy.yml, the dbt project or profile, or a missing tool. Exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = 2;
}

/** No Temporal server answers; the message says how to start one. Exit code 2. */
export class TemporalUnavailable extends Error {
  override readonly name = 'TemporalUnavailable';
  readonly exitCode = 2;

  constructor(address: string, cause: unknown) {
    const detail = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    super(
      `no Temporal server answers at ${address} (${detail}): ` +
        'start one with `dbt-deploy dev`, or set TEMPORAL_ADDRESS to your cluster',
      { cause },
    );
  }
}

/** Another deploy of the same environment is running. Exit code 2. */
export class DeployInProgress extends Error {
  override readonly name = 'DeployInProgress';
  readonly exitCode = 2;
}

/** A running deploy refused a request (approving one that does not wait, aborting one that ends). Exit code 2. */
export class RequestRejected extends Error {
  override readonly name = 'RequestRejected';
  readonly exitCode = 2;
}
