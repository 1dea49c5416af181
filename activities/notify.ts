/**
 * The notification hook (deploy.yml `notify`): one POST to a webhook when an operation ends or waits at
 * the approval gate. The body is Slack-compatible (`text`, which Slack shows; the rest it ignores) and
 * carries the structured result for other receivers. Best effort: the workflow logs a hook that fails
 * and goes on, so a webhook never fails or rolls back a deploy.
 *
 * The URL may hold a token (a Slack incoming webhook does), so it is written as `{{ env_var('NAME') }}`
 * and resolved here, on the worker: history only ever holds the template, and no error names more of
 * the URL than its origin.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { DeployResult, NotifyEvent } from '../workflows/types.js';

export interface NotifyRequest {
  /** deploy.yml `notify.webhook`, as written. */
  webhook: string;
  event: NotifyEvent;
  project: string;
  env: string;
  deployId: string;
  workflowId: string;
  /** Set when the operation ended: the result object, as `--json` prints it. */
  result?: DeployResult;
  /** Set while the deploy waits at the approval gate. */
  approval?: { waitingSince: string; deadline: string; onTimeout: 'abort' | 'approve' };
}

/** What the webhook receives: the request without the URL, one line for people, and the gate's commands. */
export interface NotificationBody extends Omit<NotifyRequest, 'webhook' | 'approval'> {
  /** One line for people; Slack shows it as the message. */
  text: string;
  approval?: NotifyRequest['approval'] & { approve: string; abort: string };
}

const ENV_VAR = /\{\{\s*env_var\(\s*(['"])([A-Za-z_][A-Za-z0-9_]*)\1\s*(?:,\s*(['"])(.*?)\3\s*)?\)\s*\}\}/g;
const TIMEOUT_MS = 10_000;

/** The URL with each `{{ env_var('NAME') }}` (or `{{ env_var('NAME', 'default') }}`) filled in from `env`. */
export function resolveWebhook(template: string, env: NodeJS.ProcessEnv = process.env): URL {
  const missing: string[] = [];
  const text = template.replace(ENV_VAR, (_match, _q, name: string, _q2, fallback: string | undefined) => {
    const value = env[name] || fallback;
    if (value === undefined) missing.push(name);
    return value ?? '';
  });
  if (missing.length > 0)
    throw new WebhookError(
      `the webhook URL needs ${missing.join(', ')}, which this worker's environment does not set`,
    );
  if (/\{\{|\}\}/.test(text))
    throw new WebhookError(
      "the webhook URL may only use {{ env_var('NAME') }} or {{ env_var('NAME', 'default') }}",
    );
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new WebhookError('the webhook is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new WebhookError(`the webhook must be http or https, not ${url.protocol.replace(/:$/, '')}`);
  return url;
}

/** For preflight: the template is well formed, with placeholders for the variables only the worker has. */
export function checkWebhookTemplate(template: string): string | undefined {
  try {
    resolveWebhook(template.replace(ENV_VAR, 'placeholder'), {});
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

export class WebhookError extends Error {
  override readonly name = 'WebhookError';
}

const ICONS: Record<NotifyEvent, string> = {
  published: '✅',
  failed: '❌',
  rolled_back: '↩️',
  aborted: '🛑',
  awaiting_approval: '⏸️',
};

export function notificationBody(request: NotifyRequest): NotificationBody {
  const { event, project, env, deployId, workflowId, result, approval } = request;
  const head = `${ICONS[event]} ${project} → ${env}`;
  let text: string;
  if (approval) {
    text = `${head}: deploy ${deployId} passed its audit and waits for approval until ${approval.deadline} (then ${approval.onTimeout === 'approve' ? 'it publishes' : 'it is aborted'}): \`dbt-deploy approve --env ${env}\` or \`dbt-deploy abort --env ${env}\``;
  } else if (result) {
    const seconds = Math.round((Date.parse(result.finishedAt) - Date.parse(result.startedAt)) / 1000);
    const what = result.strategy === 'rollback' ? 'rollback' : `${result.strategy} deploy`;
    const published = result.status === 'published' ? `, ${result.published.length} relations published` : '';
    const decided = result.decision ? `, ${result.decision.kind} by ${result.decision.by}` : '';
    const reason = result.reason ? `: ${result.reason}` : '';
    text = `${head}: ${result.status.replace('_', ' ')} — ${what} ${deployId} (${seconds} s${published}${decided})${reason}`;
  } else {
    text = `${head}: ${event.replace('_', ' ')} — ${deployId}`;
  }
  return {
    text,
    event,
    project,
    env,
    deployId,
    workflowId,
    ...(result ? { result } : {}),
    ...(approval
      ? {
          approval: {
            ...approval,
            approve: `dbt-deploy approve --env ${env}`,
            abort: `dbt-deploy abort --env ${env}`,
          },
        }
      : {}),
  };
}

export function notifyActivities() {
  return {
    /** POSTs the notification; a refusal (4xx) is not retried, a 5xx or no answer is, by the workflow's retry policy. */
    async notifyWebhook(request: NotifyRequest): Promise<{ status: number }> {
      let url: URL;
      try {
        url = resolveWebhook(request.webhook);
      } catch (error) {
        throw ApplicationFailure.nonRetryable((error as Error).message, 'WebhookRefused');
      }
      const body = notificationBody(request);
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'User-Agent': 'dbt-temporal-deploy' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(TIMEOUT_MS),
          redirect: 'error',
        });
        await response.arrayBuffer().catch(() => undefined);
      } catch (error) {
        // Only the origin: the path and query may hold the hook's token.
        throw ApplicationFailure.retryable(
          `the webhook at ${url.origin} did not answer: ${causeOf(error)}`,
          'WebhookUnavailable',
        );
      }
      if (response.ok) {
        Context.current().log.info('webhook notified', { event: request.event, status: response.status });
        return { status: response.status };
      }
      const message =
        `the webhook at ${url.origin} answered ${response.status} ${response.statusText}`.trim();
      if (response.status >= 500 || response.status === 408 || response.status === 429)
        throw ApplicationFailure.retryable(message, 'WebhookUnavailable');
      throw ApplicationFailure.nonRetryable(message, 'WebhookRefused');
    },
  };
}

export type NotifyActivities = ReturnType<typeof notifyActivities>;

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (error instanceof Error && error.name === 'TimeoutError')
    return `no answer within ${TIMEOUT_MS / 1000} s`;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}
