import { describe, expect, it } from 'vitest';
import { parseProjectConfig } from './project-config.ts';
import { effectiveConfig, reaperInvariantProblems } from './settings.ts';

const effective = (yaml: string, env: Record<string, string> = {}) =>
  effectiveConfig(parseProjectConfig(yaml, 'orch.yaml'), env);

describe('agents: a role entry overrides only what it sets', () => {
  it('keeps default:’s adapter, pass_env and pid_namespace under a role that sets other keys', () => {
    const e = effective(
      'agents:\n  default:\n    adapter: claude-code\n    pass_env: [ANTHROPIC_API_KEY]\n    pid_namespace: true\n  developer:\n    model: claude-sonnet-4-6\n',
    );
    expect(e.agents.developer).toMatchObject({
      adapter: 'claude-code',
      pass_env: ['ANTHROPIC_API_KEY'],
      pid_namespace: true,
      model: 'claude-sonnet-4-6',
    });
    expect(e.agents.reviewer.adapter).toBe('claude-code');
  });

  it('a role’s own key wins, env maps merge, and unset keys get the schema defaults', () => {
    const e = effective(
      'agents:\n  default:\n    env: { A: "1", B: "1" }\n  tester:\n    adapter: command\n    command: [t]\n    env: { B: "2" }\n',
    );
    expect(e.agents.tester).toMatchObject({
      adapter: 'command',
      env: { A: '1', B: '2' },
      pass_env: [],
      pid_namespace: false,
    });
    expect(e.agents.analyst).toMatchObject({ adapter: 'scripted', env: { A: '1', B: '1' } });
  });
});

describe('timeouts from the environment', () => {
  it.each([
    ['ORCH_AGENT_TIMEOUT_SECONDS', '0', 'agentTimeoutSeconds', 1800],
    ['ORCH_AGENT_TIMEOUT_SECONDS', 'abc', 'agentTimeoutSeconds', 1800],
    ['ORCH_AGENT_KILL_GRACE_SECONDS', '-5', 'agentKillGraceSeconds', 20],
    ['ORCH_REAPER_MAX_RUNNING_S', 'abc', 'reaperMaxRunningS', 5400],
  ] as const)('%s=%s falls back with a warning', (name, value, key, fallback) => {
    const e = effective('', { [name]: value });
    expect(e.timeouts[key]).toBe(fallback);
    expect(e.warnings.join('\n')).toContain(name);
  });

  it('valid values are used without a warning', () => {
    const e = effective('', { ORCH_AGENT_KILL_GRACE_SECONDS: '5', ORCH_REAPER_MAX_RUNNING_S: '4000' });
    expect([e.timeouts.agentKillGraceSeconds, e.timeouts.reaperMaxRunningS, e.warnings]).toEqual([
      5,
      4000,
      [],
    ]);
  });
});

describe('agents: A/B variants', () => {
  const variants = (lines: string) => `agents:\n  developer:\n    variants:\n${lines}`;
  const problems = (yaml: string) => {
    try {
      parseProjectConfig(yaml, 'orch.yaml');
    } catch (error) {
      return (error as { issues: { line: number | null; key: string; message: string }[] }).issues;
    }
    return [];
  };

  it('reads variants with a default weight of 1, and warns of one below the role’s effort floor', () => {
    const e = effective(
      variants(
        '      - { name: opus, model: claude-opus-4-8, weight: 3 }\n      - { name: sonnet-high, model: claude-sonnet-4-5, effort: high }\n',
      ),
    );
    expect(e.agents.developer.variants).toEqual([
      { name: 'opus', model: 'claude-opus-4-8', weight: 3 },
      { name: 'sonnet-high', model: 'claude-sonnet-4-5', effort: 'high', weight: 1 },
    ]);
    expect(e.agents.reviewer.variants).toBeUndefined();
    expect(e.warnings).toEqual([
      "agents.developer.variants sonnet-high: effort high is below the developer's floor; its runs use xhigh",
    ]);
  });

  it.each([
    [
      'a name given twice',
      '      - { name: a }\n      - { name: a }\n',
      'agents.developer.variants.1.name',
      5,
      /a is named twice/,
    ],
    [
      'a key a variant may not set',
      '      - { name: a, adapter: codex }\n',
      'agents.developer.variants.0.adapter',
      4,
      /unknown key/,
    ],
    [
      'a weight of zero',
      '      - { name: a, weight: 0 }\n',
      'agents.developer.variants.0.weight',
      4,
      /greater than 0|>0|too small/i,
    ],
    [
      'a name with a space',
      '      - { name: "a b" }\n',
      'agents.developer.variants.0.name',
      4,
      /letters, digits/,
    ],
  ] as const)('refuses %s, located', (_what, lines, key, line, message) => {
    const found = problems(variants(lines));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ key, line });
    expect(found[0]!.message).toMatch(message);
  });

  it('refuses an empty list', () => {
    expect(problems('agents:\n  developer:\n    variants: []\n')[0]).toMatchObject({
      key: 'agents.developer.variants',
      message: 'at least one variant (leave the key out for none)',
    });
  });
});

