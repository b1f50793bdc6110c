/**
 * Plane webhooks. Plane signs each delivery in `X-Plane-Signature` (hex
 * HMAC-SHA256 of the raw body with the webhook's secret key) and names it in
 * `X-Plane-Delivery`; `X-Plane-Event` and the body's `event` say what it is
 * about. Only `issue` (work item) events matter to orch: their `data.id` is
 * the work item, which orch re-reads (a deleted one reads as gone).
 */
import { z } from 'zod';
import { TrackerError, type WebhookDelivery, type WebhookReceiver } from '../types.ts';
import { bodyDigest, parseBody, verifyHmacSha256 } from '../webhook-kit.ts';

const Delivery = z.object({
  event: z.string().optional(),
  data: z
    .object({ id: z.string().min(1) })
    .loose()
    .optional(),
});

export function createPlaneWebhooks(secret: string): WebhookReceiver {
  if (!secret) throw new TrackerError('plane: no webhook secret configured', 'invalid');
  return {
    async verify(headers: Headers, rawBody: string): Promise<boolean> {
      return verifyHmacSha256(secret, rawBody, headers.get('x-plane-signature'));
    },

    parse(headers: Headers, rawBody: string): WebhookDelivery | null {
      const { event, data } = parseBody('plane', Delivery, rawBody);
      const name = event ?? headers.get('x-plane-event');
      if (!name) throw new TrackerError('plane webhook: the delivery names no event', 'invalid');
      if (name !== 'issue') return null;
      if (!data) throw new TrackerError('plane webhook: an issue delivery without data.id', 'invalid');
      const deliveryId = headers.get('x-plane-delivery') || bodyDigest(rawBody);
      return { deliveryId, taskIds: [data.id], reviews: [] };
    },
  };
}
