/**
 * GitHub webhook deliveries: the `X-Hub-Signature-256` HMAC checked with
 * Octokit's webhook methods, then the delivery reduced to the issues it is
 * about. Only issue events matter to orch: `issues` (opened, edited, closed,
 * labeled, assigned, …) and `issue_comment` on an issue. Comments on pull
 * requests, `ping`, `label` (a repository label created, renamed or deleted:
 * it names no issue; the poller catches its effect) and every other event are
 * ignored.
 */
import { createHash } from 'node:crypto';
import { verify } from '@octokit/webhooks-methods';
import { TrackerError, type WebhookDelivery, type WebhookReceiver } from '../types.ts';

interface IssuePayload {
  issue?: { number?: unknown; pull_request?: unknown };
}

/** The JSON payload, whether the hook posts `application/json` or a form with a `payload` field. */
function payloadOf(headers: Headers, rawBody: string): unknown {
  const form = (headers.get('content-type') ?? '').startsWith('application/x-www-form-urlencoded');
  const json = form ? (new URLSearchParams(rawBody).get('payload') ?? '') : rawBody;
  try {
    return JSON.parse(json);
  } catch {
    throw new TrackerError(
      `github webhook: the body of delivery ${headers.get('x-github-delivery') ?? '(no id)'} is not JSON`,
      'invalid',
    );
  }
}

/** The issue number of an issue event's payload; `invalid` when it has none. */
function issueNumberOf(event: string, payload: IssuePayload): number {
  const n = payload.issue?.number;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
    throw new TrackerError(`github webhook: a '${event}' delivery without issue.number`, 'invalid');
  }
  return n;
}

export function createGitHubWebhooks(secret: string): WebhookReceiver {
  return {
    async verify(headers: Headers, rawBody: string): Promise<boolean> {
      const signature = headers.get('x-hub-signature-256');
      if (!secret || !signature || !rawBody) return false;
      try {
        return await verify(secret, rawBody, signature);
      } catch {
        return false;
      }
    },

    parse(headers: Headers, rawBody: string): WebhookDelivery | null {
      const event = headers.get('x-github-event') ?? '';
      const payload = payloadOf(headers, rawBody);
      if (payload === null || typeof payload !== 'object') {
        throw new TrackerError(
          `github webhook: a '${event}' delivery whose body is not an object`,
          'invalid',
        );
      }
      if (event !== 'issues' && event !== 'issue_comment') return null;
      const p = payload as IssuePayload;
      // A pull request's comments arrive as issue_comment on its issue.
      if (p.issue?.pull_request) return null;
      const n = issueNumberOf(event, p);
      const deliveryId =
        headers.get('x-github-delivery') || createHash('sha256').update(rawBody).digest('hex');
      return { deliveryId, taskIds: [String(n)] };
    },
  };
}
