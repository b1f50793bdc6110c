/**
 * Webhook deliveries as GitHub, Gitea and Forgejo send them: the headers
 * (event, delivery id, signature) and the exact body the signature covers.
 * The HMAC is computed here with node:crypto, independently of the adapters'
 * verification, so a test of `verify` checks one against the other.
 *
 * - GitHub: `X-GitHub-Event`, `X-GitHub-Delivery`, `X-Hub-Signature-256: sha256=<hex>`.
 * - Gitea: `X-Gitea-Event`, `X-Gitea-Event-Type`, `X-Gitea-Delivery`, `X-Gitea-Signature: <hex>`
 *   (plus the Gogs and GitHub-compatible copies Gitea also sends).
 * - Forgejo: the same under `X-Forgejo-*`, and the Gitea names too.
 * - GitLab: `X-Gitlab-Event` (`Issue Hook`, `Note Hook`, …), `X-Gitlab-Event-UUID`, and the
 *   hook's secret token as is in `X-Gitlab-Token` (GitLab does not sign).
 */
import { createHmac, randomUUID } from 'node:crypto';

export interface WebhookDeliveryInput {
  kind: 'github' | 'gitea' | 'forgejo' | 'gitlab';
  /** The hook's secret; null sends no signature. */
  secret: string | null;
  /** `issues`, `issue_comment`, `ping`, … */
  event: string;
  /** An object (sent as JSON) or the raw body text (e.g. a malformed one). */
  payload: unknown;
  /** A fixed delivery id (to send a duplicate); a new UUID otherwise. */
  deliveryId?: string;
  /** Gitea's detailed type (`issue_label`, …); the event unless told. */
  eventType?: string;
  /** Signs with this secret instead of `secret` (a wrong signature). */
  signWith?: string;
}

export interface WebhookRequest {
  headers: Record<string, string>;
  body: string;
  deliveryId: string;
}

const hmacHex = (secret: string, body: string) => createHmac('sha256', secret).update(body).digest('hex');

/** The headers and body of a delivery, without sending it. */
export function webhookRequest(d: WebhookDeliveryInput): WebhookRequest {
  const body = typeof d.payload === 'string' ? d.payload : JSON.stringify(d.payload);
  const deliveryId = d.deliveryId ?? randomUUID();
  const key = d.signWith ?? d.secret;
  const signature = key === null ? null : hmacHex(key, body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (d.kind === 'gitlab') {
    headers['x-gitlab-event'] = d.event;
    headers['x-gitlab-event-uuid'] = deliveryId;
    headers['x-gitlab-instance'] = 'https://gitlab.example.com';
    if (key !== null) headers['x-gitlab-token'] = key;
    return { headers, body, deliveryId };
  }
  if (d.kind === 'github') {
    headers['x-github-event'] = d.event;
    headers['x-github-delivery'] = deliveryId;
    headers['x-github-hook-id'] = '1';
    if (signature) headers['x-hub-signature-256'] = `sha256=${signature}`;
    return { headers, body, deliveryId };
  }
  const eventType = d.eventType ?? d.event;
  const prefixes = d.kind === 'forgejo' ? ['forgejo', 'gitea', 'gogs'] : ['gitea', 'gogs'];
  for (const p of prefixes) {
    headers[`x-${p}-event`] = d.event;
    headers[`x-${p}-event-type`] = eventType;
    headers[`x-${p}-delivery`] = deliveryId;
    if (signature) headers[`x-${p}-signature`] = signature;
  }
  headers['x-github-event'] = d.event;
  headers['x-github-delivery'] = deliveryId;
  if (signature) headers['x-hub-signature-256'] = `sha256=${signature}`;
  return { headers, body, deliveryId };
}

/** Signs and POSTs a delivery to `url`; the receiver's answer. */
export async function sendWebhook(
  url: string,
  d: WebhookDeliveryInput,
): Promise<{ status: number; body: string; deliveryId: string }> {
  const req = webhookRequest(d);
  const res = await fetch(url, {
    method: 'POST',
    headers: req.headers,
    body: req.body,
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: await res.text(), deliveryId: req.deliveryId };
}
