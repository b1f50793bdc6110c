/**
 * Linear webhooks. A delivery is signed in `Linear-Signature` (hex
 * HMAC-SHA256 of the raw body with the webhook's signing secret); the SDK's
 * verifier checks it in constant time and also refuses a body whose
 * `webhookTimestamp` is more than a minute from now, Linear's replay guard.
 * `Linear-Delivery` is the delivery id. Only `Issue` events matter to orch:
 * their `data.id` is the issue id, which orch re-reads.
 */
import { createHash } from 'node:crypto';
import { LinearWebhookClient } from '@linear/sdk/webhooks';
import { TrackerError, type WebhookDelivery, type WebhookReceiver } from '../types.ts';

export function createLinearWebhooks(secret: string): WebhookReceiver {
  if (!secret) throw new TrackerError('linear: no webhook signing secret configured', 'invalid');
  const verifier = new LinearWebhookClient(secret);
  return {
    async verify(headers: Headers, rawBody: string): Promise<boolean> {
      const signature = headers.get('linear-signature');
      if (!signature) return false;
      try {
        return verifier.verify(Buffer.from(rawBody, 'utf8'), signature);
      } catch {
        // A wrong signature, or a missing, malformed or stale webhookTimestamp.
        return false;
      }
    },

    parse(headers: Headers, rawBody: string): WebhookDelivery | null {
      let body: unknown;
      try {
        body = JSON.parse(rawBody);
      } catch {
        throw new TrackerError('linear: webhook body is not JSON', 'invalid');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new TrackerError('linear: webhook body is not a JSON object', 'invalid');
      }
      const { type, data } = body as { type?: unknown; data?: { id?: unknown } };
      if (typeof type !== 'string') throw new TrackerError('linear: webhook body has no "type"', 'invalid');
      if (type !== 'Issue') return null;
      if (typeof data?.id !== 'string' || data.id === '') {
        throw new TrackerError('linear: Issue webhook has no data.id', 'invalid');
      }
      const deliveryId =
        headers.get('linear-delivery') || `sha256:${createHash('sha256').update(rawBody).digest('hex')}`;
      return { deliveryId, taskIds: [data.id] };
    },
  };
}
