/** The Codex CLI adapter (`codex exec --json`). */
import { join } from 'node:path';
import type { AgentAdapter } from '../adapter.ts';
import { codexArgv, codexEnv } from './argv.ts';
import { createCodexParser, isCodexResultLine } from './parse.ts';

export const codexAdapter: AgentAdapter = {
  name: 'codex',
  binaryName: 'codex',
  argv: codexArgv,
  env: codexEnv,
  createParser: createCodexParser,
  isResultLine: isCodexResultLine,
  credentials: {
    env: ['OPENAI_API_KEY', 'CODEX_API_KEY'],
    files: (env) => [join(env.CODEX_HOME ?? join(env.HOME ?? '~', '.codex'), 'auth.json')],
  },
  supports: new Set(['permission_mode', 'effort', 'system_prompt_append']),
  // Its sessions are kept under ~/.codex (CODEX_HOME), which outlives the run.
  resumes: () => true,
};
