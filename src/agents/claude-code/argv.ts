/**
 * Claude Code argv: `-p --output-format stream-json --verbose`, the model
 * with `--model` and the effort with `--effort` (Claude Code takes orch's five
 * levels as they are), the permission mode as `--dangerously-skip-permissions`
 * or `--permission-mode`, `--max-turns`, `--max-budget-usd`, `--allowedTools`,
 * `--append-system-prompt`, `--resume`. Free-text values use `--flag=value`
 * and the prompt follows `--`, so text starting with `-` is never an option.
 */
import type { AgentConfig } from '../../config/project-config.ts';
import { joinTools, passThrough, type LaunchVars, type PermissionMode } from '../adapter.ts';

const PERMISSION_FLAGS: Readonly<Record<PermissionMode, readonly string[]>> = {
  bypass: ['--dangerously-skip-permissions'],
  edits: ['--permission-mode', 'acceptEdits'],
  read_only: ['--permission-mode', 'plan'],
};

export function claudeCodeArgv(cfg: AgentConfig, vars: LaunchVars): string[] {
  return [
    vars.binary,
    '-p',
    '--output-format',
    'stream-json',
    '--verbose',
    `--model=${vars.model}`,
    `--effort=${vars.effort}`,
    ...PERMISSION_FLAGS[cfg.permission_mode ?? 'bypass'],
    ...(cfg.max_turns ? [`--max-turns=${cfg.max_turns}`] : []),
    // The task's remaining budget: the CLI stops itself there (orch stops it too, from the usage it streams).
    ...(vars.maxBudgetUsd !== undefined && vars.maxBudgetUsd !== null
      ? [`--max-budget-usd=${Math.max(0, vars.maxBudgetUsd).toFixed(4)}`]
      : []),
    ...(cfg.allowed_tools?.length ? [`--allowedTools=${joinTools(cfg.allowed_tools)}`] : []),
    ...(cfg.system_prompt_append ? [`--append-system-prompt=${cfg.system_prompt_append}`] : []),
    ...(vars.resumeSessionId ? [`--resume=${vars.resumeSessionId}`] : []),
    ...(cfg.args ?? []),
    '--',
    vars.prompt,
  ];
}

/** No self-update in the middle of a run; CLAUDE_CONFIG_DIR (where a login lives) passes through. */
export function claudeCodeEnv(_cfg: AgentConfig, vars: LaunchVars): Record<string, string> {
  return { DISABLE_AUTOUPDATER: '1', ...passThrough(vars.parentEnv, ['CLAUDE_CONFIG_DIR']) };
}
