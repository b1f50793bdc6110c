/**
 * The names of the agent adapters and of their permission modes: part of the
 * configuration's vocabulary (orch.yaml validates against them) as much as of
 * the adapters (agents/ builds one adapter per name). Pure data, and the
 * fingerprint of a role's credential.
 */
import { createHash } from 'node:crypto';

export const ADAPTER_NAMES = ['scripted', 'command', 'claude-code', 'codex', 'gemini', 'opencode'] as const;
export type AdapterName = (typeof ADAPTER_NAMES)[number];

export const PERMISSION_MODES = ['bypass', 'edits', 'read_only'] as const;
/**
 * `bypass`: no prompts, no CLI sandbox (default); `edits`: file edits without
 * prompts, commands only as the CLI's own policy allows; `read_only`: the
 * CLI's plan or read-only mode.
 */
export type PermissionMode = (typeof PERMISSION_MODES)[number];

/**
 * Names in a role's `env` that choose whose account its agent uses: API keys and tokens, and the
 * CLIs' config directories (a different login).
 */
const ACCOUNT_NAME = /(?:TOKEN|SECRET|CREDENTIALS?|(?:^|_)KEY|_HOME|_CONFIG_DIR)$/i;

/**
 * Which credential a role's agent runs with, as a usage limit sees it: '' for orch's own
 * environment, or a short fingerprint of the account variables its `env` sets (never the values).
 * Roles with the same fingerprint share a provider's limit, so a limit pauses them together.
 */
export function credentialOf(env: Readonly<Record<string, string>>): string {
  const chosen = Object.entries(env)
    .filter(([name]) => ACCOUNT_NAME.test(name))
    .sort(([a], [b]) => a.localeCompare(b));
  if (chosen.length === 0) return '';
  const hash = createHash('sha256');
  for (const [name, value] of chosen) hash.update(`${name}=${value}\n`);
  return `env:${hash.digest('hex').slice(0, 12)}`;
}
