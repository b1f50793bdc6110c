/**
 * Jira Cloud webhooks. Admin webhooks are unsigned unless a secret is set on
 * them; orch requires one. With a secret, Jira signs each delivery in
 * `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.
 * `X-Atlassian-Webhook-Identifier` names the delivery (the same on Jira's
 * retries). `jira:issue_created` and `jira:issue_updated` events name the
 * issue by `issue.key`, which orch re-reads (with its links).
 */
import { z } from 'zod';
import { TrackerError, type WebhookDelivery, type WebhookReceiver } from '../types.ts';
import { bodyDigest, parseBody, verifyHmacSha256 } from '../webhook-kit.ts';

const ISSUE_EVENTS = new Set(['jira:issue_created', 'jira:issue_updated']);

const Delivery = z.object({
  webhookEvent: z.string(),
  issue: z
    .object({ key: z.string().min(1) })
    .loose()
    .optional(),
});

export function createJiraWebhooks(secret: string): WebhookReceiver {
  if (!secret)
    throw new TrackerError(
      'jira: no webhook secret configured (Jira signs deliveries only with one)',
      'invalid',
    );
  return {
    async verify(headers: Headers, rawBody: string): Promise<boolean> {
      return verifyHmacSha256(secret, rawBody, headers.get('x-hub-signature'), 'sha256=');
    },

    parse(headers: Headers, rawBody: string): WebhookDelivery | null {
      const { webhookEvent, issue } = parseBody('jira', Delivery, rawBody);
      const deliveryId = headers.get('x-atlassian-webhook-identifier') || bodyDigest(rawBody);
      if (!ISSUE_EVENTS.has(webhookEvent)) return null;
      if (!issue)
        throw new TrackerError(`jira webhook: a ${webhookEvent} delivery without issue.key`, 'invalid');
      return { deliveryId, taskIds: [issue.key], reviews: [] };
    },
  };
}
