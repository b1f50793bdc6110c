/** The OpenCode adapter (`opencode run --format json`). */
import { join } from 'node:path';
import type { AgentAdapter } from '../adapter.ts';
import { openCodeArgv, openCodeEnv } from './argv.ts';
import { createOpenCodeParser, isOpenCodeResultLine } from './parse.ts';

export const openCodeAdapter: AgentAdapter = {
  name: 'opencode',
  binaryName: 'opencode',
  argv: openCodeArgv,
  env: openCodeEnv,
  createParser: createOpenCodeParser,
  isResultLine: isOpenCodeResultLine,
  credentials: {
    env: [
      'ANTHROPIC_API_KEY',
      'OPENAI_API_KEY',
      'GEMINI_API_KEY',
      'GOOGLE_GENERATIVE_AI_API_KEY',
      'OPENROUTER_API_KEY',
      'OPENCODE_API_KEY',
    ],
    files: (env) => [
      join(env.XDG_DATA_HOME ?? join(env.HOME ?? '~', '.local', 'share'), 'opencode', 'auth.json'),
    ],
  },
  supports: new Set(['system_prompt_append', 'permission_mode', 'effort']),
  // Its session database is in memory (gone with the run) unless the role's env names a file.
  resumes: (cfg) => Boolean(cfg.env.OPENCODE_DB && cfg.env.OPENCODE_DB !== ':memory:'),
};
