import { describe, expect, it } from 'vitest';
import { captured, ofType, parseAll } from '../../../test/helpers/adapter-fixtures.ts';
import { createOpenCodeParser, isOpenCodeResultLine } from './parse.ts';

const stepFinish = (session: string, reason: string, cost: number, tokens: object): string =>
  JSON.stringify({
    type: 'step_finish',
    sessionID: session,
    part: { type: 'step-finish', reason, cost, tokens },
  });

describe('opencode parser on captured output of the real CLI', () => {
  it('reads a run with write, edit and bash: the stop step is the result, tokens and cost summed over steps', () => {
    const events = parseAll(createOpenCodeParser(), captured('opencode-tools'));
    expect(ofType(events, 'started')).toHaveLength(1);
    expect(ofType(events, 'started')[0]?.sessionId).toMatch(/^ses_/);
    expect(ofType(events, 'tool_use').map((e) => e.name)).toEqual(['write', 'edit', 'bash']);
    expect(ofType(events, 'tool_result').map((e) => e.isError)).toEqual([false, false, false]);
    expect(ofType(events, 'tool_result')[2]?.text).toBe('export const a = 2;\n');
    const results = ofType(events, 'result');
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ ok: true, text: 'All done.', subtype: 'stop' });
    expect(results[0]?.usage).toMatchObject({
      inputTokens: 200,
      outputTokens: 80,
      cacheReadTokens: 5,
      cacheWriteTokens: 3,
      costUsd: 0.00181275,
      numTurns: 4,
    });
  });

  it('reports an API error event with its name and message', () => {
    const events = parseAll(createOpenCodeParser(), captured('opencode-400'));
    expect(ofType(events, 'error')[0]?.message).toBe('APIError: fake 400');
    expect(ofType(events, 'result')).toEqual([]);
  });

  it('counts a zero cost with tokens as unknown, adds reasoning to output, and ignores other sessions', () => {
    const parse = createOpenCodeParser();
    const events = [
      stepFinish('ses_main', 'tool-calls', 0, {
        input: 10,
        output: 5,
        reasoning: 2,
        cache: { read: 1, write: 0 },
      }),
      stepFinish('ses_subagent', 'stop', 0.5, { input: 999, output: 999 }),
      stepFinish('ses_main', 'length', 0, { input: 1, output: 1, reasoning: 0 }),
    ].flatMap((l) => parse(l));
    const results = ofType(events, 'result');
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ ok: false, subtype: 'length' });
    expect(results[0]?.usage).toMatchObject({
      inputTokens: 11,
      outputTokens: 8,
      cacheReadTokens: 1,
      costUsd: null,
    });
  });

  it('knows the final step without state', () => {
    const lines = captured('opencode-tools');
    expect(lines.filter(isOpenCodeResultLine)).toHaveLength(1);
    expect(isOpenCodeResultLine(lines.at(-1)!)).toBe(true);
  });
});
