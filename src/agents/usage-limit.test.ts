/**
 * Usage limits as the CLIs print them (the lines are the real CLIs' own, as
 * captured against fake APIs on loopback; test/agents/usage-limits.test.ts
 * runs the CLIs themselves).
 */
import { describe, expect, it } from 'vitest';
import { createClaudeCodeParser } from './claude-code/parse.ts';
import type { AgentEvent } from './events.ts';

/** The usage limit a Claude Code line reports, or null. */
const claudeUsageLimit = (line: string): AgentEvent | null =>
  createClaudeCodeParser()(line).find((e) => e.type === 'usage_limit') ?? null;
import { createCodexParser } from './codex/parse.ts';
import { createGeminiParser } from './gemini/parse.ts';
import { createOpenCodeParser } from './opencode/parse.ts';
import {
  isLimitMessage,
  resetFromClockText,
  resetFromDurationText,
  usageLimitFromMessage,
} from './usage-limit.ts';

const NOW = Date.UTC(2026, 11, 7, 20, 38, 30);

describe('Claude Code', () => {
  it('a rejected rate_limit_event is the limit, with its exact reset and window', () => {
    const line = JSON.stringify({
      type: 'rate_limit_event',
      rate_limit_info: {
        status: 'rejected',
        resetsAt: 1796679513,
        rateLimitType: 'five_hour',
        isUsingOverage: false,
      },
      session_id: 's',
    });
    expect(claudeUsageLimit(line)).toEqual({
      type: 'usage_limit',
      resetAt: 1796679513_000,
      window: 'five_hour',
      message: 'the five_hour limit was reached',
    });
    expect(createClaudeCodeParser()(line)).toContainEqual(expect.objectContaining({ type: 'usage_limit' }));
  });
  it('an allowed or warning rate_limit_event is not', () => {
    for (const status of ['allowed', 'allowed_warning'])
      expect(
        claudeUsageLimit(
          JSON.stringify({ type: 'rate_limit_event', rate_limit_info: { status, resetsAt: 1 } }),
        ),
      ).toBeNull();
  });
  it('a result that ended on a 429 is one; its reset, to the minute, ends with that minute', () => {
    const line = JSON.stringify({
      type: 'result',
      subtype: 'success',
      is_error: true,
      api_error_status: 429,
      result: 'You’ve hit your 5-hour limit · resets 9:38pm (UTC)',
    });
    // The end of the next 21:38 UTC after now.
    const reset = (claudeUsageLimit(line) as { resetAt: number }).resetAt;
    expect(new Date(reset).toISOString().slice(11, 19)).toBe('21:39:00');
    expect(reset - Date.now()).toBeGreaterThan(0);
    expect(reset - Date.now()).toBeLessThanOrEqual(24 * 3_600_000 + 60_000);
    const events = createClaudeCodeParser()(line);
    expect(events.map((e) => e.type)).toEqual(['usage_limit', 'result']);
    // With an API key: no reset named.
    const api = JSON.stringify({
      type: 'result',
      is_error: true,
      api_error_status: 429,
      result: 'API Error: Request rejected (429)',
    });
    expect(claudeUsageLimit(api)).toMatchObject({ resetAt: null });
  });
  it('a result of another API error is not a limit', () => {
    expect(
      claudeUsageLimit(JSON.stringify({ type: 'result', is_error: true, api_error_status: 500 })),
    ).toBeNull();
    expect(claudeUsageLimit('{"type":"rate_limit_event",')).toBeNull();
  });
});

describe('Codex', () => {
  const failed = (message: string) => JSON.stringify({ type: 'turn.failed', error: { message } });
  it('"try again at" a time today, or at a date, is the limit', () => {
    const events = createCodexParser()(
      failed(
        'You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 9:38 PM.',
      ),
    );
    expect(events.map((e) => e.type)).toEqual(['usage_limit', 'result']);
    const limit = events[0] as { resetAt: number };
    // The machine's local time: the end of the named minute, today or tomorrow, after now.
    expect(limit.resetAt).toBeGreaterThan(Date.now());
    expect(new Date(limit.resetAt - 60_000).getMinutes()).toBe(38);
    expect(new Date(limit.resetAt - 60_000).getHours()).toBe(21);
    const dated = usageLimitFromMessage(
      'You’ve hit your usage limit. …or try again at Dec 10th, 2026 8:38 PM.',
      NOW,
    )!;
    expect(dated.resetAt).toBe(new Date(2026, 11, 10, 20, 39).getTime());
  });
  it('a 429 it gave up on is the limit without a reset; other failures are not', () => {
    const parse = createCodexParser();
    expect(parse(failed('exceeded retry limit, last status: 429 Too Many Requests'))[0]).toMatchObject({
      type: 'usage_limit',
      resetAt: null,
    });
    expect(
      parse(failed('exceeded retry limit, last status: 500 Internal Server Error')).map((e) => e.type),
    ).toEqual(['result']);
  });
});

describe('Gemini CLI', () => {
  it('a quota error result is the limit, with the delay it names', () => {
    const line = JSON.stringify({
      type: 'result',
      status: 'error',
      error: { type: 'api_error', message: 'Quota exceeded for quota metric. Please retry in 38.2s.' },
    });
    expect(createGeminiParser()(line)[0]).toMatchObject({ type: 'usage_limit' });
    expect(usageLimitFromMessage('RESOURCE_EXHAUSTED: quota; reset after 3h2m1s', NOW)!.resetAt).toBe(
      NOW + (3 * 3600 + 2 * 60 + 1) * 1000,
    );
  });
});

describe('OpenCode', () => {
  it('a session error naming a rate limit is the limit; another error is not', () => {
    const line = (message: string) =>
      JSON.stringify({ type: 'error', error: { name: 'APIError', data: { message } } });
    const parse = createOpenCodeParser();
    expect(parse(line('Rate limit reached for requests. Please try again in 20s.'))[0]).toMatchObject({
      type: 'usage_limit',
      message: 'APIError: Rate limit reached for requests. Please try again in 20s.',
    });
    expect(parse(line('fake 400')).map((e) => e.type)).toEqual(['error']);
  });
});

describe('reading the words', () => {
  it('knows a limit from other errors', () => {
    expect(isLimitMessage('You have hit your weekly limit')).toBe(true);
    expect(isLimitMessage('429 Too Many Requests')).toBe(true);
    expect(isLimitMessage('Internal server error')).toBe(false);
    expect(isLimitMessage('max turns reached')).toBe(false);
  });
  it('reads clock times and durations, and refuses nonsense', () => {
    expect(resetFromClockText('resets 13:13 (UTC)', NOW)).toBe(Date.UTC(2026, 11, 8, 13, 14));
    expect(resetFromClockText('resets 25:99', NOW)).toBeNull();
    expect(resetFromClockText('try again at 13 PM', NOW)).toBeNull();
    expect(resetFromClockText('nothing here', NOW)).toBeNull();
    expect(resetFromDurationText('Please retry in 1500ms', NOW)).toBe(NOW + 1500);
    expect(resetFromDurationText('retry after 2 minutes', NOW)).toBe(NOW + 120_000);
  });
});
