/**
 * The Slack channel against a fake Web API on loopback: first the channel on
 * its own (post then update, escaping, a deleted message, Slack's
 * `{ok: false, error}` answers, 429 with Retry-After), then the real
 * `orch run` of a Russian-locale project delivering through the outbox.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSlackChannel, SLACK_TEXT_LIMIT, type SlackRef } from '../../src/notify/slack-channel.ts';
import { DeliveryError } from '../../src/notify/channel.ts';
import { makeProject } from '../helpers/kit.ts';
import { disposeAfterEach } from '../helpers/dispose.ts';
import { startFakeSlack, type FakeSlack } from '../fakes/slack-server.ts';
import {
  addChatTasks,
  ALL_EVENTS,
  chatScript,
  delivery,
  escalatedTask,
  expectAllSent,
  expectChatShowsRun,
  expectHeldAfter429,
  MemoryTools,
  runUntilIdle,
  taskRow,
  thrown,
} from './chat-kit.ts';

const TOKEN = 'xoxb-1111-2222-fakeSlackBotToken';
const CHANNELS = [
  { id: 'C0BUILDS', name: 'builds' },
  { id: 'C0QUIET', name: 'quiet', member: false },
];

let fake: FakeSlack;
beforeAll(async () => {
  fake = await startFakeSlack({ token: TOKEN, channels: CHANNELS });
});
afterAll(() => fake.close());

const channel = (o: { token?: string; channel?: string; events?: ReadonlySet<string> } = {}) =>
  createSlackChannel({
    id: 'sample/team',
    token: o.token ?? TOKEN,
    channel: o.channel ?? '#builds',
    apiUrl: fake.url,
    events: o.events ?? ALL_EVENTS,
  });

const messageOf = (ref: SlackRef) => fake.messages(ref.channel).find((m) => m.ts === ref.ts)!;

describe('the Slack channel', () => {
  it('posts once with the bearer token, saves {channel, ts}, then updates the message in place', async () => {
    const tools = new MemoryTools();
    const ch = channel();
    expect(ch).toMatchObject({ kind: 'slack', coalesce: true });
    const postsBefore = fake.callsOf('chat.postMessage').length;

    tools.text = 'T-1 — Add <parser> & "printer"\n▫️ Analysis';
    await ch.deliver(delivery('task_created', taskRow()), tools);
    const ref = tools.ref as SlackRef;
    // The channel's id, as Slack answered it: chat.update takes no name.
    expect(ref).toEqual({
      channel: 'C0BUILDS',
      ts: expect.stringMatching(/^\d+\.\d{6}$/),
      target: '#builds',
    });
    tools.text = 'T-1 — Add <parser> & "printer"\n✅ Analysis';
    await ch.deliver(delivery('stage_changed', taskRow()), tools);

    expect(fake.callsOf('chat.postMessage').length - postsBefore).toBe(1);
    const post = fake.callsOf('chat.postMessage').at(-1)!;
    expect(post.authorization).toBe(`Bearer ${TOKEN}`);
    expect(post.body).toMatchObject({ channel: '#builds', mrkdwn: false });
    // Escaped, so a title can never become a link or a mention.
    expect(messageOf(ref).history).toEqual([
      'T-1 — Add &lt;parser&gt; &amp; "printer"\n▫️ Analysis',
      'T-1 — Add &lt;parser&gt; &amp; "printer"\n✅ Analysis',
    ]);
    expect(fake.callsOf('chat.update').at(-1)!.body).toMatchObject({ channel: 'C0BUILDS', ts: ref.ts });
  });

  it('posts anew when the message was deleted, and updates the new one from then on', async () => {
    const tools = new MemoryTools();
    const ch = channel();
    await ch.deliver(delivery('task_created', taskRow()), tools);
    const old = tools.ref as SlackRef;
    fake.deleteMessage(old.channel, old.ts);
    tools.text = 'T-1 — after';
    await ch.deliver(delivery('stage_changed', taskRow()), tools);
    const fresh = tools.ref as SlackRef;
    expect(fresh.ts).not.toBe(old.ts);
    expect(messageOf(fresh).text).toBe('T-1 — after');
    expect(tools.lines.join('\n')).toMatch(/message_not_found/);
  });

  it('announces an escalation once, with the reason and the terminal packet, escaped', async () => {
    const tools = new MemoryTools();
    const ch = channel();
    await ch.deliver(delivery('run_finished', escalatedTask()), tools);
    await ch.deliver(delivery('escalated', escalatedTask()), tools);
    const ref = tools.ref as SlackRef;
    const escalations = fake.messages('C0BUILDS').filter((m) => m.text.startsWith('⚠️ T-1'));
    const mine = escalations.filter((m) => m.ts > ref.ts);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.text).toContain(
      '⚠️ T-1 — Add &lt;parser&gt; &amp; "printer"\nescalated: oscillation_detected',
    );
    expect(mine[0]!.text).toContain('orch task retry T-1');
    expect(ref.escalation).toContain('oscillation_detected');
  });

  it(`cuts a long escalation message to ${SLACK_TEXT_LIMIT} characters with a marker`, async () => {
    const tools = new MemoryTools();
    tools.packet = `# Terminal packet: T-1\n\n${'a <long> feedback & line\n'.repeat(400)}`;
    await channel().deliver(delivery('escalated', escalatedTask()), tools);
    const last = fake.messages('C0BUILDS').at(-1)!;
    expect(last.text.length).toBeLessThanOrEqual(SLACK_TEXT_LIMIT);
    expect(last.text.endsWith('… [truncated]')).toBe(true);
  });

  it('a 429 is retryable after Retry-After seconds; a transient error is retryable', async () => {
    fake.rateLimit({ retryAfterS: 9, method: 'chat.postMessage' });
    const limited = await thrown(channel().deliver(delivery('task_created', taskRow()), new MemoryTools()));
    expect(limited).toBeInstanceOf(DeliveryError);
    expect(limited).toMatchObject({ retryAfterMs: 9000, permanent: false });

    fake.failNext({ error: 'internal_error' });
    const transient = await thrown(channel().deliver(delivery('task_created', taskRow()), new MemoryTools()));
    expect(transient).toMatchObject({ retryAfterMs: null, permanent: false });
    expect(transient.message).toMatch(/internal_error/);
  });

  it.each([
    [
      'a refused token',
      { token: 'xoxb-9999-wrong-token' },
      /failed: invalid_auth \(the bot token was refused\)/,
    ],
    ['an unknown channel', { channel: '#nowhere' }, /failed: channel_not_found/],
    ['a channel the bot is not in', { channel: 'C0QUIET' }, /failed: not_in_channel \(invite the bot/],
  ])('gives up on %s', async (_name, o, message) => {
    const err = await thrown(channel(o).deliver(delivery('task_created', taskRow()), new MemoryTools()));
    expect(err).toMatchObject({ permanent: true });
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('xoxb-');
  });
});

// ------------------------------------------------------------------ orch run

describe('orch run delivers to Slack', () => {
  const own = disposeAfterEach();

  it('keeps one message per task updated in place, announces the escalation, and waits out a 429', async () => {
    const slack = own(await startFakeSlack({ token: TOKEN, channels: CHANNELS }));
    const project = own(
      makeProject({
        config: {
          locale: 'ru',
          notify: { channels: { team: { kind: 'slack', channel: '#builds', api_url: slack.url } } },
        },
        script: chatScript,
      }),
    );
    const tasks = addChatTasks(project);
    slack.rateLimit({ retryAfterS: 3, method: 'chat.update' });

    await runUntilIdle(project, { ORCH_SLACK_BOT_TOKEN: TOKEN }, TOKEN, 150_000);

    // The 429 held the channel for Retry-After: the next call came no sooner.
    expectHeldAfter429(slack.calls, 3000);

    const posts = slack.callsOf('chat.postMessage').filter((c) => c.status === 200);
    expect(posts).toHaveLength(3); // two tracker messages and one escalation
    expect(slack.callsOf('chat.update').filter((c) => c.status === 200).length).toBeGreaterThanOrEqual(2);

    // In the project's locale; plain text, never Slack's markup.
    const { doneMsg } = expectChatShowsRun(project, slack.messages('C0BUILDS'), tasks, 'ru');
    expect(doneMsg.mrkdwn).toBe(false);

    await expectAllSent(project);
  }, 180_000);
});
