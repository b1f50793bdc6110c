/**
 * The generic webhook channel: each routed event is POSTed as JSON, signed
 * with HMAC-SHA256 of the exact body bytes in `X-Orch-Signature: sha256=<hex>`
 * when a secret is configured. A receiver verifies with the same key and
 * drops repeats by `X-Orch-Delivery` (the outbox delivers at least once).
 */
import { createHmac } from 'node:crypto';
import { DeliveryError, postJson, type Channel, type Delivery, type DeliveryTools } from './channel.ts';

export interface WebhookChannelOptions {
  id: string;
  url: string;
  secret: string | null;
  events: ReadonlySet<string>;
}

export const signBody = (secret: string, body: string): string =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** The body a webhook receives for one event. */
export function webhookBody(d: Delivery, tools: Pick<DeliveryTools, 'taskUrl'>) {
  const { task, project, item, payload } = d;
  return {
    id: item.id,
    event: item.kind,
    event_id: item.event_id,
    created_at: item.created_at,
    project: project.name,
    task: {
      key: task.key,
      title: task.title,
      stage: task.stage,
      status: task.status,
      terminal_reason: task.terminal_reason,
      url: tools.taskUrl,
      external_key: task.external_key,
    },
    data: payload,
  };
}

export function createWebhookChannel(opts: WebhookChannelOptions): Channel {
  return {
    id: opts.id,
    kind: 'webhook',
    events: opts.events,
    coalesce: false,
    async deliver(d, tools) {
      const body = JSON.stringify(webhookBody(d, tools));
      const headers: Record<string, string> = {
        'user-agent': 'orch-webhook',
        'x-orch-event': d.item.kind,
        'x-orch-delivery': String(d.item.id),
      };
      if (opts.secret) headers['x-orch-signature'] = signBody(opts.secret, body);
      const res = await postJson(opts.url, null, { rawBody: body, headers, service: `webhook ${opts.id}` });
      if (res.status >= 300)
        throw new DeliveryError(`webhook ${opts.id}: ${opts.url} answered ${res.status}`, {
          permanent: true,
        });
    },
  };
}
