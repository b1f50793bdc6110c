/**
 * Plane webhooks. Plane signs each delivery in `X-Plane-Signature` (hex
 * HMAC-SHA256 of the raw body with the webhook's secret key) and names it in
 * `X-Plane-Delivery`; `X-Plane-Event` and the body's `event` say what it is
 * about. Only `issue` (work item) events matter to orch: their `data.id` is
 * the work item, which orch re-reads (a deleted one reads as gone).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { TrackerError, type WebhookDelivery, type WebhookReceiver } from '../types.ts';

export function createPlaneWebhooks(secret: string): WebhookReceiver {
  if (!secret) throw new TrackerError('plane: no webhook secret configured', 'invalid');
  return {
    async verify(headers: Headers, rawBody: string): Promise<boolean> {
      const signature = headers.get('x-plane-signature');
      if (!signature) return false;
      const expected = createHmac('sha256', secret).update(rawBody, 'utf8').digest('hex');
      return equalHex(signature.trim().toLowerCase(), expected);
    },

    parse(headers: Headers, rawBody: string): WebhookDelivery | null {
      let body: unknown;
      try {
        body = JSON.parse(rawBody);
      } catch {
        throw new TrackerError('plane: webhook body is not JSON', 'invalid');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new TrackerError('plane: webhook body is not a JSON object', 'invalid');
      }
      const { event, data } = body as { event?: unknown; data?: { id?: unknown } };
      const name = typeof event === 'string' ? event : headers.get('x-plane-event');
      if (!name) throw new TrackerError('plane: webhook names no event', 'invalid');
      if (name !== 'issue') return null;
      if (typeof data?.id !== 'string' || data.id === '') {
        throw new TrackerError('plane: issue webhook has no data.id', 'invalid');
      }
      const deliveryId =
        headers.get('x-plane-delivery') || `sha256:${createHash('sha256').update(rawBody).digest('hex')}`;
      return { deliveryId, taskIds: [data.id] };
    },
  };
}

/** Constant-time comparison of two hex digests (different lengths are simply unequal). */
function equalHex(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