describe('the reaper invariant names the key or variable that set the timeout', () => {
  const problemsOf = (yaml: string, env: Record<string, string> = {}) =>
    reaperInvariantProblems(parseProjectConfig(yaml, 'orch.yaml'), env)
      .map((p) => p.message)
      .join('\n');

  it('a role override in orch.yaml, or in the environment', () => {
    expect(problemsOf('timeouts: { agent_timeout_overrides: { tester: 99999 } }')).toContain(
      'timeouts.agent_timeout_overrides.tester (99999)',
    );
    expect(problemsOf('{}', { ORCH_AGENT_TIMEOUT_OVERRIDES_JSON: '{"tester": 99999}' })).toContain(
      'ORCH_AGENT_TIMEOUT_OVERRIDES_JSON (tester) (99999)',
    );
    expect(problemsOf('timeouts: { agent_timeout_developer_s: 99999 }')).toContain(
      'timeouts.agent_timeout_developer_s (99999)',
    );
    expect(problemsOf('{}', { ORCH_AGENT_TIMEOUT_SECONDS: '99999' })).toContain(
      'ORCH_AGENT_TIMEOUT_SECONDS (99999)',
    );
  });
});

describe('hooks', () => {
  const parse = (yaml: string) => parseProjectConfig(yaml, 'orch.yaml');
  const issues = (yaml: string) => {
    try {
      parse(yaml);
    } catch (error) {
      return (error as { issues: { line: number | null; key: string; message: string }[] }).issues;
    }
    return [];
  };

  it('reads a string, an argv and the timeout; none by default', () => {
    expect(parse('project: {}\n').hooks).toEqual({});
    expect(
      parse('hooks:\n  after_create: npm ci\n  before_run: [make, deps]\n  timeout_s: 60\n').hooks,
    ).toEqual({
      after_create: 'npm ci',
      before_run: ['make', 'deps'],
      timeout_s: 60,
    });
  });

  it.each([
    [
      'a number',
      'hooks:\n  after_create: 5\n',
      'hooks.after_create',
      /a shell command \(a string, run with sh -c\)/,
    ],
    ['a blank string', "hooks:\n  before_run: '  '\n", 'hooks.before_run', /a shell command/],
    ['an empty argv', 'hooks:\n  after_run: []\n', 'hooks.after_run', /a shell command/],
    ['an unknown hook', 'hooks:\n  before_start: x\n', 'hooks.before_start', /unknown key/],
    ['a zero timeout', 'hooks:\n  timeout_s: 0\n', 'hooks.timeout_s', /./],
  ])('refuses %s, naming the key', (_what, yaml, key, message) => {
    const found = issues(yaml);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ key, line: 2 });
    expect(found[0]!.message).toMatch(message);
  });

  it('hooks.timeout_s is held to the reaper invariant once a hook is configured', () => {
    const check = (yaml: string) => reaperInvariantProblems(parse(yaml), {}).map((p) => p.key);
    expect(check('hooks:\n  timeout_s: 6000\n')).toEqual([]);
    expect(check('hooks:\n  after_create: npm ci\n  timeout_s: 6000\n')).toEqual(['hooks.timeout_s']);
    expect(check('hooks:\n  after_create: npm ci\n')).toEqual([]);
    expect(
      check(
        'hooks:\n  after_create: npm ci\ntimeouts:\n  reaper_max_running_s: 4000\n  agent_timeout_developer_s: 100\n  agent_timeout_reviewer_s: 100\n  agent_timeout_seconds: 100\n',
      ),
    ).toEqual([]);
  });
});
