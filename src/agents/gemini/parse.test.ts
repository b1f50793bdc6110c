import { describe, expect, it } from 'vitest';
import { captured, ofType, parseAll } from '../../../test/helpers/adapter-fixtures.ts';
import { createGeminiParser, geminiStderrEvents, isGeminiResultLine } from './parse.ts';

const line = (value: unknown): string =>
  JSON.stringify({ timestamp: '2026-11-21T15:53:50.607Z', ...(value as object) });

describe('gemini parser on captured output of the real CLI', () => {
  it('reads a run with write, replace and shell tools: answer after the last tool, usage with thoughts as output', () => {
    const events = parseAll(createGeminiParser(), captured('gemini-tools'));
    expect(ofType(events, 'started')[0]).toMatchObject({ model: 'gemini-2.5-pro' });
    expect(ofType(events, 'tool_use').map((e) => e.name)).toEqual([
      'write_file',
      'replace',
      'run_shell_command',
    ]);
    expect(ofType(events, 'tool_result').map((e) => e.isError)).toEqual([false, false, false]);
    // The user's prompt echoed back is not a message.
    expect(ofType(events, 'message').map((e) => e.text)).toEqual(['Writing.', 'All done.']);
    const [result] = ofType(events, 'result');
    expect(result).toMatchObject({ ok: true, text: 'All done.', subtype: 'success' });
    // stats: input_tokens 200 (20 cached, input 180), output 80, total 288 → 8 thinking tokens.
    expect(result?.usage).toMatchObject({
      inputTokens: 180,
      cacheReadTokens: 20,
      outputTokens: 88,
      costUsd: null,
      model: 'gemini-2.5-pro',
      byModel: {
        'gemini-2.5-pro': { inputTokens: 180, cacheReadTokens: 20, outputTokens: 88, cacheWriteTokens: 0 },
      },
    });
    expect(result?.usage?.sessionId).toBe(ofType(events, 'started')[0]?.sessionId);
  });

  it('takes an error result with its message, and a warning as an error event', () => {
    const parse = createGeminiParser();
    const warning = line({
      type: 'error',
      severity: 'warning',
      message: 'Loop detected, stopping execution',
    });
    const events = [
      warning,
      line({
        type: 'result',
        status: 'error',
        error: { type: 'FatalTurnLimitedError', message: 'Reached max session turns' },
        stats: { total_tokens: 0, input_tokens: 0, output_tokens: 0, cached: 0, input: 0, models: {} },
      }),
    ].flatMap((l) => parse(l));
    expect(events[0]).toEqual({ type: 'error', message: 'Loop detected, stopping execution', raw: warning });
    expect(ofType(events, 'result')[0]).toMatchObject({
      ok: false,
      text: 'Reached max session turns',
      subtype: 'FatalTurnLimitedError',
    });
  });

  it.each([
    [
      'Attempt 1 failed with status 429. Retrying with backoff... _ApiError: {"error":{}}',
      1,
      null,
      'HTTP 429',
    ],
    ['Attempt 3 failed with status 500. Retrying with backoff...', 3, null, 'HTTP 500'],
    ['Attempt 2 failed: quota exceeded. Retrying after 5123ms...', 2, 5123, 'quota exceeded'],
    ['Attempt 4 failed with 5xx error. Retrying with backoff...', 4, null, 'HTTP 5xx'],
  ])('reads the stderr retry line %j', (text, attempt, delayMs, error) => {
    expect(geminiStderrEvents(text)).toEqual([{ type: 'retry', attempt, delayMs, error }]);
  });

  it('ignores other stderr lines and knows the result line without state', () => {
    expect(
      geminiStderrEvents('YOLO mode is enabled. All tool calls will be automatically approved.'),
    ).toEqual([]);
    const lines = captured('gemini-tools');
    expect(lines.map(isGeminiResultLine)).toEqual(lines.map((_, i) => i === lines.length - 1));
  });

  it('keeps a malformed known line raw', () => {
    const raw = line({ type: 'tool_use', parameters: {} });
    expect(createGeminiParser()(raw)).toEqual([
      { type: 'error', message: expect.stringMatching(/^tool_use line does not match/) as string, raw },
    ]);
  });
});
