/**
 * Gitea and Forgejo webhook deliveries. The signature is the hex HMAC-SHA256
 * of the body with the hook's secret, without a prefix, in `X-Gitea-Signature`
 * (Forgejo sends it as `X-Forgejo-Signature` and, for compatibility, under the
 * Gitea name too). Issue events arrive as `issues` (opened, edited, closed,
 * label and assignee changes: the detailed type is `X-Gitea-Event-Type`) and
 * `issue_comment`; comments on pull requests and every other event are
 * ignored.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { TrackerError, type WebhookDelivery, type WebhookReceiver } from '../types.ts';

interface IssuePayload {
  number?: unknown;
  is_pull?: unknown;
  issue?: { number?: unknown; pull_request?: unknown };
}

/** A header by its Forgejo name first (when the kind is forgejo), then its Gitea name. */
function header(headers: Headers, kind: 'gitea' | 'forgejo', suffix: string): string | null {
  return (kind === 'forgejo' ? headers.get(`x-forgejo-${suffix}`) : null) ?? headers.get(`x-gitea-${suffix}`);
}

export function createGiteaWebhooks(secret: string, kind: 'gitea' | 'forgejo' = 'gitea'): WebhookReceiver {
  return {
    async verify(headers: Headers, rawBody: string): Promise<boolean> {
      const signature = header(headers, kind, 'signature')?.trim().toLowerCase();
      if (!secret || !signature || !/^[0-9a-f]{64}$/.test(signature)) return false;
      const expected = createHmac('sha256', secret).update(rawBody).digest();
      return timingSafeEqual(Buffer.from(signature, 'hex'), expected);
    },

    parse(headers: Headers, rawBody: string): WebhookDelivery | null {
      const event = header(headers, kind, 'event') ?? '';
      const deliveryId = header(headers, kind, 'delivery');
      let payload: unknown;
      try {
        payload = JSON.parse(rawBody);
      } catch {
        throw new TrackerError(
          `${kind} webhook: the body of delivery ${deliveryId ?? '(no id)'} is not JSON`,
          'invalid',
        );
      }
      if (payload === null || typeof payload !== 'object') {
        throw new TrackerError(
          `${kind} webhook: a '${event}' delivery whose body is not an object`,
          'invalid',
        );
      }
      if (event !== 'issues' && event !== 'issue_comment') return null;
      const p = payload as IssuePayload;
      if (p.is_pull === true || p.issue?.pull_request) return null;
      const n = p.issue?.number ?? p.number;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
        throw new TrackerError(`${kind} webhook: a '${event}' delivery without issue.number`, 'invalid');
      }
      return {
        deliveryId: deliveryId || createHash('sha256').update(rawBody).digest('hex'),
        taskIds: [String(n)],
      };
    },
  };
}
