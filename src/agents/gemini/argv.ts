/**
 * Gemini CLI argv: `--output-format stream-json`, `--model`, the permission
 * mode as `--approval-mode` (yolo, auto_edit, plan), `--allowed-tools`,
 * `--resume`, and the prompt as `--prompt=…`. Gemini CLI has no effort flag
 * and no system-prompt append flag (`system_prompt_append` goes before the
 * prompt); its turn limit is a settings.json key, not a flag.
 */
import type { AgentConfig } from '../../config/project-config.ts';
import {
  joinTools,
  passThrough,
  promptWithAppend,
  type LaunchVars,
  type PermissionMode,
} from '../adapter.ts';

const APPROVAL_MODE: Readonly<Record<PermissionMode, string>> = {
  bypass: 'yolo',
  edits: 'auto_edit',
  read_only: 'plan',
};

export function geminiArgv(cfg: AgentConfig, vars: LaunchVars): string[] {
  return [
    vars.binary,
    '--output-format',
    'stream-json',
    `--model=${vars.model}`,
    `--approval-mode=${APPROVAL_MODE[cfg.permission_mode ?? 'bypass']}`,
    ...(cfg.allowed_tools?.length ? [`--allowed-tools=${joinTools(cfg.allowed_tools)}`] : []),
    ...(vars.resumeSessionId ? [`--resume=${vars.resumeSessionId}`] : []),
    ...(cfg.args ?? []),
    `--prompt=${promptWithAppend(cfg, vars.prompt)}`,
  ];
}

/**
 * The worktree is orch's own, so it is trusted: an untrusted folder makes
 * Gemini CLI fall back to asking before each tool, and nobody is there to
 * answer. GEMINI_CLI_HOME (where settings and logins live) passes through.
 */
export function geminiEnv(_cfg: AgentConfig, vars: LaunchVars): Record<string, string> {
  return { GEMINI_CLI_TRUST_WORKSPACE: 'true', ...passThrough(vars.parentEnv, ['GEMINI_CLI_HOME']) };
}
