import { describe, expect, it } from 'vitest';
import { parseScript, pathEscapeReason, selectSteps, type Script, type StepQuery } from './script.ts';

const script = (yaml: string): Script => {
  const loaded = parseScript(yaml, 'script.yaml');
  if (!loaded.ok) throw new Error(loaded.error);
  return loaded.script;
};

describe('selectSteps', () => {
  const s = script(`
tasks:
  - match: { key: DEMO-1 }
    roles:
      developer:
        default: [ { message: dev default } ]
        attempts: { 2: [ { message: dev attempt 2 } ] }
      reviewer:
        attempts: { 1: [ { verdict: rejected, comments: "add a test for 0" } ] }
      tester: { default: [] }
  - match: { title: "zero" }
    roles:
      developer:
        default: [ { message: zero dev } ]
  - match: { key: DEMO-3, title: "zero" }
    roles:
      developer:
        default: [ { message: "never reached: DEMO-3 matches the entry above first" } ]
defaults:
  developer: [ { message: fallback dev } ]
  reviewer: [ { verdict: approved } ]
`);
  const q = (over: Partial<StepQuery>): StepQuery => ({
    key: 'DEMO-1',
    title: 'Add zero handling',
    role: 'developer',
    attempt: 1,
    ...over,
  });

  it.each([
    { name: 'attempt-specific steps', query: q({ attempt: 2 }), steps: [{ message: 'dev attempt 2' }] },
    {
      name: 'the default when the attempt has no entry',
      query: q({ attempt: 3 }),
      steps: [{ message: 'dev default' }],
    },
    {
      name: 'the reviewer attempt entry',
      query: q({ role: 'reviewer' }),
      steps: [{ verdict: 'rejected', comments: 'add a test for 0' }],
    },
    {
      name: 'defaults when the matched role has no entry for the attempt',
      query: q({ role: 'reviewer', attempt: 2 }),
      steps: [{ verdict: 'approved' }],
    },
    { name: 'an explicit empty list', query: q({ role: 'tester' }), steps: [] },
    { name: 'built-in (null) when nothing applies', query: q({ role: 'analyst' }), steps: null },
    { name: 'a title substring match', query: q({ key: 'DEMO-2' }), steps: [{ message: 'zero dev' }] },
    { name: 'the first match wins', query: q({ key: 'DEMO-3' }), steps: [{ message: 'zero dev' }] },
    {
      name: 'defaults for a task that matches nothing',
      query: q({ key: 'OTHER-9', title: 'Other' }),
      steps: [{ message: 'fallback dev' }],
    },
  ])('picks $name', ({ query, steps }) => {
    expect(selectSteps(s, query)).toEqual(steps);
  });

  it('returns null without a script', () => {
    expect(selectSteps(null, q({}))).toBeNull();
  });
});

