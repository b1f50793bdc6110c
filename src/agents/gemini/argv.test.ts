import { describe, expect, it } from 'vitest';
import { agentConfig, launchVars } from '../../../test/helpers/adapter-fixtures.ts';
import { geminiArgv, geminiEnv } from './argv.ts';

const BIN = '/usr/local/bin/agent';

describe('gemini argv', () => {
  it.each([
    {
      what: 'defaults: stream-json, model, yolo, the prompt as one --prompt= argument',
      cfg: {},
      want: [
        BIN,
        '--output-format',
        'stream-json',
        '--model=gemini-2.5-pro',
        '--approval-mode=yolo',
        '--prompt=Implement T-1.',
      ],
    },
    {
      what: 'edits is auto_edit; tools; resume; args; the appended system prompt leads the prompt',
      cfg: {
        permission_mode: 'edits',
        allowed_tools: ['run_shell_command(git)', 'write_file'],
        system_prompt_append: 'Be brief.',
        args: ['--sandbox'],
      },
      resume: 'latest',
      want: [
        BIN,
        '--output-format',
        'stream-json',
        '--model=gemini-2.5-pro',
        '--approval-mode=auto_edit',
        '--allowed-tools=run_shell_command(git),write_file',
        '--resume=latest',
        '--sandbox',
        '--prompt=Be brief.\n\n---\n\nImplement T-1.',
      ],
    },
    {
      what: 'read_only is plan mode',
      cfg: { permission_mode: 'read_only' },
      want: [
        BIN,
        '--output-format',
        'stream-json',
        '--model=gemini-2.5-pro',
        '--approval-mode=plan',
        '--prompt=Implement T-1.',
      ],
    },
  ])('$what', ({ cfg, resume, want }) => {
    const vars = launchVars({ model: 'gemini-2.5-pro', resumeSessionId: resume ?? null });
    expect(geminiArgv(agentConfig({ adapter: 'gemini', ...cfg }), vars)).toEqual(want);
  });

  it('trusts the worktree (else headless tools are refused) and passes GEMINI_CLI_HOME through', () => {
    const env = geminiEnv(
      agentConfig({ adapter: 'gemini' }),
      launchVars({ parentEnv: { GEMINI_CLI_HOME: '/cfg', GEMINI_API_KEY: 'k' } }),
    );
    expect(env).toEqual({ GEMINI_CLI_TRUST_WORKSPACE: 'true', GEMINI_CLI_HOME: '/cfg' });
  });
});
