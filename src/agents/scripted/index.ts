/** The built-in deterministic `scripted` agent, for demos and tests. */
import type { AgentAdapter } from '../adapter.ts';
import { scriptedArgv, scriptedEnv } from './argv.ts';
import { createScriptedParser, isStreamJsonResultLine } from './parse.ts';

export const scriptedAdapter: AgentAdapter = {
  name: 'scripted',
  binaryName: null,
  argv: scriptedArgv,
  env: scriptedEnv,
  createParser: createScriptedParser,
  isResultLine: isStreamJsonResultLine,
  credentials: null,
  supports: new Set(),
};
