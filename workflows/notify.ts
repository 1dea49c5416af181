/**
 * The workflow's side of the notification hook (deploy.yml `notify`): the worker sends it, from an
 * activity, and a hook that fails is logged and never changes how the operation ends.
 */
import { log, proxyActivities } from '@temporalio/workflow';
import type { NotifyActivities, NotifyRequest } from '../activities/notify.js';
import type { DeployInput, NotifyEvent } from './types.js';

/**
 * Operations started before the hook existed replay without it. Checked only when the input has a
 * `notify` key, so histories without a webhook carry no marker.
 */
export const NOTIFY_PATCH = 'notify-webhook';

const notifier = proxyActivities<NotifyActivities>({
  // Each try has its own 10 s bound on the worker; three tries cover a webhook's brief outage.
  startToCloseTimeout: '30 seconds',
  retry: {
    maximumAttempts: 3,
    initialInterval: '2 seconds',
    nonRetryableErrorTypes: ['WebhookRefused'],
  },
});

/** Tells the webhook, when deploy.yml asks for `event`; never throws. */
export async function notifyWebhook(
  input: DeployInput,
  event: NotifyEvent,
  details: Pick<NotifyRequest, 'workflowId' | 'result' | 'approval'>,
): Promise<void> {
  if (!input.notify || !input.notify.on.includes(event)) return;
  const request: NotifyRequest = {
    webhook: input.notify.webhook,
    event,
    project: input.project,
    env: input.env,
    deployId: input.deployId,
    ...details,
  };
  try {
    await notifier.notifyWebhook.executeWithOptions(
      { summary: `Notify the webhook: ${event.replace('_', ' ')}` },
      [request],
    );
  } catch (error) {
    // Best effort: the failed activity stays in history, and the worker's log says why.
    log.warn('the notification webhook was not told', {
      event,
      error: messageOf(error),
    });
  }
}

/** An activity's own message sits in the cause; the ActivityFailure around it only says "activity failed". */
function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error ? error.cause.message : error.message;
}
