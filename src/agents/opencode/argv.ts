/**
 * `opencode run --format json` argv: the model as `provider/model` (a bare
 * `claude-…`, `gpt-…` or `gemini-…` id gets its provider), the effort as
 * `--variant` (per provider: Anthropic models know `high` and `max`; OpenCode
 * silently ignores a variant a model lacks), bypass as `--auto`, read_only as
 * the `plan` agent, resume as `--session`. OpenCode has no turn-limit,
 * allowed-tools or system-prompt flag (`system_prompt_append` goes before the
 * prompt).
 */
import type { AgentConfig } from '../../config/project-config.ts';
import { passThrough, promptWithAppend, type LaunchVars, type PermissionMode } from '../adapter.ts';

const PERMISSION_FLAGS: Readonly<Record<PermissionMode, readonly string[]>> = {
  bypass: ['--auto'],
  edits: [],
  read_only: ['--agent', 'plan'],
};

/** `claude-sonnet-4-5` → `anthropic/claude-sonnet-4-5`; an id with a provider stays as it is. */
export function providerModel(model: string): string {
  if (model.includes('/')) return model;
  if (model.startsWith('claude-')) return `anthropic/${model}`;
  if (/^(gpt-|o\d|codex-)/.test(model)) return `openai/${model}`;
  if (model.startsWith('gemini-')) return `google/${model}`;
  return model;
}

const VARIANTS: Readonly<Record<string, Readonly<Record<string, string | null>>>> = {
  anthropic: { low: null, medium: null, high: 'high', xhigh: 'max', max: 'max' },
  openai: { low: 'low', medium: 'medium', high: 'high', xhigh: 'xhigh', max: 'xhigh' },
  google: { low: 'low', medium: 'medium', high: 'high', xhigh: 'high', max: 'high' },
};

/** The `--variant` for an effort on a model's provider; null for none (the model's default). */
export function variantFor(model: string, effort: string): string | null {
  const provider = providerModel(model).split('/')[0] ?? '';
  const table = VARIANTS[provider];
  return table ? (table[effort] ?? null) : effort;
}

export function openCodeArgv(cfg: AgentConfig, vars: LaunchVars): string[] {
  const variant = variantFor(vars.model, vars.effort);
  return [
    vars.binary,
    'run',
    '--format',
    'json',
    `--model=${providerModel(vars.model)}`,
    ...(variant ? [`--variant=${variant}`] : []),
    ...PERMISSION_FLAGS[cfg.permission_mode ?? 'bypass'],
    ...(vars.resumeSessionId ? [`--session=${vars.resumeSessionId}`] : []),
    ...(cfg.args ?? []),
    '--',
    promptWithAppend(cfg, vars.prompt),
  ];
}

/**
 * No self-update mid-run; OpenCode's config and data locations pass through
 * (logins live there). Its session database is kept in memory unless a
 * session is resumed: runs started at once on one data directory race on that
 * database's creation and locks ("database is locked") and fail.
 */
export function openCodeEnv(_cfg: AgentConfig, vars: LaunchVars): Record<string, string> {
  return {
    OPENCODE_DISABLE_AUTOUPDATE: '1',
    ...(vars.resumeSessionId ? {} : { OPENCODE_DB: ':memory:' }),
    ...passThrough(vars.parentEnv, [
      'OPENCODE_CONFIG',
      'OPENCODE_CONFIG_DIR',
      'XDG_CONFIG_HOME',
      'XDG_DATA_HOME',
      'XDG_STATE_HOME',
      'XDG_CACHE_HOME',
    ]),
  };
}
