/** The command adapter: any program that follows the command agent contract. */
import type { AgentAdapter } from '../adapter.ts';
import { commandArgv, commandEnv } from './argv.ts';
import { createCommandParser, isStreamJsonResultLine } from './parse.ts';

export const commandAdapter: AgentAdapter = {
  name: 'command',
  binaryName: null,
  argv: commandArgv,
  env: commandEnv,
  createParser: createCommandParser,
  isResultLine: isStreamJsonResultLine,
  credentials: null,
  supports: new Set(),
};
