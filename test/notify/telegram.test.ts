/**
 * The Telegram channel against a fake Bot API on loopback: first the channel
 * on its own (edit in place, "not modified", a deleted message, errors, the
 * token kept out of every error), then the real `orch run` delivering through
 * the outbox (one message per task edited as it moves, an escalation message,
 * a 429 with retry_after respected).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTelegramChannel,
  TELEGRAM_TEXT_LIMIT,
  type TelegramRef,
} from '../../src/notify/telegram-channel.ts';
import { DeliveryError } from '../../src/notify/channel.ts';
import { makeProject, type TempProject } from '../helpers/kit.ts';
import { disposeAfterEach } from '../helpers/dispose.ts';
import { startFakeTelegram, type FakeTelegram } from '../fakes/telegram-server.ts';
import {
  addChatTasks,
  addTask,
  ALL_EVENTS,
  chatScript,
  delivery,
  escalatedTask,
  expectAllSent,
  expectChatShowsRun,
  expectHeldAfter429,
  MemoryTools,
  runUntilIdle,
  stageIcons,
  taskRow,
  thrown,
  trackerMessage,
} from './chat-kit.ts';

// A token in Telegram's shape: the bot's id, a colon, 35 characters.
const TOKEN = '7000001:AAHtestTOKENtestTOKENtestTOKEN12345';
const CHAT = -1001234;

let fake: FakeTelegram;
beforeAll(async () => {
  fake = await startFakeTelegram({ token: TOKEN, chats: [CHAT, -1009999] });
});
afterAll(() => fake.close());

const channel = (
  o: { token?: string; chatId?: number; apiUrl?: string; events?: ReadonlySet<string> } = {},
) =>
  createTelegramChannel({
    id: 'sample/team',
    token: o.token ?? TOKEN,
    chatId: o.chatId ?? CHAT,
    apiUrl: o.apiUrl ?? fake.url,
    events: o.events ?? ALL_EVENTS,
  });

const messageOf = (ref: TelegramRef) =>
  fake.messages(ref.chat_id).find((m) => m.message_id === ref.message_id)!;

describe('the Telegram channel', () => {
  it('sends the message once, saves {chat_id, message_id}, then edits it in place', async () => {
    const tools = new MemoryTools();
    const ch = channel();
    expect(ch).toMatchObject({ kind: 'telegram', coalesce: true });
    const sendsBefore = fake.callsOf('sendMessage').length;

    tools.text = 'T-1 — first';
    await ch.deliver(delivery('task_created', taskRow()), tools);
    const ref = tools.ref as TelegramRef;
    expect(ref).toEqual({ chat_id: CHAT, message_id: expect.any(Number) });
    tools.text = 'T-1 — second';
    await ch.deliver(delivery('stage_changed', taskRow()), tools);
    tools.text = 'T-1 — third <b>&amp;</b>';
    await ch.deliver(delivery('run_finished', taskRow()), tools);

    expect(fake.callsOf('sendMessage').length - sendsBefore).toBe(1);
    expect(tools.ref).toEqual(ref);
    // Plain text: no parse mode, so markup-like characters show as written.
    expect(messageOf(ref).history).toEqual(['T-1 — first', 'T-1 — second', 'T-1 — third <b>&amp;</b>']);
    const send = fake.callsOf('sendMessage').at(-1)!;
    expect(send.body).not.toHaveProperty('parse_mode');
    expect(send.body).toMatchObject({ link_preview_options: { is_disabled: true } });
  });

  it('takes "message is not modified" as success', async () => {
    const tools = new MemoryTools();
    const ch = channel();
    await ch.deliver(delivery('task_created', taskRow()), tools);
    await ch.deliver(delivery('run_started', taskRow()), tools);
    const last = fake.callsOf('editMessageText').at(-1)!;
    expect(last).toMatchObject({
      status: 400,
      description: expect.stringMatching(/message is not modified/),
    });
    expect(messageOf(tools.ref as TelegramRef).history).toHaveLength(1);
  });

  it('sends a new message when the old one was deleted, and edits the new one from then on', async () => {
    const tools = new MemoryTools();
    const ch = channel();
    tools.text = 'T-1 — before';
    await ch.deliver(delivery('task_created', taskRow()), tools);
    const old = tools.ref as TelegramRef;
    fake.deleteMessage(CHAT, old.message_id);

    tools.text = 'T-1 — after';
    await ch.deliver(delivery('stage_changed', taskRow()), tools);
    const fresh = tools.ref as TelegramRef;
    expect(fresh.message_id).not.toBe(old.message_id);
    expect(messageOf(fresh).text).toBe('T-1 — after');
    expect(tools.lines.join('\n')).toMatch(/message to edit not found/);

    tools.text = 'T-1 — later';
    await ch.deliver(delivery('stage_changed', taskRow()), tools);
    expect(tools.ref).toEqual(fresh);
    expect(messageOf(fresh).history).toEqual(['T-1 — after', 'T-1 — later']);
  });

  it('sends a new message when chat_id changed in orch.yaml', async () => {
    const tools = new MemoryTools();
    await channel().deliver(delivery('task_created', taskRow()), tools);
    await channel({ chatId: -1009999 }).deliver(delivery('stage_changed', taskRow()), tools);
    expect(tools.ref).toMatchObject({ chat_id: -1009999 });
    expect(fake.messages(-1009999).map((m) => m.message_id)).toContain((tools.ref as TelegramRef).message_id);
  });

  it('announces an escalation once, as a reply with the reason and the terminal packet', async () => {
    const tools = new MemoryTools();
    const ch = channel();
    await ch.deliver(delivery('run_finished', taskRow()), tools);
    const tracker = (tools.ref as TelegramRef).message_id;

    // The coalesced case: a delivery other than `escalated` finds the task escalated.
    await ch.deliver(delivery('run_finished', escalatedTask()), tools);
    await ch.deliver(delivery('escalated', escalatedTask()), tools);
    const replies = fake.messages(CHAT).filter((m) => m.reply_to === tracker);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.text).toBe(
      [
        '⚠️ T-1 — Add <parser> & "printer"',
        'escalated: oscillation_detected',
        'attempt 3 returned to the diff of attempt 1',
        'https://tracker.example/T-1',
        '',
        '- **Reason:** `oscillation_detected`\n\n## To continue\n\norch task retry T-1',
      ].join('\n'),
    );
    expect(tools.ref).toMatchObject({
      message_id: tracker,
      escalation: expect.stringContaining('oscillation'),
    });

    // Retried and escalated again: a new escalation, announced again (in Russian for a Russian project).
    tools.locale = 'ru';
    await ch.deliver(delivery('escalated', escalatedTask('2026-06-14T11:00:00.000Z')), tools);
    const again = fake.messages(CHAT).filter((m) => m.reply_to === tracker);
    expect(again).toHaveLength(2);
    expect(again[1]!.text).toContain('эскалация: oscillation_detected');
  });

  it('does not announce escalations to a channel not routed `escalated`', async () => {
    const tools = new MemoryTools();
    const ch = channel({ events: new Set(['stage_changed', 'run_finished']) });
    await ch.deliver(delivery('run_finished', escalatedTask()), tools);
    const tracker = (tools.ref as TelegramRef).message_id;
    expect(fake.messages(CHAT).filter((m) => m.reply_to === tracker)).toEqual([]);
  });

  it('cuts an escalation message to 4096 characters with a marker', async () => {
    const tools = new MemoryTools();
    tools.packet = `# Terminal packet: T-1\n\n${'🔁 a long feedback line\n'.repeat(400)}`;
    await channel().deliver(delivery('escalated', escalatedTask()), tools);
    const reply = fake.messages(CHAT).at(-1)!;
    expect(reply.text.length).toBeLessThanOrEqual(TELEGRAM_TEXT_LIMIT);
    expect(reply.text.endsWith('… [truncated]')).toBe(true);
    expect(reply.text.isWellFormed()).toBe(true);
  });

  it('a 429 is retryable after retry_after seconds', async () => {
    const tools = new MemoryTools();
    fake.rateLimit({ retryAfterS: 7, method: 'sendMessage' });
    const err = await thrown(channel().deliver(delivery('task_created', taskRow()), tools));
    expect(err).toBeInstanceOf(DeliveryError);
    expect(err).toMatchObject({ retryAfterMs: 7000, permanent: false });
    expect(tools.ref).toBeNull();
  });

  it('gives up on a chat that does not exist, a refused token, and says so without the token', async () => {
    const tools = new MemoryTools();
    const noChat = await thrown(channel({ chatId: -42 }).deliver(delivery('task_created', taskRow()), tools));
    expect(noChat).toMatchObject({ permanent: true });
    expect(noChat.message).toMatch(/sendMessage answered 400: Bad Request: chat not found/);

    const badToken = '7000001:AAHwrongWRONGwrongWRONGwrongWRONG123';
    const refused = await thrown(
      channel({ token: badToken }).deliver(delivery('task_created', taskRow()), tools),
    );
    expect(refused).toMatchObject({ permanent: true });
    expect(refused.message).toMatch(/answered 401: Unauthorized \(the bot token was refused\)/);
    expect(`${refused.message} ${String(refused.cause ?? '')}`).not.toContain(badToken);
  });

  it('retries when the Bot API cannot be reached, without naming the URL that holds the token', async () => {
    const closed = await startFakeTelegram({ token: TOKEN, chats: [CHAT] });
    await closed.close();
    const err = await thrown(
      channel({ apiUrl: closed.url }).deliver(delivery('task_created', taskRow()), new MemoryTools()),
    );
    expect(err).toMatchObject({ permanent: false, retryAfterMs: null });
    expect(err.message).toMatch(/^telegram sample\/team: sendMessage: fetch failed/);
    expect(`${err.message} ${String(err.cause ?? '')} ${err.stack}`).not.toContain(TOKEN);
  });
});

// ------------------------------------------------------------------ orch run

describe('orch run delivers to Telegram', () => {
  const CHAT_E2E = -1000001;
  const own = disposeAfterEach();

  /** A fake of its own per run, so its calls and messages are this run's only, and a project sending to it. */
  const botAndProject = async () => {
    const bot = own(await startFakeTelegram({ token: TOKEN, chats: [CHAT_E2E] }));
    const project = own(
      makeProject({
        config: {
          notify: {
            channels: {
              team: {
                kind: 'telegram',
                chat_id: CHAT_E2E,
                api_url: bot.url,
                events: ['all'],
                // Above the run's deliveries: Telegram's default of 20 a minute would hold the last
                // ones for the rest of a real minute, which is not what these tests look at.
                rate_per_minute: 600,
              },
            },
          },
        },
        script: chatScript,
      }),
    );
    return { bot, project };
  };
  const run = (project: TempProject) =>
    runUntilIdle(project, { ORCH_TELEGRAM_BOT_TOKEN: TOKEN }, TOKEN, 120_000);
  const trackerOf = (bot: FakeTelegram, key: string) => trackerMessage(bot.messages(CHAT_E2E), key);

  it('keeps one message per task, edited as the task moves; an escalated task gets its escalation message', async () => {
    const { bot, project } = await botAndProject();
    const tasks = addChatTasks(project);
    await run(project);

    // One sendMessage per task for its tracker message, one for the escalation; the rest are edits.
    const sent = bot.callsOf('sendMessage').filter((c) => c.status === 200);
    expect(sent.map((c) => String(c.body['text']).split(' ')[0]).sort()).toEqual(
      [tasks.done, tasks.stuck, '⚠️'].sort(),
    );
    expect(bot.callsOf('editMessageText').filter((c) => c.status === 200).length).toBeGreaterThanOrEqual(2);

    const { stuckMsg, escalation } = expectChatShowsRun(project, bot.messages(CHAT_E2E), tasks, 'en');
    expect(escalation.reply_to).toBe(stuckMsg.message_id);
    expect(escalation.text).toContain('## What a human must decide');
    // Any locale on demand.
    const ru = project.orch(['task', 'show', tasks.stuck, '--tracker', '--locale', 'ru']);
    expect(ru.code, ru.stderr).toBe(0);
    expect(ru.stdout).toContain('✅ Разработка');
    expect(ru.stdout).toContain('❌ Ревью');
    const bad = project.orch(['task', 'show', tasks.done, '--tracker', '--locale', 'de']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--locale must be en or ru, got de');

    await expectAllSent(project);
  }, 180_000);

  it('respects a 429 with retry_after: nothing reaches the Bot API before it, and nothing is lost', async () => {
    const { bot, project } = await botAndProject();
    const key = addTask(project, 'paced printer');
    bot.rateLimit({ retryAfterS: 3, method: 'editMessageText' });
    await run(project);

    expectHeldAfter429(bot.calls, 3000);

    expect(bot.callsOf('sendMessage')).toHaveLength(1);
    expect(stageIcons(trackerOf(bot, key).text)).toEqual(Array(8).fill('✅'));
    const items = await expectAllSent(project);
    // The rate-limited delivery was tried again, not given up or skipped.
    expect(items.some((i) => i.attempts >= 1 && /rate limited/.test(i.last_error ?? ''))).toBe(true);
  }, 180_000);
});
