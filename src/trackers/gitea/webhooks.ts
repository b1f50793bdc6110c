/**
 * Gitea and Forgejo webhook deliveries. The signature is the hex HMAC-SHA256
 * of the body with the hook's secret, without a prefix, in `X-Gitea-Signature`
 * (Forgejo sends it as `X-Forgejo-Signature` and, for compatibility, under the
 * Gitea name too). Issue events arrive as `issues` (opened, edited, closed,
 * label and assignee changes: the detailed type is `X-Gitea-Event-Type`) and
 * `issue_comment`; reviews as `pull_request_approved`, `pull_request_rejected`
 * (changes requested) and `pull_request_comment` (a review comment), each
 * naming the pull request. Comments on a pull request's conversation and
 * every other event are ignored.
 */
import { z } from 'zod';
import { TrackerError, type WebhookDelivery, type WebhookReceiver } from '../types.ts';
import { bodyDigest, parseBody, verifyHmacSha256 } from '../webhook-kit.ts';

const number = z.number().int().positive();

const IssueEvent = z.object({
  number: number.optional(),
  is_pull: z.boolean().optional(),
  issue: z.object({ number, pull_request: z.unknown().optional() }).optional(),
});

const ReviewEvent = z.object({
  action: z.string(),
  pull_request: z.object({ number, head: z.object({ ref: z.string() }) }),
});

const REVIEW_EVENTS = new Set(['pull_request_approved', 'pull_request_rejected', 'pull_request_comment']);

/** A header by its Forgejo name first (when the kind is forgejo), then its Gitea name. */
function header(headers: Headers, kind: 'gitea' | 'forgejo', suffix: string): string | null {
  return (kind === 'forgejo' ? headers.get(`x-forgejo-${suffix}`) : null) ?? headers.get(`x-gitea-${suffix}`);
}

export function createGiteaWebhooks(secret: string, kind: 'gitea' | 'forgejo' = 'gitea'): WebhookReceiver {
  return {
    async verify(headers: Headers, rawBody: string): Promise<boolean> {
      return verifyHmacSha256(secret, rawBody, header(headers, kind, 'signature'));
    },

    parse(headers: Headers, rawBody: string): WebhookDelivery | null {
      const event = header(headers, kind, 'event') ?? '';
      const deliveryId = header(headers, kind, 'delivery') || bodyDigest(rawBody);
      const service = `${kind} '${event}'`;
      if (event === 'issues' || event === 'issue_comment') {
        const p = parseBody(service, IssueEvent, rawBody);
        if (p.is_pull === true || p.issue?.pull_request) return null;
        const n = p.issue?.number ?? p.number;
        if (n === undefined) throw new TrackerError(`${service} webhook: issue.number is missing`, 'invalid');
        return { deliveryId, taskIds: [String(n)], reviews: [] };
      }
      if (REVIEW_EVENTS.has(event)) {
        const { pull_request: pr } = parseBody(service, ReviewEvent, rawBody);
        return {
          deliveryId,
          taskIds: [],
          reviews: [{ pullRequest: pr.number, head: pr.head.ref, action: event }],
        };
      }
      parseBody(service, z.object({}).loose(), rawBody);
      return null;
    },
  };
}
