/**
 * The command adapter's argv: the role's `command` then its `args`, with
 * `{prompt}`, `{prompt_file}`, `{model}`, `{effort}`, `{worktree}` and `{key}`
 * replaced in every argument. Never run through a shell.
 */
import type { AgentConfig } from '../../config/project-config.ts';
import type { LaunchVars } from '../adapter.ts';

const PLACEHOLDER = /\{(prompt|prompt_file|model|effort|worktree|key)\}/g;

export function commandArgv(cfg: AgentConfig, vars: LaunchVars): string[] {
  const subs: Record<string, string> = {
    '{prompt}': vars.prompt,
    '{prompt_file}': vars.promptFile,
    '{model}': vars.model,
    '{effort}': vars.effort,
    '{worktree}': vars.worktree,
    '{key}': vars.key,
  };
  return [...(cfg.command ?? []), ...(cfg.args ?? [])].map((arg) =>
    arg.replace(PLACEHOLDER, (match) => subs[match] ?? match),
  );
}

/** A command agent gets only the contract variables and its role's `env`. */
export function commandEnv(): Record<string, string> {
  return {};
}
