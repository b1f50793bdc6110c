import { describe, expect, it } from 'vitest';
import { agentConfig, launchVars } from '../../../test/helpers/adapter-fixtures.ts';
import { codexArgv, codexEnv } from './argv.ts';

const BIN = '/usr/local/bin/agent';

describe('codex argv', () => {
  it.each([
    {
      what: 'defaults: model, reasoning effort, no sandbox or approvals, prompt after --',
      cfg: {},
      vars: { model: 'gpt-5.5', effort: 'high' },
      want: [
        BIN,
        'exec',
        '--json',
        '--model=gpt-5.5',
        '-c',
        'model_reasoning_effort="high"',
        '--dangerously-bypass-approvals-and-sandbox',
        '--',
        'Implement T-1.',
      ],
    },
    {
      what: 'max effort is xhigh; edits is the workspace-write sandbox; system prompt as TOML string; args',
      cfg: {
        permission_mode: 'edits',
        system_prompt_append: 'Say "done".\nThen stop.',
        args: ['-c', 'model_provider=local'],
      },
      vars: { model: 'gpt-5.5', effort: 'max' },
      want: [
        BIN,
        'exec',
        '--json',
        '--model=gpt-5.5',
        '-c',
        'model_reasoning_effort="xhigh"',
        '--sandbox',
        'workspace-write',
        '-c',
        'developer_instructions="Say \\"done\\".\\nThen stop."',
        '-c',
        'model_provider=local',
        '--',
        'Implement T-1.',
      ],
    },
    {
      what: 'read_only sandbox; resume is a subcommand before the prompt',
      cfg: { permission_mode: 'read_only' },
      vars: { model: 'gpt-5.5', effort: 'low', resumeSessionId: '01a1-thread' },
      want: [
        BIN,
        'exec',
        '--json',
        '--model=gpt-5.5',
        '-c',
        'model_reasoning_effort="low"',
        '--sandbox',
        'read-only',
        'resume',
        '01a1-thread',
        '--',
        'Implement T-1.',
      ],
    },
  ])('$what', ({ cfg, vars, want }) => {
    expect(codexArgv(agentConfig({ adapter: 'codex', ...cfg }), launchVars(vars))).toEqual(want);
  });

  it('passes CODEX_HOME through when orch has one, and nothing else', () => {
    const cfg = agentConfig({ adapter: 'codex' });
    expect(
      codexEnv(cfg, launchVars({ parentEnv: { CODEX_HOME: '/cfg/codex', OPENAI_API_KEY: 'sk' } })),
    ).toEqual({
      CODEX_HOME: '/cfg/codex',
    });
    expect(codexEnv(cfg, launchVars({ parentEnv: {} }))).toEqual({});
  });
});
