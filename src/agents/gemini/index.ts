/** The Gemini CLI adapter (`gemini --output-format stream-json`). */
import { join } from 'node:path';
import type { AgentAdapter } from '../adapter.ts';
import { geminiArgv, geminiEnv } from './argv.ts';
import { createGeminiParser, geminiStderrEvents, isGeminiResultLine } from './parse.ts';

export const geminiAdapter: AgentAdapter = {
  name: 'gemini',
  binaryName: 'gemini',
  argv: geminiArgv,
  env: geminiEnv,
  createParser: createGeminiParser,
  isResultLine: isGeminiResultLine,
  stderrEvents: geminiStderrEvents,
  credentials: {
    env: ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_APPLICATION_CREDENTIALS', 'GOOGLE_GENAI_USE_VERTEXAI'],
    files: (env) => [join(env.GEMINI_CLI_HOME ?? env.HOME ?? '~', '.gemini', 'oauth_creds.json')],
  },
  supports: new Set(['allowed_tools', 'system_prompt_append', 'permission_mode']),
};
