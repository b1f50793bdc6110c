/**
 * Telegram through the Bot API: one message per task, sent once
 * (`sendMessage`) and then edited in place (`editMessageText`) with the
 * task's tracker message on every routed event; when the task escalates, a
 * second message with the reason and the terminal packet, as a reply to it.
 * The flow is the chat channels' (chat-channel.ts); this file holds Telegram's calls.
 *
 * Texts go out as plain text (no `parse_mode`): a title may hold any
 * character, and plain text needs no escaping; Telegram still links URLs.
 *
 * The bot token is part of every URL (`/bot<token>/<method>`), so no error
 * this channel raises names the URL, and the token is scrubbed from whatever
 * text a failure carries.
 *
 * At least once: the outbox retries a delivery that did not complete. The
 * message's id is saved right after `sendMessage` answers, so a retry edits
 * that message; only a crash between Telegram's answer and that save (or a
 * lost answer) can leave a second message behind. Nothing can do better: the
 * Bot API has no idempotency key.
 */
import { DeliveryError, type Channel } from './channel.ts';
import { createChatChannel } from './chat-channel.ts';
import { truncate } from './chat-text.ts';

/** Telegram's limit on a message's text, in UTF-16 code units. */
export const TELEGRAM_TEXT_LIMIT = 4096;

export interface TelegramChannelOptions {
  id: string;
  token: string;
  /** A numeric chat id (groups are negative) or `@channelusername`. */
  chatId: string | number;
  /** The Bot API's root, `https://api.telegram.org` unless a test or a local Bot API server says otherwise. */
  apiUrl: string;
  events: ReadonlySet<string>;
}

/** What the channel keeps per task: the message it edits, and the escalation it last announced. */
export interface TelegramRef {
  chat_id: string | number;
  message_id: number;
  escalation?: string;
}

/** The Bot API's answer: `{ok: true, result}` or `{ok: false, error_code, description, parameters}`. */
interface BotAnswer {
  ok: boolean;
  result?: unknown;
  error_code?: number;
  description?: string;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

type Succeeded = BotAnswer & { ok: true };
type Failed = BotAnswer & { ok: false; error_code: number; description: string };

// Editing with the same text (a retry, or a delivery that changed nothing the message shows).
const NOT_MODIFIED = /message is not modified/i;
// The message was deleted, or is too old or otherwise out of the bot's reach: a new one is sent.
const MESSAGE_GONE = /message to edit not found|message can't be edited|message_id_invalid/i;

export function createTelegramChannel(opts: TelegramChannelOptions): Channel {
  const call = botApi(opts);
  const plain = { link_preview_options: { is_disabled: true } };
  const send = async (params: Record<string, unknown>): Promise<Succeeded> => {
    const answer = await call('sendMessage', { ...params, ...plain });
    if (!answer.ok) throw refused(opts.id, 'sendMessage', answer);
    return answer;
  };
  return createChatChannel<TelegramRef>({
    id: opts.id,
    kind: 'telegram',
    events: opts.events,
    limit: TELEGRAM_TEXT_LIMIT,
    fit: (text, locale) => truncate(text, TELEGRAM_TEXT_LIMIT, locale),
    async send(text) {
      const answer = await send({ chat_id: opts.chatId, text });
      return { chat_id: opts.chatId, message_id: (answer.result as { message_id: number }).message_id };
    },
    isCurrent: (ref) => String(ref.chat_id) === String(opts.chatId),
    async edit(ref, text) {
      const answer = await call('editMessageText', {
        chat_id: ref.chat_id,
        message_id: ref.message_id,
        text,
        ...plain,
      });
      if (answer.ok || NOT_MODIFIED.test(answer.description)) return 'edited';
      if (MESSAGE_GONE.test(answer.description)) return { gone: answer.description };
      throw refused(opts.id, 'editMessageText', answer);
    },
    async sendEscalation(ref, text) {
      await send({
        chat_id: ref.chat_id,
        text,
        reply_parameters: { message_id: ref.message_id, allow_sending_without_reply: true },
      });
    },
  });
}

/**
 * Calls a Bot API method. Answers `{ok: true}` and the client errors the
 * caller decides about; throws a retryable DeliveryError for what is worth
 * another try (no answer, 429 with Telegram's `retry_after`, 5xx).
 */
function botApi(opts: TelegramChannelOptions) {
  const base = `${opts.apiUrl.replace(/\/+$/, '')}/bot${opts.token}`;
  const scrub = (text: string): string => (opts.token ? text.split(opts.token).join('<token>') : text);
  const where = (method: string) => `telegram ${opts.id}: ${method}`;

  return async (method: string, params: Record<string, unknown>): Promise<Succeeded | Failed> => {
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${base}/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify(params),
        signal: AbortSignal.timeout(15_000),
      });
      text = await res.text();
    } catch (error) {
      // No `cause`: fetch's errors may carry the URL, and with it the token.
      throw new DeliveryError(`${where(method)}: ${scrub(describe(error))}`);
    }
    const answer = parseAnswer(text);
    if (answer?.ok) return { ...answer, ok: true };
    const code = answer?.error_code ?? res.status;
    const description = scrub(answer?.description ?? `HTTP ${res.status} ${text.slice(0, 200)}`.trim());
    if (code === 429) {
      const header = Number(res.headers.get('retry-after'));
      const seconds = answer?.parameters?.retry_after ?? (Number.isFinite(header) ? header : null);
      throw new DeliveryError(`${where(method)}: rate limited (${description})`, {
        retryAfterMs: seconds === null ? null : seconds * 1000,
      });
    }
    if (code >= 500 || res.status >= 500 || code === 408)
      throw new DeliveryError(`${where(method)}: answered ${code}: ${description}`);
    return { ...answer, ok: false, error_code: code, description };
  };
}

/** A client error that another try would not change: the outbox gives the delivery up. */
function refused(id: string, method: string, answer: Failed): DeliveryError {
  let why = answer.description;
  if (answer.error_code === 401 || answer.error_code === 404) why += ' (the bot token was refused)';
  const migrated = answer.parameters?.migrate_to_chat_id;
  if (migrated !== undefined) why += ` (the group is now a supergroup: set chat_id to ${migrated})`;
  return new DeliveryError(`telegram ${id}: ${method} answered ${answer.error_code}: ${why}`, {
    permanent: true,
  });
}

function parseAnswer(text: string): BotAnswer | null {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && 'ok' in v ? (v as BotAnswer) : null;
  } catch {
    return null;
  }
}

/** A fetch failure in words: `fetch failed` says little, its cause says what (refused, reset, timed out). */
function describe(error: unknown): string {
  const e = error as Error & { cause?: unknown };
  const cause = e?.cause instanceof Error ? `: ${e.cause.message}` : '';
  return `${e?.message ?? String(error)}${cause}`;
}
