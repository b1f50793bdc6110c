/**
 * Slack through the Web API: one message per task, posted once
 * (`chat.postMessage`) and then updated in place (`chat.update`) with the
 * task's tracker message on every routed event; when the task escalates, a
 * second message with the reason and the terminal packet. The flow is the
 * chat channels' (chat-channel.ts); this file holds Slack's calls.
 *
 * Texts go out with `mrkdwn: false` and `&`, `<`, `>` escaped, so a title
 * shows as written and can never form a mention or a link.
 *
 * Slack answers most errors with HTTP 200 and `{ok: false, error}`; a rate
 * limit is HTTP 429 with `Retry-After` (seconds), which holds the channel.
 * At least once, as for Telegram: the message's `{channel, ts}` is saved right
 * after Slack answers the post, so a retry updates it rather than posting again.
 */
import { DeliveryError, postJson, type Channel } from './channel.ts';
import { createChatChannel } from './chat-channel.ts';
import { truncate } from './chat-text.ts';
import type { Locale } from './tracker.ts';

/**
 * The text length this channel keeps to. Slack cuts a message at 40,000
 * characters but advises under 4,000; a tracker message is far shorter, so
 * only the escalation's terminal packet is ever cut.
 */
export const SLACK_TEXT_LIMIT = 4000;

export interface SlackChannelOptions {
  id: string;
  token: string;
  /** A channel id (`C0123…`) or name (`#builds`). */
  channel: string;
  /** The Web API's root, `https://slack.com/api` unless a test says otherwise. */
  apiUrl: string;
  events: ReadonlySet<string>;
}

/** What the channel keeps per task: the message it updates, and the escalation it last announced. */
export interface SlackRef {
  /** The channel's id, as `chat.postMessage` answered it (`chat.update` needs the id, not a name). */
  channel: string;
  ts: string;
  /** The configured channel the message was posted to: another one in orch.yaml means a new message. */
  target: string;
  escalation?: string;
}

interface SlackAnswer {
  ok: boolean;
  error?: string;
  channel?: string;
  ts?: string;
}

// Worth another try: Slack's own trouble. Any other error is the request's or the setup's.
const TRANSIENT = new Set([
  'ratelimited',
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
]);
// The message cannot be updated any more (deleted, or past the workspace's edit window): post anew.
const MESSAGE_GONE = new Set(['message_not_found', 'cant_update_message', 'edit_window_closed']);

/** Escapes the three characters Slack reads as control sequences. */
export const slackEscape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * `text` escaped and cut to `limit` as Slack counts it. Escaping lengthens
 * the text by how many `&<>` it holds, so the longest cut of the raw text
 * whose escaped form fits is searched for (the escaped length only grows with
 * the cut).
 */
export function slackText(text: string, limit: number, locale: Locale): string {
  const fit = (room: number) => slackEscape(truncate(text, room, locale));
  if (fit(limit).length <= limit) return fit(limit);
  let [lo, hi] = [0, limit]; // fit(lo) fits (at worst the marker alone), fit(hi) does not
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fit(mid).length <= limit) lo = mid;
    else hi = mid;
  }
  return fit(lo);
}

export function createSlackChannel(opts: SlackChannelOptions): Channel {
  const call = webApi(opts);
  const post = async (body: Record<string, unknown>): Promise<SlackAnswer> => {
    const answer = await call('chat.postMessage', { ...body, mrkdwn: false, unfurl_links: false });
    if (!answer.ok) throw refused(opts.id, 'chat.postMessage', answer);
    return answer;
  };
  return createChatChannel<SlackRef>({
    id: opts.id,
    kind: 'slack',
    events: opts.events,
    limit: SLACK_TEXT_LIMIT,
    fit: (text, locale) => slackText(text, SLACK_TEXT_LIMIT, locale),
    async send(text) {
      const answer = await post({ channel: opts.channel, text, unfurl_media: false });
      return { channel: answer.channel ?? opts.channel, ts: String(answer.ts), target: opts.channel };
    },
    isCurrent: (ref) => ref.target === opts.channel,
    async edit(ref, text) {
      const answer = await call('chat.update', { channel: ref.channel, ts: ref.ts, text, mrkdwn: false });
      if (answer.ok) return 'edited';
      if (MESSAGE_GONE.has(answer.error ?? '')) return { gone: answer.error! };
      throw refused(opts.id, 'chat.update', answer);
    },
    async sendEscalation(ref, text) {
      await post({ channel: ref.channel, text });
    },
  });
}

/**
 * Calls a Web API method with the bot token. Answers `{ok: true}` and the
 * errors the caller decides about; throws a retryable DeliveryError for what
 * is worth another try (no answer, 429 with `Retry-After`, 5xx, Slack's
 * transient errors).
 */
function webApi(opts: SlackChannelOptions) {
  const base = opts.apiUrl.replace(/\/+$/, '');
  return async (method: string, body: Record<string, unknown>): Promise<SlackAnswer> => {
    const service = `slack ${opts.id}: ${method}`;
    const res = await postJson(`${base}/${method}`, body, {
      headers: { authorization: `Bearer ${opts.token}` },
      service,
    });
    const answer = res.json as SlackAnswer | null;
    if (answer?.ok) return answer;
    const error = answer?.error ?? `HTTP ${res.status}`;
    if (TRANSIENT.has(error)) {
      const header = Number(res.headers.get('retry-after'));
      throw new DeliveryError(`${service}: ${error}`, {
        retryAfterMs: res.headers.has('retry-after') && Number.isFinite(header) ? header * 1000 : null,
      });
    }
    return { ...answer, ok: false, error };
  };
}

/** An error another try would not change (a refused token, a channel the bot is not in): given up. */
function refused(id: string, method: string, answer: SlackAnswer): DeliveryError {
  const hint: Record<string, string> = {
    invalid_auth: ' (the bot token was refused)',
    not_authed: ' (no bot token was sent)',
    channel_not_found: ' (check `channel` in orch.yaml)',
    not_in_channel: ' (invite the bot to the channel)',
  };
  const error = answer.error ?? 'unknown error';
  return new DeliveryError(`slack ${id}: ${method} failed: ${error}${hint[error] ?? ''}`, {
    permanent: true,
  });
}
