/**
 * The names of the agent adapters and of their permission modes: part of the
 * configuration's vocabulary (orch.yaml validates against them) as much as of
 * the adapters (agents/ builds one adapter per name). Pure data.
 */
export const ADAPTER_NAMES = ['scripted', 'command', 'claude-code', 'codex', 'gemini', 'opencode'] as const;
export type AdapterName = (typeof ADAPTER_NAMES)[number];

export const PERMISSION_MODES = ['bypass', 'edits', 'read_only'] as const;
/**
 * `bypass`: no prompts, no CLI sandbox (default); `edits`: file edits without
 * prompts, commands only as the CLI's own policy allows; `read_only`: the
 * CLI's plan or read-only mode.
 */
export type PermissionMode = (typeof PERMISSION_MODES)[number];
