import { describe, expect, it } from 'vitest';
import { agentConfig, launchVars } from '../../../test/helpers/adapter-fixtures.ts';
import { openCodeArgv, openCodeEnv, providerModel, variantFor } from './argv.ts';

const BIN = '/usr/local/bin/agent';

describe('opencode argv', () => {
  it.each([
    ['claude-sonnet-4-5', 'anthropic/claude-sonnet-4-5'],
    ['gpt-5.5', 'openai/gpt-5.5'],
    ['o3', 'openai/o3'],
    ['gemini-2.5-pro', 'google/gemini-2.5-pro'],
    ['openrouter/qwen3-coder', 'openrouter/qwen3-coder'],
    ['qwen3-coder', 'qwen3-coder'],
  ])('model %s runs as %s', (model, want) => expect(providerModel(model)).toBe(want));

  it.each([
    ['claude-opus-4-8', 'low', null],
    ['claude-opus-4-8', 'high', 'high'],
    ['claude-opus-4-8', 'xhigh', 'max'],
    ['gpt-5.5', 'max', 'xhigh'],
    ['gemini-2.5-pro', 'xhigh', 'high'],
    ['openrouter/qwen3-coder', 'medium', 'medium'],
  ])('effort on %s at %s is variant %s', (model, effort, want) =>
    expect(variantFor(model, effort)).toBe(want),
  );

  it.each([
    {
      what: 'defaults: json events, provider/model, variant, --auto, prompt after --',
      cfg: {},
      vars: { model: 'claude-sonnet-4-5', effort: 'xhigh' },
      want: [
        BIN,
        'run',
        '--format',
        'json',
        '--model=anthropic/claude-sonnet-4-5',
        '--variant=max',
        '--auto',
        '--',
        'Implement T-1.',
      ],
    },
    {
      what: 'read_only runs the plan agent; no variant at low; resume; args; system prompt before the prompt',
      cfg: { permission_mode: 'read_only', args: ['--print-logs'], system_prompt_append: 'Plan only.' },
      vars: { model: 'claude-sonnet-4-5', effort: 'low', resumeSessionId: 'ses_1' },
      want: [
        BIN,
        'run',
        '--format',
        'json',
        '--model=anthropic/claude-sonnet-4-5',
        '--agent',
        'plan',
        '--session=ses_1',
        '--print-logs',
        '--',
        'Plan only.\n\n---\n\nImplement T-1.',
      ],
    },
  ])('$what', ({ cfg, vars, want }) => {
    expect(openCodeArgv(agentConfig({ adapter: 'opencode', ...cfg }), launchVars(vars))).toEqual(want);
  });

  it('turns self-update off, keeps the database of a new session in memory, passes its locations through', () => {
    const parentEnv = { XDG_DATA_HOME: '/data', OPENCODE_CONFIG: '/c.json', OPENAI_API_KEY: 'k' };
    const cfg = agentConfig({ adapter: 'opencode' });
    expect(openCodeEnv(cfg, launchVars({ parentEnv }))).toEqual({
      OPENCODE_DISABLE_AUTOUPDATE: '1',
      OPENCODE_DB: ':memory:',
      XDG_DATA_HOME: '/data',
      OPENCODE_CONFIG: '/c.json',
    });
    // A resumed session lives in OpenCode's own database.
    expect(openCodeEnv(cfg, launchVars({ parentEnv, resumeSessionId: 'ses_1' }))).not.toHaveProperty(
      'OPENCODE_DB',
    );
  });
});
