import { describe, expect, it } from 'vitest';
import { captured, ofType, parseAll } from '../../../test/helpers/adapter-fixtures.ts';
import { createCodexParser, isCodexResultLine } from './parse.ts';

const line = (value: unknown): string => JSON.stringify(value);

describe('codex parser on captured output of the real CLI', () => {
  it('reads a run with shell commands and a patch: tools, answer, usage with cached input split out', () => {
    const events = parseAll(createCodexParser(), captured('codex-tools'));
    expect(ofType(events, 'started')[0]?.sessionId).toMatch(/^01a1/);
    expect(ofType(events, 'tool_use').map((e) => e.name)).toEqual(['shell', 'apply_patch', 'shell']);
    expect(ofType(events, 'tool_result').map((e) => [e.isError, e.text])).toEqual([
      [false, ''],
      [false, 'update /home/dev/worktrees/T-1/src/a.js'],
      [false, 'export const a = 2;\n'],
    ]);
    expect(ofType(events, 'message').map((e) => e.text)).toEqual(['Writing.', 'All done.']);
    const [result] = ofType(events, 'result');
    expect(result).toMatchObject({ ok: true, text: 'All done.' });
    // turn.completed: input 200 of which 20 cached, output 80 (reasoning included).
    expect(result?.usage).toMatchObject({
      inputTokens: 180,
      cacheReadTokens: 20,
      cacheWriteTokens: 0,
      outputTokens: 80,
      costUsd: null,
      numTurns: 1,
    });
    expect(result?.usage?.sessionId).toBe(ofType(events, 'started')[0]?.sessionId);
  });

  it('turns "Reconnecting... n/m" into retries and turn.failed into an error result', () => {
    const retried = parseAll(createCodexParser(), captured('codex-429'));
    expect(ofType(retried, 'retry')).toEqual([
      {
        type: 'retry',
        attempt: 1,
        delayMs: null,
        error: 'exceeded retry limit, last status: 429 Too Many Requests',
      },
    ]);
    expect(ofType(retried, 'result')[0]).toMatchObject({ ok: true, text: 'ok after 429' });

    const failed = parseAll(createCodexParser(), captured('codex-500'));
    expect(ofType(failed, 'retry').map((e) => e.attempt)).toEqual([1]);
    expect(ofType(failed, 'error').map((e) => e.message)).toEqual([
      'We’re currently experiencing high demand, which may cause temporary errors.',
    ]);
    expect(ofType(failed, 'result')).toEqual([
      expect.objectContaining({ ok: false, subtype: 'turn_failed', usage: null }),
    ]);
  });

  it('sums usage over turns and reports a warning item as an error event with its raw line', () => {
    const parse = createCodexParser();
    const warning = line({
      type: 'item.completed',
      item: { id: 'i0', type: 'error', message: 'metadata missing' },
    });
    const events = [
      line({ type: 'thread.started', thread_id: 't1' }),
      warning,
      line({ type: 'turn.completed', usage: { input_tokens: 10, cached_input_tokens: 4, output_tokens: 3 } }),
      line({ type: 'turn.completed', usage: { input_tokens: 5, output_tokens: 2 } }),
    ].flatMap((l) => parse(l));
    expect(ofType(events, 'error')).toEqual([{ type: 'error', message: 'metadata missing', raw: warning }]);
    expect(ofType(events, 'result').at(-1)?.usage).toMatchObject({
      inputTokens: 11,
      cacheReadTokens: 4,
      outputTokens: 5,
      numTurns: 2,
      sessionId: 't1',
    });
  });

  it.each([
    [
      'a known line with wrong types',
      line({ type: 'turn.completed', usage: { input_tokens: 'many' } }),
      /turn\.completed line does not match/,
    ],
    ['broken JSON', '{"type":"item.completed",', /^invalid JSON/],
    ['an object without type', line({ msg: 'x' }), /without a string "type"/],
  ])('keeps %s raw in an error event', (_what, raw, message) => {
    const [event] = createCodexParser()(raw);
    expect(event).toMatchObject({ type: 'error', raw });
    expect(event?.type === 'error' && event.message).toMatch(message);
  });

  it('knows the result line without state', () => {
    expect(captured('codex-tools').map(isCodexResultLine).filter(Boolean)).toHaveLength(1);
    expect(isCodexResultLine(line({ type: 'turn.failed', error: { message: 'x' } }))).toBe(true);
    expect(isCodexResultLine(line({ type: 'turn.started' }))).toBe(false);
  });
});
