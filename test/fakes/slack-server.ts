/**
 * A fake Slack Web API on loopback: `POST /api/<method>` with a bearer token
 * and a JSON (or form) body, answered as Slack does — HTTP 200 with
 * `{ok: true, …}` or `{ok: false, error}` (`not_authed`, `invalid_auth`,
 * `channel_not_found`, `not_in_channel`, `message_not_found`, `no_text`),
 * and HTTP 429 with `Retry-After` and `{ok: false, error: "ratelimited"}` on
 * the test's demand. Channels are known by id and by `#name`; messages live
 * in memory. Every call is logged with the time it arrived.
 */
import type { Context } from 'hono';
import { startFakeService } from './trackers/kit.ts';

export interface SlackMessage {
  channel: string;
  ts: string;
  text: string;
  mrkdwn: boolean;
  edited?: string;
  /** Every text the message had, first to last. */
  history: string[];
}

export interface SlackCall {
  method: string;
  at: number;
  body: Record<string, unknown>;
  authorization: string | undefined;
  status: number;
  error?: string;
}

export interface FakeSlack {
  /** The Web API root to configure as `api_url`. */
  url: string;
  calls: SlackCall[];
  /** Messages of a channel (id), oldest first. */
  messages(channelId: string): SlackMessage[];
  /** Answers the next `times` calls (of `method`, if given) with 429 and `Retry-After: retryAfterS`. */
  rateLimit(opts: { retryAfterS: number; times?: number; method?: string }): void;
  /** Answers the next call (of `method`, if given) with HTTP 200 and `{ok: false, error}`. */
  failNext(opts: { error: string; method?: string }): void;
  deleteMessage(channelId: string, ts: string): void;
  callsOf(method: string): SlackCall[];
  close(): Promise<void>;
}

export interface FakeSlackOptions {
  token: string;
  /** Channels by id, with their name and whether the bot is a member. */
  channels: { id: string; name: string; member?: boolean }[];
}

export async function startFakeSlack(opts: FakeSlackOptions): Promise<FakeSlack> {
  const messages = new Map<string, Map<string, SlackMessage>>(opts.channels.map((c) => [c.id, new Map()]));
  const calls: SlackCall[] = [];
  const limits: { retryAfterS: number; times: number; method?: string }[] = [];
  const failures: { error: string; method?: string }[] = [];
  let seq = 0;
  const nextTs = () => `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`;

  const channelOf = (value: unknown) => {
    const v = String(value ?? '');
    return opts.channels.find((c) => c.id === v || `#${c.name}` === v || c.name === v) ?? null;
  };
  const answer = (c: Context, call: SlackCall, body: Record<string, unknown>, status = 200) => {
    call.status = status;
    if (typeof body['error'] === 'string') call.error = body['error'];
    return c.json(body, status as 200);
  };
  const error = (c: Context, call: SlackCall, code: string) => answer(c, call, { ok: false, error: code });

  const readBody = async (c: Context): Promise<Record<string, unknown>> => {
    const type = c.req.header('content-type') ?? '';
    try {
      if (type.startsWith('application/json')) return (await c.req.json()) as Record<string, unknown>;
      return Object.fromEntries(new URLSearchParams(await c.req.text()));
    } catch {
      return {};
    }
  };

  const service = await startFakeService(
    // Slack answers a bad token with HTTP 200 and `invalid_auth`: the route checks it.
    { token: opts.token, authorized: () => true },
    (app) => {
      app.post('/api/:method', async (c) => {
        const method = c.req.param('method');
        const body = await readBody(c);
        const authorization = c.req.header('authorization');
        const call: SlackCall = { method, at: Date.now(), body, authorization, status: 0 };
        calls.push(call);
        const limit = limits.findIndex((l) => !l.method || l.method === method);
        if (limit >= 0) {
          const l = limits[limit]!;
          if (--l.times <= 0) limits.splice(limit, 1);
          c.header('retry-after', String(l.retryAfterS));
          return answer(c, call, { ok: false, error: 'ratelimited' }, 429);
        }
        const failure = failures.findIndex((f) => !f.method || f.method === method);
        if (failure >= 0) return error(c, call, failures.splice(failure, 1)[0]!.error);
        if (!authorization) return error(c, call, 'not_authed');
        if (authorization !== `Bearer ${opts.token}`) return error(c, call, 'invalid_auth');
        const channel = channelOf(body['channel']);
        const text = typeof body['text'] === 'string' ? body['text'] : '';
        switch (method) {
          case 'auth.test':
            return answer(c, call, { ok: true, user_id: 'U0BOT', team_id: 'T0TEAM', bot_id: 'B0ORCH' });
          case 'chat.postMessage': {
            if (!channel) return error(c, call, 'channel_not_found');
            if (channel.member === false) return error(c, call, 'not_in_channel');
            if (!text) return error(c, call, 'no_text');
            const m: SlackMessage = {
              channel: channel.id,
              ts: nextTs(),
              text,
              mrkdwn: body['mrkdwn'] !== false && body['mrkdwn'] !== 'false',
              history: [text],
            };
            messages.get(channel.id)!.set(m.ts, m);
            return answer(c, call, {
              ok: true,
              channel: channel.id,
              ts: m.ts,
              message: { type: 'message', bot_id: 'B0ORCH', text, ts: m.ts },
            });
          }
          case 'chat.update': {
            // chat.update takes the channel's id only.
            if (!channel || channel.id !== body['channel']) return error(c, call, 'channel_not_found');
            const m = messages.get(channel.id)!.get(String(body['ts']));
            if (!m) return error(c, call, 'message_not_found');
            if (!text) return error(c, call, 'no_text');
            m.text = text;
            m.edited = nextTs();
            m.history.push(text);
            return answer(c, call, {
              ok: true,
              channel: channel.id,
              ts: m.ts,
              text,
              message: { type: 'message', bot_id: 'B0ORCH', text, edited: { ts: m.edited } },
            });
          }
          default:
            return error(c, call, 'unknown_method');
        }
      });
    },
  );

  return {
    url: `${service.url}/api`,
    calls,
    messages: (channelId) => [...(messages.get(channelId)?.values() ?? [])],
    rateLimit: ({ retryAfterS, times = 1, method }) =>
      limits.push({ retryAfterS, times, ...(method ? { method } : {}) }),
    failNext: (f) => void failures.push({ ...f }),
    deleteMessage: (channelId, ts) => void messages.get(channelId)?.delete(ts),
    callsOf: (method) => calls.filter((c) => c.method === method),
    close: () => service.close(),
  };
}
