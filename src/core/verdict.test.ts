import { describe, expect, it } from 'vitest';
import { chooseCandidate, parseVerdict, verdictFeedback, type Verdict } from './verdict.ts';

const fence = (body: string, lang = 'json') => '```' + lang + '\n' + body + '\n```';

describe('parseVerdict', () => {
  const cases: {
    name: string;
    text: string | null | undefined;
    verdict: Verdict['verdict'];
    comments?: string;
    /** null: parsed cleanly; a pattern: the parse error it must give. */
    parseError: RegExp | null;
  }[] = [
    {
      name: 'a fenced json block',
      text: `Looks good overall.\n\n${fence('{"verdict": "approved", "comments": "Clean and tested."}')}\n`,
      verdict: 'approved',
      comments: 'Clean and tested.',
      parseError: null,
    },
    {
      name: 'a fenced block without a language',
      text: `Review:\n${fence('{"verdict": "rejected", "comments": "Add a test."}', '')}`,
      verdict: 'rejected',
      comments: 'Add a test.',
      parseError: null,
    },
    {
      name: 'a pretty-printed fenced block',
      text: fence('{\n  "verdict": "rejected",\n  "comments": "Handle the empty list."\n}'),
      verdict: 'rejected',
      comments: 'Handle the empty list.',
      parseError: null,
    },
    {
      name: 'a bare object after prose',
      text: 'I read the diff. {"verdict": "rejected", "comments": "Missing error handling."}',
      verdict: 'rejected',
      comments: 'Missing error handling.',
      parseError: null,
    },
    {
      name: 'the last fenced block wins',
      text: `Draft:\n${fence('{"verdict": "approved", "comments": "first"}')}\nOn reflection:\n${fence('{"verdict": "rejected", "comments": "second"}')}`,
      verdict: 'rejected',
      comments: 'second',
      parseError: null,
    },
    {
      name: 'the last bare object wins',
      text: 'First {"verdict": "rejected", "comments": "a"} then {"verdict": "approved", "comments": "b"}',
      verdict: 'approved',
      comments: 'b',
      parseError: null,
    },
    {
      name: 'a fenced block is preferred to a bare object (fences first, as documented)',
      text: `${fence('{"verdict": "approved", "comments": "fenced"}')}\nFor example {"verdict": "rejected"}`,
      verdict: 'approved',
      comments: 'fenced',
      parseError: null,
    },
    {
      name: 'the verdict value is case-insensitive',
      text: '{"verdict": "APPROVED", "comments": "ok"}',
      verdict: 'approved',
      comments: 'ok',
      parseError: null,
    },
    {
      name: 'the verdict value is trimmed',
      text: '{"verdict": "  Rejected ", "comments": "no"}',
      verdict: 'rejected',
      comments: 'no',
      parseError: null,
    },
    {
      name: 'braces and quotes inside strings do not confuse the scan',
      text: 'x {"verdict": "rejected", "comments": "write `if (x) { return \\"}\\" }` instead"}',
      verdict: 'rejected',
      comments: 'write `if (x) { return "}" }` instead',
      parseError: null,
    },
    {
      name: 'a nested object around the verdict',
      text: '{"verdict": "approved", "comments": "fine", "meta": {"checked": ["a", "b"]}}',
      verdict: 'approved',
      comments: 'fine',
      parseError: null,
    },
    {
      name: 'objects without a verdict field are skipped',
      text: 'Config {"retries": 3} and then {"verdict": "approved"} and later {"note": "x"}',
      verdict: 'approved',
      comments: '',
      parseError: null,
    },
    {
      name: 'an invalid fenced block falls back to a valid bare object',
      text: `${fence('{"verdict": approved}')}\nCorrected: {"verdict": "approved", "comments": "ok"}`,
      verdict: 'approved',
      comments: 'ok',
      parseError: null,
    },
    {
      name: 'an invalid verdict value is a rejection that says why',
      text: '{"verdict": "maybe", "comments": "not sure"}',
      verdict: 'rejected',
      comments: 'not sure',
      parseError: /verdict must be "approved" or "rejected", got "maybe"/,
    },
    {
      name: 'a non-string verdict is not a verdict',
      text: '{"verdict": true, "comments": "yes"}',
      verdict: 'rejected',
      comments: '',
      parseError: /no JSON object with a "verdict" field/,
    },
    {
      name: 'prose without a verdict is a rejection',
      text: 'looks fine to me',
      verdict: 'rejected',
      comments: '',
      parseError: /no JSON object with a "verdict" field was found/,
    },
    {
      name: 'garbage is a rejection',
      text: '}{ ```json\n{{{ "verdict": \n``` ]]\u0000 {"verdict": "approved"',
      verdict: 'rejected',
      comments: '',
      parseError: /no JSON object with a "verdict" field/,
    },
    {
      name: 'a JSON array is not a verdict',
      text: fence('[{"verdict": "approved"}]'),
      // The object inside the array is itself a balanced span, and it is a verdict.
      verdict: 'approved',
      comments: '',
      parseError: null,
    },
    {
      name: 'an empty result',
      text: '   \n',
      verdict: 'rejected',
      comments: '',
      parseError: /no result text/,
    },
    { name: 'a null result', text: null, verdict: 'rejected', comments: '', parseError: /no result text/ },
    { name: 'no result', text: undefined, verdict: 'rejected', comments: '', parseError: /no result text/ },
  ];

  it.each(cases)('$name', ({ text, verdict, comments, parseError }) => {
    const v = parseVerdict(text);
    expect(v.verdict).toBe(verdict);
    if (comments !== undefined) expect(v.comments).toBe(comments);
    if (parseError === null) expect(v.parseError).toBeNull();
    else expect(v.parseError).toMatch(parseError);
  });

  it.each([
    { name: 'an array', comments: ['fix a', 'fix b'], want: '["fix a","fix b"]' },
    { name: 'an object', comments: { file: 'a.ts', line: 3 }, want: '{"file":"a.ts","line":3}' },
    { name: 'a number', comments: 42, want: '42' },
    { name: 'null', comments: null, want: '' },
  ])('comments that are $name become text', ({ comments, want }) => {
    const v = parseVerdict(JSON.stringify({ verdict: 'rejected', comments }));
    expect(v).toEqual({ verdict: 'rejected', comments: want, parseError: null });
  });

  it('finds a verdict at the end of a very long result', () => {
    const text = 'log line\n'.repeat(40_000) + '{"verdict": "approved", "comments": "end"}';
    expect(parseVerdict(text)).toEqual({ verdict: 'approved', comments: 'end', parseError: null });
  });

  // Agent output is untrusted: a result full of braces must not stall the orchestrator's event loop.
  it.each([
    { name: 'unclosed braces', text: '{'.repeat(200_000) },
    { name: 'deeply nested objects', text: '{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000) },
    { name: 'braces after an unterminated string', text: '"' + '{ x '.repeat(50_000) },
  ])('parses a hostile result ($name) in bounded time', ({ text }) => {
    const started = performance.now();
    const v = parseVerdict(text);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(v.verdict).toBe('rejected');
    expect(v.parseError).not.toBeNull();
  });

  it('still finds the verdict after a long stretch of code with braces', () => {
    const code = 'function f(x) { if (x) { return { y: x }; } }\n'.repeat(2_000);
    const v = parseVerdict(`${code}\n${fence('{"verdict": "rejected", "comments": "too long"}')}`);
    expect(v).toEqual({ verdict: 'rejected', comments: 'too long', parseError: null });
    const bare = parseVerdict(`${code}\n{"verdict": "approved", "comments": "ok"}`);
    expect(bare).toEqual({ verdict: 'approved', comments: 'ok', parseError: null });
  });

  it('finds a bare verdict whose comments quote code full of braces and quotes', () => {
    const code = 'if (x) { s = "{"; return { a: 1 }; }\n'.repeat(600);
    const started = performance.now();
    const v = parseVerdict(`Review done.\n${JSON.stringify({ verdict: 'rejected', comments: code })}`);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(v).toEqual({ verdict: 'rejected', comments: code, parseError: null });
  });
});

describe('verdictFeedback', () => {
  it('is the comments of a readable verdict', () => {
    expect(verdictFeedback({ verdict: 'rejected', comments: 'Add a test.', parseError: null })).toBe(
      'Add a test.',
    );
  });

  it('says why an unreadable review counts as a rejection', () => {
    const text = verdictFeedback(parseVerdict('looks fine to me'));
    expect(text).toMatch(/^The review could not be read \(no JSON object with a "verdict" field/);
    expect(text).toContain('treat it as a rejection');
  });

  it('keeps the comments of an invalid verdict after the reason', () => {
    const text = verdictFeedback(parseVerdict('{"verdict": "maybe", "comments": "rename x"}'));
    expect(text).toContain('got "maybe"');
    expect(text.split('\n').at(-1)).toBe('rename x');
  });
});

describe('chooseCandidate', () => {
  it('reads the chosen candidate, as a number or a numeric string', () => {
    expect(parseVerdict('{"verdict": "approved", "chosen": 3}').chosen).toBe(3);
    expect(parseVerdict('{"verdict": "approved", "chosen": "2"}').chosen).toBe(2);
    expect(parseVerdict('{"verdict": "approved"}')).not.toHaveProperty('chosen');
    expect(chooseCandidate(parseVerdict('{"verdict": "approved", "chosen": 3}'), [1, 3])).toMatchObject({
      verdict: 'approved',
      chosen: 3,
      parseError: null,
    });
  });

  it('takes the only passing candidate when the approval names none', () => {
    expect(chooseCandidate(parseVerdict('{"verdict": "approved"}'), [2]).chosen).toBe(2);
  });

  it('rejects an approval that names no candidate, a failing one, or not a number', () => {
    expect(chooseCandidate(parseVerdict('{"verdict": "approved"}'), [1, 3])).toMatchObject({
      verdict: 'rejected',
      chosen: null,
      parseError: 'the approval names no candidate: add "chosen" with one of 1, 3',
    });
    expect(chooseCandidate(parseVerdict('{"verdict": "approved", "chosen": 2}'), [1, 3]).parseError).toBe(
      '"chosen" must be one of the passing candidates 1, 3, got 2',
    );
    expect(chooseCandidate(parseVerdict('{"verdict": "approved", "chosen": "best"}'), [1]).parseError).toBe(
      '"chosen" must be one of the passing candidates 1, got not a whole number',
    );
  });

  it('leaves a rejection a rejection of them all', () => {
    expect(chooseCandidate(parseVerdict('{"verdict": "rejected", "chosen": 1}'), [1, 2])).toMatchObject({
      verdict: 'rejected',
      chosen: null,
    });
  });
});
