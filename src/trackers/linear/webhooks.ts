/**
 * Linear webhooks. A delivery is signed in `Linear-Signature` (hex
 * HMAC-SHA256 of the raw body with the webhook's signing secret), and a body
 * whose `webhookTimestamp` is more than a minute from now is refused, Linear's
 * replay guard. `Linear-Delivery` is the delivery id. Only `Issue` events
 * matter to orch: their `data.id` is the issue id, which orch re-reads.
 */
import { z } from 'zod';
import { TrackerError, type WebhookDelivery, type WebhookReceiver } from '../types.ts';
import { bodyDigest, parseBody, verifyHmacSha256 } from '../webhook-kit.ts';

/** How far a delivery's `webhookTimestamp` may be from orch's clock, as Linear advises. */
const REPLAY_WINDOW_MS = 60_000;

const Delivery = z.object({
  type: z.string(),
  data: z
    .object({ id: z.string().min(1) })
    .loose()
    .optional(),
});

const Stamped = z.object({ webhookTimestamp: z.number() });

export function createLinearWebhooks(secret: string, now: () => number = Date.now): WebhookReceiver {
  if (!secret) throw new TrackerError('linear: no webhook signing secret configured', 'invalid');
  return {
    async verify(headers: Headers, rawBody: string): Promise<boolean> {
      if (!verifyHmacSha256(secret, rawBody, headers.get('linear-signature'))) return false;
      try {
        const { webhookTimestamp } = Stamped.parse(JSON.parse(rawBody));
        return Math.abs(now() - webhookTimestamp) <= REPLAY_WINDOW_MS;
      } catch {
        // A missing or malformed webhookTimestamp: the delivery cannot prove it is fresh.
        return false;
      }
    },

    parse(headers: Headers, rawBody: string): WebhookDelivery | null {
      const { type, data } = parseBody('linear', Delivery, rawBody);
      if (type !== 'Issue') return null;
      if (!data) throw new TrackerError('linear webhook: an Issue delivery without data.id', 'invalid');
      const deliveryId = headers.get('linear-delivery') || bodyDigest(rawBody);
      return { deliveryId, taskIds: [data.id], reviews: [] };
    },
  };
}
