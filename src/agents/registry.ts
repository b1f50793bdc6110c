/** Every agent adapter by name. */
import type { AdapterName, AgentAdapter } from './adapter.ts';
import { claudeCodeAdapter } from './claude-code/index.ts';
import { codexAdapter } from './codex/index.ts';
import { commandAdapter } from './command/index.ts';
import { geminiAdapter } from './gemini/index.ts';
import { openCodeAdapter } from './opencode/index.ts';
import { scriptedAdapter } from './scripted/index.ts';

export const ADAPTERS: Readonly<Record<AdapterName, AgentAdapter>> = {
  scripted: scriptedAdapter,
  command: commandAdapter,
  'claude-code': claudeCodeAdapter,
  codex: codexAdapter,
  gemini: geminiAdapter,
  opencode: openCodeAdapter,
};

/** The adapter for a role's `adapter` key (the config schema admits no other names). */
export const adapterFor = (name: AdapterName): AgentAdapter => ADAPTERS[name];
