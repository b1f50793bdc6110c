/** The Claude Code adapter (`claude -p --output-format stream-json --verbose`). */
import { join } from 'node:path';
import type { AgentAdapter } from '../adapter.ts';
import { claudeCodeArgv, claudeCodeEnv } from './argv.ts';
import { createClaudeCodeParser, isClaudeCodeResultLine } from './parse.ts';

export const claudeCodeAdapter: AgentAdapter = {
  name: 'claude-code',
  binaryName: 'claude',
  argv: claudeCodeArgv,
  env: claudeCodeEnv,
  createParser: createClaudeCodeParser,
  isResultLine: isClaudeCodeResultLine,
  credentials: {
    env: [
      'ANTHROPIC_API_KEY',
      'ANTHROPIC_AUTH_TOKEN',
      'CLAUDE_CODE_OAUTH_TOKEN',
      'CLAUDE_CODE_USE_BEDROCK',
      'CLAUDE_CODE_USE_VERTEX',
    ],
    files: (env) => [join(env.CLAUDE_CONFIG_DIR ?? join(env.HOME ?? '~', '.claude'), '.credentials.json')],
  },
  supports: new Set(['max_turns', 'allowed_tools', 'system_prompt_append', 'permission_mode', 'effort']),
  // Its sessions are kept under ~/.claude (CLAUDE_CONFIG_DIR), which outlives the run.
  resumes: () => true,
};