describe('parseScript', () => {
  it('accepts every step kind', () => {
    const loaded = parseScript(
      `
defaults:
  developer:
    - write: { path: a.txt, content: "{{key}}" }
    - append: { path: a.txt, content: more }
    - replace: { path: a.txt, find: more, with: less }
    - run: [ node, -e, "1" ]
    - message: hello
    - sleep_ms: 5
    - verdict: rejected
      comments: needs work
    - result: done
    - usage: { input_tokens: 1, output_tokens: 2, cost_usd: 0.5, model: m }
    - exit: 3
    - hang: true
`,
      'all.yaml',
    );
    expect(loaded.ok).toBe(true);
    if (loaded.ok) expect(loaded.script.defaults?.developer).toHaveLength(11);
  });

  it('reads JSON scripts', () => {
    const loaded = parseScript(
      JSON.stringify({ tasks: [{ match: { key: 7 }, roles: { analyst: { default: [] } } }] }),
      's.json',
    );
    expect(loaded.ok && loaded.script.tasks[0]?.match.key).toBe('7');
  });

  it.each([
    {
      name: 'a bad field inside a step',
      yaml: 'defaults: { developer: [ { write: { path: 1, content: x } } ] }',
      error: /defaults\.developer\[0\]\.write\.path: .*expected string/,
    },
    {
      name: 'an unknown step',
      yaml: 'defaults: { developer: [ { wrte: {} } ] }',
      error: /defaults\.developer\[0\]: unknown step \["wrte"\]/,
    },
    {
      name: 'two keys in one step',
      yaml: 'defaults: { developer: [ { message: a, result: b } ] }',
      error: /defaults\.developer\[0\]: .*exactly one key/,
    },
    { name: 'an unknown role', yaml: 'defaults: { coder: [] }', error: /defaults: .*coder/ },
    {
      name: 'a bad verdict',
      yaml: 'defaults: { reviewer: [ { verdict: maybe } ] }',
      error: /defaults\.reviewer\[0\]\.verdict: /,
    },
    {
      name: 'attempt 0',
      yaml: 'tasks: [ { match: { key: A }, roles: { developer: { attempts: { 0: [] } } } } ]',
      error: /tasks\[0\]\.roles\.developer\.attempts\.0: attempt numbers/,
    },
    {
      name: 'an empty match',
      yaml: 'tasks: [ { match: {}, roles: {} } ]',
      error: /tasks\[0\]\.match: match needs a key or a title/,
    },
    {
      name: 'a parent path',
      yaml: 'defaults: { developer: [ { write: { path: ../x, content: x } } ] }',
      error: /write\.path: path "\.\.\/x" contains "\.\."/,
    },
    {
      name: 'an absolute path',
      yaml: 'defaults: { developer: [ { append: { path: /etc/passwd, content: x } } ] }',
      error: /append\.path: path "\/etc\/passwd" is absolute/,
    },
    {
      name: 'an empty run',
      yaml: 'defaults: { tester: [ { run: [] } ] }',
      error: /defaults\.tester\[0\]\.run: run needs/,
    },
    { name: 'YAML syntax', yaml: 'tasks: [ {', error: /not valid YAML/ },
    { name: 'a list at the top', yaml: '- 1', error: /\(top level\): / },
  ])('reports $name with the file and the path', ({ yaml, error }) => {
    const loaded = parseScript(yaml, '/tmp/demo/script.yaml');
    expect(loaded.ok).toBe(false);
    if (!loaded.ok) {
      expect(loaded.error).toContain('/tmp/demo/script.yaml');
      expect(loaded.error).toMatch(error);
    }
  });
});

describe('pathEscapeReason', () => {
  it.each([
    ['docs/a.md', null],
    ['a..b/c', null],
    ['', /empty/],
    ['../a', /\.\./],
    ['docs/../../a', /\.\./],
    ['/abs', /absolute/],
    ['C:\\x', /absolute/],
  ])('%s', (path, expected) => {
    const reason = pathEscapeReason(path);
    if (expected === null) expect(reason).toBeNull();
    else expect(reason).toMatch(expected);
  });
});

describe('selectSteps for development candidates', () => {
  const s = parseScript(
    'tasks: [ { match: { key: A }, roles: { developer: { candidates: { 2: [ { message: c2 } ] }, attempts: { 1: [ { message: a1 } ] } } } } ]',
    'x.yaml',
  );
  it("takes the candidate's steps first, then the attempt's", () => {
    if (!s.ok) throw new Error(s.error);
    const q = { key: 'A', title: '', role: 'developer' as const, attempt: 1 };
    expect(selectSteps(s.script, { ...q, candidate: 2 })).toEqual([{ message: 'c2' }]);
    expect(selectSteps(s.script, { ...q, candidate: 1 })).toEqual([{ message: 'a1' }]);
    expect(selectSteps(s.script, q)).toEqual([{ message: 'a1' }]);
  });
  it('refuses a candidate number that is not an integer from 1', () => {
    const bad = parseScript(
      'tasks: [ { match: { key: A }, roles: { developer: { candidates: { 0: [] } } } } ]',
      'x.yaml',
    );
    expect(bad.ok ? '' : bad.error).toMatch(/tasks\[0\]\.roles\.developer\.candidates\.0: candidate numbers/);
  });
});
