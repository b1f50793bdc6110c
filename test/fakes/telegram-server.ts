/**
 * A fake Telegram Bot API on loopback: `POST /bot<token>/<method>` with a JSON
 * body, answered in the Bot API's shapes (`{ok: true, result}`, or
 * `{ok: false, error_code, description, parameters}`). Messages live in
 * memory per chat. It serves what the Telegram channel uses (sendMessage,
 * editMessageText) plus deleteMessage and getMe, answers the Bot API's errors
 * for them (chat not found, message is not modified, message to edit not
 * found, 401 for a wrong token), and can answer 429 with `retry_after` on the
 * test's demand. Every call is logged with the time it arrived.
 */
import type { Context } from 'hono';
import { startFakeService } from './trackers/kit.ts';

export interface TelegramMessage {
  message_id: number;
  chat_id: number | string;
  text: string;
  date: number;
  edit_date?: number;
  /** The message this one replies to. */
  reply_to?: number;
  /** Every text the message had, first to last. */
  history: string[];
}

export interface TelegramCall {
  method: string;
  /** Date.now() when the request arrived. */
  at: number;
  body: Record<string, unknown>;
  /** The HTTP status answered. */
  status: number;
  /** The answer's description, for errors. */
  description?: string;
}

export interface FakeTelegram {
  /** The Bot API root to configure as `api_url`. */
  url: string;
  token: string;
  calls: TelegramCall[];
  /** Live (not deleted) messages of a chat, oldest first. */
  messages(chatId: number | string): TelegramMessage[];
  /** Answers the next `times` calls (of `method`, if given) with 429 and `retry_after` seconds. */
  rateLimit(opts: { retryAfterS: number; times?: number; method?: string }): void;
  /** Deletes a message as a chat member would. */
  deleteMessage(chatId: number | string, messageId: number): void;
  callsOf(method: string): TelegramCall[];
  close(): Promise<void>;
}

const BOT = { id: 7000001, is_bot: true, first_name: 'orch', username: 'orch_test_bot' };

export async function startFakeTelegram(opts: {
  token: string;
  chats: (number | string)[];
}): Promise<FakeTelegram> {
  const chats = new Map<string, Map<number, TelegramMessage>>(opts.chats.map((c) => [String(c), new Map()]));
  const calls: TelegramCall[] = [];
  const limits: { retryAfterS: number; times: number; method?: string }[] = [];
  let nextId = 100;

  const answer = (c: Context, call: TelegramCall, status: number, body: Record<string, unknown>) => {
    call.status = status;
    if (typeof body['description'] === 'string') call.description = body['description'];
    return c.json(body, status as 200);
  };
  const fail = (c: Context, call: TelegramCall, code: number, description: string, parameters?: object) =>
    answer(c, call, code, {
      ok: false,
      error_code: code,
      description,
      ...(parameters ? { parameters } : {}),
    });

  const now = () => Math.floor(Date.now() / 1000);
  const asMessage = (m: TelegramMessage) => ({
    message_id: m.message_id,
    from: BOT,
    chat: { id: m.chat_id, type: 'supergroup', title: 'builds' },
    date: m.date,
    ...(m.edit_date ? { edit_date: m.edit_date } : {}),
    text: m.text,
  });

  const service = await startFakeService(
    // The token is checked by the route, which answers like the Bot API (401 Unauthorized).
    { token: opts.token, authorized: () => true },
    (app) => {
      app.post('/:bot/:method', async (c) => {
        const method = c.req.param('method');
        let body: Record<string, unknown> = {};
        try {
          body = (await c.req.json()) as Record<string, unknown>;
        } catch {
          /* an empty or non-JSON body: the method's checks answer */
        }
        const call: TelegramCall = { method, at: Date.now(), body, status: 0 };
        calls.push(call);
        if (c.req.param('bot') !== `bot${opts.token}`) return fail(c, call, 401, 'Unauthorized');
        const limit = limits.findIndex((l) => !l.method || l.method === method);
        if (limit >= 0) {
          const l = limits[limit]!;
          if (--l.times <= 0) limits.splice(limit, 1);
          return fail(c, call, 429, `Too Many Requests: retry after ${l.retryAfterS}`, {
            retry_after: l.retryAfterS,
          });
        }
        const chat = chats.get(String(body['chat_id']));
        const text = typeof body['text'] === 'string' ? body['text'] : '';
        switch (method) {
          case 'getMe':
            return answer(c, call, 200, { ok: true, result: BOT });
          case 'sendMessage': {
            if (!chat) return fail(c, call, 400, 'Bad Request: chat not found');
            if (!text.trim()) return fail(c, call, 400, 'Bad Request: message text is empty');
            if (text.length > 4096) return fail(c, call, 400, 'Bad Request: message is too long');
            const reply = (body['reply_parameters'] as { message_id?: number } | undefined)?.message_id;
            const m: TelegramMessage = {
              message_id: nextId++,
              chat_id: body['chat_id'] as number | string,
              text,
              date: now(),
              history: [text],
              ...(reply ? { reply_to: reply } : {}),
            };
            chat.set(m.message_id, m);
            return answer(c, call, 200, { ok: true, result: asMessage(m) });
          }
          case 'editMessageText': {
            if (!chat) return fail(c, call, 400, 'Bad Request: chat not found');
            const m = chat.get(Number(body['message_id']));
            if (!m) return fail(c, call, 400, 'Bad Request: message to edit not found');
            if (!text.trim()) return fail(c, call, 400, 'Bad Request: message text is empty');
            if (text.length > 4096) return fail(c, call, 400, 'Bad Request: MESSAGE_TOO_LONG');
            if (text === m.text)
              return fail(
                c,
                call,
                400,
                'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
              );
            m.text = text;
            m.edit_date = now();
            m.history.push(text);
            return answer(c, call, 200, { ok: true, result: asMessage(m) });
          }
          case 'deleteMessage': {
            if (!chat) return fail(c, call, 400, 'Bad Request: chat not found');
            if (!chat.delete(Number(body['message_id'])))
              return fail(c, call, 400, 'Bad Request: message to delete not found');
            return answer(c, call, 200, { ok: true, result: true });
          }
          default:
            return fail(c, call, 404, 'Not Found');
        }
      });
    },
  );

  return {
    url: service.url,
    token: opts.token,
    calls,
    messages: (chatId) => [...(chats.get(String(chatId))?.values() ?? [])],
    rateLimit: ({ retryAfterS, times = 1, method }) =>
      limits.push({ retryAfterS, times, ...(method ? { method } : {}) }),
    deleteMessage: (chatId, messageId) => void chats.get(String(chatId))?.delete(messageId),
    callsOf: (method) => calls.filter((c) => c.method === method),
    close: () => service.close(),
  };
}
