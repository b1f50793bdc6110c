import { describe, expect, it } from 'vitest';
import { captured, ofType, parseAll } from '../../../test/helpers/adapter-fixtures.ts';
import { createClaudeCodeParser, isClaudeCodeResultLine } from './parse.ts';

describe('claude-code parser on captured output of the real CLI', () => {
  it('reads a run that wrote, edited and ran a command: tools, answer, usage and cost', () => {
    const events = parseAll(createClaudeCodeParser(), captured('claude-code-tools'));
    expect(ofType(events, 'started')[0]).toMatchObject({ model: 'claude-sonnet-4-5' });
    expect(ofType(events, 'tool_use').map((e) => e.name)).toEqual(['Write', 'Edit', 'Bash']);
    expect(ofType(events, 'tool_result').map((e) => e.isError)).toEqual([false, false, false]);
    expect(ofType(events, 'tool_result')[2]?.text).toBe('export const a = 2;');
    const [result] = ofType(events, 'result');
    expect(result).toMatchObject({ ok: true, text: 'All done.', subtype: 'success' });
    expect(result?.usage).toMatchObject({
      inputTokens: 200,
      outputTokens: 80,
      cacheReadTokens: 20,
      cacheWriteTokens: 12,
      costUsd: 0.001851,
      model: 'claude-sonnet-4-5',
      numTurns: 4,
    });
    expect(ofType(events, 'error')).toEqual([]);
  });

  it('turns system/api_retry into a retry event', () => {
    const events = parseAll(createClaudeCodeParser(), captured('claude-code-429'));
    expect(ofType(events, 'retry')).toEqual([
      { type: 'retry', attempt: 1, delayMs: expect.any(Number) as number, error: 'rate_limit (HTTP 429)' },
    ]);
    expect(ofType(events, 'result')[0]).toMatchObject({ ok: true, text: 'ok after 429' });
  });

  it('reports an API failure as an error event and an error result, not as a message', () => {
    const events = parseAll(createClaudeCodeParser(), captured('claude-code-500'));
    expect(ofType(events, 'message')).toEqual([]);
    expect(ofType(events, 'error')[0]?.message).toMatch(/^API Error: 500/);
    expect(ofType(events, 'error')[0]?.raw).toContain('"is_api_error_message":true');
    expect(ofType(events, 'result')[0]).toMatchObject({ ok: false });
  });

  it('knows the result line without state', () => {
    const lines = captured('claude-code-tools');
    expect(lines.map(isClaudeCodeResultLine)).toEqual(lines.map((_, i) => i === lines.length - 1));
  });
});
