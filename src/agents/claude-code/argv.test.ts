import { describe, expect, it } from 'vitest';
import { agentConfig, launchVars } from '../../../test/helpers/adapter-fixtures.ts';
import { claudeCodeArgv, claudeCodeEnv } from './argv.ts';

const BASE = ['/usr/local/bin/agent', '-p', '--output-format', 'stream-json', '--verbose'];

describe('claude-code argv', () => {
  it.each([
    {
      what: 'defaults: model, effort, no prompts, prompt after --',
      cfg: {},
      vars: {},
      want: [
        ...BASE,
        '--model=claude-opus-4-8',
        '--effort=xhigh',
        '--dangerously-skip-permissions',
        '--',
        'Implement T-1.',
      ],
    },
    {
      what: 'edits mode, turn limit, tools, system prompt, extra args',
      cfg: {
        permission_mode: 'edits',
        max_turns: 40,
        allowed_tools: ['Bash(npm test)', 'Edit'],
        system_prompt_append: '-- keep diffs small',
        args: ['--fallback-model', 'claude-sonnet-4-5'],
      },
      vars: { model: 'claude-sonnet-4-5', effort: 'high' },
      want: [
        ...BASE,
        '--model=claude-sonnet-4-5',
        '--effort=high',
        '--permission-mode',
        'acceptEdits',
        '--max-turns=40',
        '--allowedTools=Bash(npm test),Edit',
        '--append-system-prompt=-- keep diffs small',
        '--fallback-model',
        'claude-sonnet-4-5',
        '--',
        'Implement T-1.',
      ],
    },
    {
      what: 'read_only is plan mode; a session resumes; a prompt starting with - stays the prompt',
      cfg: { permission_mode: 'read_only' },
      vars: { resumeSessionId: 'abc-123', prompt: '-v is not a flag here' },
      want: [
        ...BASE,
        '--model=claude-opus-4-8',
        '--effort=xhigh',
        '--permission-mode',
        'plan',
        '--resume=abc-123',
        '--',
        '-v is not a flag here',
      ],
    },
  ])('$what', ({ cfg, vars, want }) => {
    expect(claudeCodeArgv(agentConfig({ adapter: 'claude-code', ...cfg }), launchVars(vars))).toEqual(want);
  });

  it('turns self-update off and passes CLAUDE_CONFIG_DIR through, nothing else of orch', () => {
    const env = claudeCodeEnv(
      agentConfig({ adapter: 'claude-code' }),
      launchVars({
        parentEnv: { CLAUDE_CONFIG_DIR: '/cfg/claude', ANTHROPIC_API_KEY: 'sk-secret', PATH: '/bin' },
      }),
    );
    expect(env).toEqual({ DISABLE_AUTOUPDATER: '1', CLAUDE_CONFIG_DIR: '/cfg/claude' });
  });
});
