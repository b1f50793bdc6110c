/**
 * Which agent `orch init` configures: the one asked for with `--agent`, else the first agent CLI
 * found on the user's PATH, in the order of {@link AGENT_CLIS} (docs/cli.md says it). The scripted
 * agent is only ever configured by name: it writes canned changes, so a first `orch run` with it
 * would merge them into the user's base branch.
 */
import { delimiter, resolve } from 'node:path';
import { onPath, ORCH_BIN_DIR } from '../../agents/binary.ts';
import { OrchError } from '../../errors.ts';

/** An agent CLI `orch init` can find and configure. */
export interface AgentCli {
  adapter: 'claude-code' | 'codex' | 'gemini' | 'opencode';
  /** The CLI's own name. */
  label: string;
  /** The executable looked up on PATH. */
  binary: string;
  /** How to install it. */
  install: string;
  /** `agents.default` keys besides `adapter`, as YAML lines (two-space indented under it). */
  config: string[];
}

/** In the order `orch init` prefers them. */
export const AGENT_CLIS: readonly AgentCli[] = [
  {
    adapter: 'claude-code',
    label: 'Claude Code',
    binary: 'claude',
    install: 'npm install -g @anthropic-ai/claude-code',
    config: [
      'pass_env: [ANTHROPIC_API_KEY]  # or a login in ~/.claude; orch passes on nothing else of its own',
    ],
  },
  {
    adapter: 'codex',
    label: 'Codex',
    binary: 'codex',
    install: 'npm install -g @openai/codex',
    config: [
      'model: gpt-5.5',
      'pass_env: [OPENAI_API_KEY]  # or `codex login`; orch passes on nothing else of its own',
    ],
  },
  {
    adapter: 'gemini',
    label: 'Gemini CLI',
    binary: 'gemini',
    install: 'npm install -g @google/gemini-cli',
    config: [
      'model: gemini-2.5-pro',
      'pass_env: [GEMINI_API_KEY]  # or a login in ~/.gemini; orch passes on nothing else of its own',
    ],
  },
  {
    adapter: 'opencode',
    label: 'OpenCode',
    binary: 'opencode',
    install: 'npm install -g opencode-ai',
    config: [
      'model: anthropic/claude-opus-4-8  # any provider/model OpenCode knows',
      'pass_env: [ANTHROPIC_API_KEY]  # the provider key, or `opencode auth login`',
    ],
  },
];

/** What `orch init` decided, and why (it says so). */
export type AgentChoice =
  | { kind: 'scripted' }
  | { kind: 'named'; cli: AgentCli; path: string | null }
  | { kind: 'found'; cli: AgentCli; path: string; alsoFound: AgentCli[] }
  | { kind: 'none' };

/** Adapter names `--agent` takes. */
export const INIT_AGENTS = ['scripted', ...AGENT_CLIS.map((c) => c.adapter)] as const;

/**
 * The user's PATH without orch's own `node_modules/.bin` (`npm run` puts it first, and in a
 * checkout it holds the agent CLIs orch is tested with: they are not the user's).
 */
export function userPath(pathVar: string | undefined, orchBinDir = ORCH_BIN_DIR): string {
  const own = resolve(orchBinDir);
  return (pathVar ?? '')
    .split(delimiter)
    .filter((dir) => dir && resolve(dir) !== own)
    .join(delimiter);
}

/** Decides the agent: `--agent` when given, else the first CLI found on the user's PATH. */
export function chooseAgent(agent: string | undefined, pathVar: string | undefined): AgentChoice {
  const path = userPath(pathVar);
  if (agent === 'scripted') return { kind: 'scripted' };
  if (agent !== undefined) {
    const cli = AGENT_CLIS.find((c) => c.adapter === agent);
    if (!cli)
      throw new OrchError(
        'invalid_argument',
        `--agent must be one of ${INIT_AGENTS.join(', ')}, got ${agent}`,
      );
    return { kind: 'named', cli, path: onPath(cli.binary, path) };
  }
  const found = AGENT_CLIS.flatMap((cli) => {
    const at = onPath(cli.binary, path);
    return at ? [{ cli, at }] : [];
  });
  const [first, ...rest] = found;
  if (!first) return { kind: 'none' };
  return { kind: 'found', cli: first.cli, path: first.at, alsoFound: rest.map((f) => f.cli) };
}

/** The adapter a choice configures; null when there is none. */
export function adapterOf(choice: AgentChoice): string | null {
  if (choice.kind === 'none') return null;
  return choice.kind === 'scripted' ? 'scripted' : choice.cli.adapter;
}

/** What `orch init` says about its choice (one or two lines). */
export function choiceText(choice: AgentChoice): string {
  const order = AGENT_CLIS.map((c) => c.label).join(', ');
  switch (choice.kind) {
    case 'scripted':
      return 'agent: scripted (orch’s built-in demo agent: it writes canned changes, not real work)';
    case 'named':
      return choice.path
        ? `agent: ${choice.cli.label} (${choice.cli.adapter}, ${choice.path}), as asked`
        : `agent: ${choice.cli.label} (${choice.cli.adapter}), as asked; \`${choice.cli.binary}\` is not on PATH yet: ${choice.cli.install}`;
    case 'found':
      return (
        `agent: ${choice.cli.label} (${choice.cli.adapter}, ${choice.path}): the first of ${order} on PATH` +
        (choice.alsoFound.length
          ? `; also found ${choice.alsoFound.map((c) => `${c.label} (--agent ${c.adapter})`).join(', ')}`
          : '')
      );
    case 'none':
      return noneFoundText();
  }
}

/** Why `orch init` stops when it finds no agent CLI, and what to do. */
export function noneFoundText(): string {
  const width = Math.max(...AGENT_CLIS.map((c) => c.label.length));
  return [
    `no agent CLI on PATH (looked for ${AGENT_CLIS.map((c) => c.binary).join(', ')}); install one:`,
    ...AGENT_CLIS.map((c) => `  ${c.label.padEnd(width)}  ${c.install}`),
    'then run `orch init` again, or pick one with --agent (`--agent scripted`: orch’s built-in demo agent, canned changes only)',
  ].join('\n');
}
