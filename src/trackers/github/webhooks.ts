/**
 * GitHub webhook deliveries: the `X-Hub-Signature-256` HMAC checked, then
 * the delivery reduced to what orch acts on. Issue events (`issues`:
 * opened, edited, closed, labeled, assigned, …; `issue_comment` on an issue)
 * name the issue to read again; review events (`pull_request_review`,
 * `pull_request_review_comment`, `pull_request_review_thread`) name the pull
 * request whose reviews to read again. Comments on a pull request's
 * conversation, `ping`, `label` (a repository label changed: it names no
 * issue; the poller catches its effect) and every other event are ignored.
 */
import { z } from 'zod';
import { TrackerError, type WebhookDelivery, type WebhookReceiver } from '../types.ts';
import { bodyDigest, parseBody, verifyHmacSha256 } from '../webhook-kit.ts';

const number = z.number().int().positive();

const IssueEvent = z.object({
  issue: z.object({ number, pull_request: z.unknown().optional() }),
});

const ReviewEvent = z.object({
  action: z.string(),
  pull_request: z.object({ number, head: z.object({ ref: z.string() }) }),
});

const REVIEW_EVENTS = new Set([
  'pull_request_review',
  'pull_request_review_comment',
  'pull_request_review_thread',
]);

/** The JSON text of the payload, whether the hook posts `application/json` or a form with a `payload` field. */
function payloadText(headers: Headers, rawBody: string): string {
  const form = (headers.get('content-type') ?? '').startsWith('application/x-www-form-urlencoded');
  return form ? (new URLSearchParams(rawBody).get('payload') ?? '') : rawBody;
}

export function createGitHubWebhooks(secret: string): WebhookReceiver {
  if (!secret) throw new TrackerError('github: no webhook secret configured', 'invalid');
  return {
    async verify(headers: Headers, rawBody: string): Promise<boolean> {
      return verifyHmacSha256(secret, rawBody, headers.get('x-hub-signature-256'), 'sha256=');
    },

    parse(headers: Headers, rawBody: string): WebhookDelivery | null {
      const event = headers.get('x-github-event') ?? '';
      const deliveryId = headers.get('x-github-delivery') || bodyDigest(rawBody);
      const json = payloadText(headers, rawBody);
      const service = `github '${event}'`;
      if (event === 'issues' || event === 'issue_comment') {
        const { issue } = parseBody(service, IssueEvent, json);
        // A pull request's conversation comments arrive as issue_comment on its issue.
        if (issue.pull_request !== undefined) return null;
        return { deliveryId, taskIds: [String(issue.number)], reviews: [] };
      }
      if (REVIEW_EVENTS.has(event)) {
        const { action, pull_request: pr } = parseBody(service, ReviewEvent, json);
        return { deliveryId, taskIds: [], reviews: [{ pullRequest: pr.number, head: pr.head.ref, action }] };
      }
      // Other events are not read, but a body that is not JSON is still refused.
      parseBody(service, z.object({}).loose(), json);
      return null;
    },
  };
}
