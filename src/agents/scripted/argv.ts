/**
 * The scripted agent's argv and env: this Node binary running
 * `scripted/agent.ts`, with its script in ORCH_SCRIPT_FILE (resolved against
 * the project root).
 */
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentConfig } from '../../config/project-config.ts';
import type { LaunchVars } from '../adapter.ts';

/**
 * The agent's file beside this one: `agent.ts` in a checkout, `agent.js` in the built package
 * (the build rewrites import specifiers, not this path).
 */
export const SCRIPTED_AGENT_PATH = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './agent.ts' : './agent.js', import.meta.url),
);

export function scriptedArgv(): string[] {
  return [process.execPath, SCRIPTED_AGENT_PATH];
}

export function scriptedEnv(cfg: AgentConfig, vars: LaunchVars): Record<string, string> {
  if (!cfg.script) return {};
  return { ORCH_SCRIPT_FILE: isAbsolute(cfg.script) ? cfg.script : resolve(vars.projectRoot, cfg.script) };
}
