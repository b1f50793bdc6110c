/**
 * Jira Cloud webhooks. Admin webhooks are unsigned unless a secret is set on
 * them; orch requires one. With a secret, Jira signs each delivery in
 * `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.
 * `X-Atlassian-Webhook-Identifier` names the delivery (the same on Jira's
 * retries). `jira:issue_created` and `jira:issue_updated` events name the
 * issue by `issue.key`, which orch re-reads.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { TrackerError, type WebhookDelivery, type WebhookReceiver } from '../types.ts';

const EVENTS = new Set(['jira:issue_created', 'jira:issue_updated']);

export function createJiraWebhooks(secret: string): WebhookReceiver {
  if (!secret)
    throw new TrackerError(
      'jira: no webhook secret configured (Jira signs deliveries only with one)',
      'invalid',
    );
  return {
    async verify(headers: Headers, rawBody: string): Promise<boolean> {
      const header = headers.get('x-hub-signature');
      const m = header ? /^sha256=([0-9a-fA-F]+)$/.exec(header.trim()) : null;
      if (!m) return false;
      const expected = createHmac('sha256', secret).update(rawBody, 'utf8').digest('hex');
      const a = Buffer.from(m[1]!.toLowerCase(), 'utf8');
      const b = Buffer.from(expected, 'utf8');
      return a.length === b.length && timingSafeEqual(a, b);
    },

    parse(headers: Headers, rawBody: string): WebhookDelivery | null {
      let body: unknown;
      try {
        body = JSON.parse(rawBody);
      } catch {
        throw new TrackerError('jira: webhook body is not JSON', 'invalid');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new TrackerError('jira: webhook body is not a JSON object', 'invalid');
      }
      const { webhookEvent, issue } = body as { webhookEvent?: unknown; issue?: { key?: unknown } };
      if (typeof webhookEvent !== 'string')
        throw new TrackerError('jira: webhook body has no webhookEvent', 'invalid');
      if (!EVENTS.has(webhookEvent)) return null;
      if (typeof issue?.key !== 'string' || issue.key === '') {
        throw new TrackerError(`jira: ${webhookEvent} webhook has no issue.key`, 'invalid');
      }
      const deliveryId =
        headers.get('x-atlassian-webhook-identifier') ||
        `sha256:${createHash('sha256').update(rawBody).digest('hex')}`;
      return { deliveryId, taskIds: [issue.key] };
    },
  };
}
