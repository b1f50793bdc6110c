/**
 * Agent adapters: the code that speaks to one agent CLI.
 *
 * Glossary: an *adapter* turns a role's config into the argv and environment
 * of one agent process, and that process's stdout (and, for some CLIs,
 * stderr) into the one {@link AgentEvent} stream. *Launch vars* are what a run
 * adds to the role config: the prompt, the resolved model and effort, the
 * worktree. A *permission mode* is orch's CLI-neutral name for how much the
 * agent may do without asking; nobody is there to answer a prompt, so the
 * default is `bypass` and the worktree (plus `pid_namespace`) is the boundary.
 *
 * Every adapter folder has the same shape: `argv.ts` (argv and env),
 * `parse.ts` (the line parser), `index.ts` (the {@link AgentAdapter}), with
 * their tests beside them. The registry is `registry.ts`, so that this file,
 * which the config schema imports, imports no adapter.
 */
import type { AgentConfig } from '../config/project-config.ts';
import type { AgentEvent, LineParser } from './events.ts';

export { ADAPTER_NAMES, PERMISSION_MODES, type AdapterName, type PermissionMode } from '../core/adapters.ts';
import type { AdapterName } from '../core/adapters.ts';

/** What one run adds to the role config. */
export interface LaunchVars {
  /** The rendered prompt. */
  prompt: string;
  /** The file holding it (`ORCH_PROMPT_FILE`). */
  promptFile: string;
  /** The model resolved for the role, as stamped on the run. */
  model: string;
  /** The effort resolved for the role: low, medium, high, xhigh or max. */
  effort: string;
  /** Absolute path of the task's worktree (the agent's working directory). */
  worktree: string;
  /** The task key. */
  key: string;
  /** Root of the project: relative paths in its config resolve against it. */
  projectRoot: string;
  /** The executable of a CLI adapter (see `resolveAgentBinary`); unused by `command` and `scripted`. */
  binary: string;
  /** A CLI session to continue instead of starting a new one; null starts afresh. */
  resumeSessionId: string | null;
  /** What the task may still spend in USD, for CLIs that can stop themselves at a budget; null for no limit. */
  maxBudgetUsd?: number | null;
  /** orch's own environment, read-only: adapters pass through CLI config locations (never secrets). */
  parentEnv: Readonly<Record<string, string | undefined>>;
}

/** Role config keys an adapter may or may not honour; `orch doctor` warns when a set one is ignored. */
export type AdapterFeature =
  'max_turns' | 'allowed_tools' | 'system_prompt_append' | 'permission_mode' | 'effort';

/** Where a CLI finds its credentials: any one of these variables, or a login file. */
export interface CredentialSources {
  env: readonly string[];
  /** Login files the CLI reads, given the agent's environment (HOME, the CLI's config dir). */
  files(env: Readonly<Record<string, string | undefined>>): string[];
}

export interface AgentAdapter {
  name: AdapterName;
  /** Executable looked up when `binary` is unset; null when the argv comes from the config or from orch. */
  binaryName: string | null;
  /** The complete argv (argv[0] included), never a shell string. */
  argv(cfg: AgentConfig, vars: LaunchVars): string[];
  /** CLI-specific environment; the role's `env` and the `ORCH_*` contract variables override it. */
  env(cfg: AgentConfig, vars: LaunchVars): Record<string, string>;
  /** A fresh parser for one run's stdout (parsers keep per-run totals). */
  createParser(): LineParser;
  /** Stateless: whether a stdout line is the final result, which starts the result grace. */
  isResultLine(line: string): boolean;
  /** Events from a stderr line, for CLIs that report retries only there. */
  stderrEvents?(line: string): AgentEvent[];
  /** Null for adapters that need none (scripted) or whose needs orch cannot know (command). */
  credentials: CredentialSources | null;
  /** Role config keys this adapter honours. */
  supports: ReadonlySet<AdapterFeature>;
  /**
   * Whether a run of this role can continue an earlier run's CLI session (`resumeSessionId`), so a
   * run a person stopped with a message (`orch task say --now`) is resumed rather than started
   * afresh. Absent: it cannot.
   */
  resumes?(cfg: AgentConfig): boolean;
}

/** A role's allowed tools as one `name,name` argument (a variadic flag would swallow the prompt). */
export function joinTools(tools: readonly string[]): string {
  return tools.join(',');
}

/** `system_prompt_append` put before the prompt, for CLIs without a flag for it. */
export function promptWithAppend(cfg: AgentConfig, prompt: string): string {
  const extra = cfg.system_prompt_append?.trim();
  return extra ? `${extra}\n\n---\n\n${prompt}` : prompt;
}

/** The value of orch's env var `name` when set, for pass-through of CLI config locations. */
export function passThrough(
  parentEnv: LaunchVars['parentEnv'],
  names: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = parentEnv[name];
    if (value) out[name] = value;
  }
  return out;
}
