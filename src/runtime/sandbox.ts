/**
 * The agent sandbox's policy (`agents.<role>.sandbox`): what an agent run
 * under bubblewrap may see and write. runtime/process/sandbox.ts builds the
 * bwrap command from the plan made here; docs/security.md#agent-sandbox says
 * what this protects against and what it does not.
 *
 * - Writable: the task's worktree, the worktree's own part of the git
 *   directory (its index), the role adapter's state directory (its login and
 *   sessions), `writable_paths`, and a private /tmp.
 * - Read-only: everything else of the system, and the repository's git
 *   directory (so status, diff and log work; orch commits the agent's work).
 * - Hidden: orch's home, state directory (database, logs, other worktrees),
 *   repository clones and database file, every registered project's checkout
 *   (its orch.yaml, its untracked files), /run (sockets of local services),
 *   credential files in HOME, other agent CLIs' logins, and `hidden_paths`.
 */
import { lstatSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import type { AgentConfig } from '../config/project-config.ts';
import { ADAPTER_NAMES, type AdapterName } from '../agents/adapter.ts';
import { adapterFor } from '../agents/registry.ts';
import type { OrchContext, ProjectRuntime } from './context.ts';
import type { SandboxMount, SandboxPlan } from './process/sandbox.ts';

export type SandboxConfig = AgentConfig['sandbox'];

/** Credentials and key stores under HOME that no agent needs, hidden in every sandbox. */
export const HOME_SECRETS: readonly string[] = [
  '.ssh',
  '.gnupg',
  '.aws',
  '.azure',
  '.config/gcloud',
  '.kube',
  '.docker',
  '.config/gh',
  '.config/hub',
  '.config/glab-cli',
  '.password-store',
  '.local/share/keyrings',
  '.terraform.d',
  '.vault-token',
  '.netrc',
  '.git-credentials',
  '.config/git/credentials',
  '.npmrc',
  '.yarnrc',
  '.yarnrc.yml',
  '.pypirc',
  '.cargo/credentials',
  '.cargo/credentials.toml',
  '.gem/credentials',
  '.m2/settings.xml',
  '.gradle/gradle.properties',
  '.pgpass',
  '.my.cnf',
  // browser profiles: cookies and saved passwords
  '.mozilla',
  '.config/google-chrome',
  '.config/chromium',
  '.config/BraveSoftware',
];

/** State a CLI writes besides the directory of its login file. */
const ADAPTER_STATE: Partial<Record<AdapterName, readonly string[]>> = {
  'claude-code': ['.claude.json'],
};

/** Adapters that are one known CLI (a command agent may wrap any, so it keeps every login visible). */
const CLI_ADAPTERS: ReadonlySet<AdapterName> = new Set(['claude-code', 'codex', 'gemini', 'opencode']);

/** `path` with symlinks resolved when it exists (bwrap mounts real paths), else normalized. */
function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return normalize(path);
  }
}

/**
 * A configured path: `~/…` under HOME, absolute as it is, anything else inside
 * the worktree; null for a `~` path when the agent has no HOME (nothing there to
 * expose or hide).
 */
export function resolveSandboxPath(path: string, home: string | undefined, worktree: string): string | null {
  if (path === '~' || path.startsWith('~/')) return home ? real(join(home, path.slice(1))) : null;
  return real(isAbsolute(path) ? path : resolve(worktree, path));
}

interface GitLayout {
  /** The worktree's own git directory (`<repo>/.git/worktrees/<name>`), or null for a plain checkout. */
  own: string | null;
  /** The repository's git directory: objects, refs, config, hooks. */
  common: string;
}

/** Where the worktree's git data lives, from its `.git` file (git's own layout, read without git). */
export function gitLayout(worktree: string): GitLayout | null {
  const dotGit = join(worktree, '.git');
  try {
    if (lstatSync(dotGit).isDirectory()) return { own: null, common: real(dotGit) };
    const m = /^gitdir: (.*)$/m.exec(readFileSync(dotGit, 'utf8'));
    if (!m) return null;
    const own = real(resolve(worktree, m[1]!.trim()));
    let common = own;
    try {
      common = real(resolve(own, readFileSync(join(own, 'commondir'), 'utf8').trim()));
    } catch {
      /* no commondir: the git dir is its own common dir */
    }
    return { own, common };
  } catch {
    return null;
  }
}

/**
 * The git mounts: the repository read-only (hooks and config can never be
 * planted for orch's own git commands to run outside the sandbox), the
 * worktree's own git directory writable (git status refreshes its index),
 * and the files that say which repository and branch the worktree belongs to
 * read-only (an agent that repointed them would have orch commit elsewhere).
 */
function gitMounts(worktree: string): SandboxMount[] {
  const layout = gitLayout(worktree);
  if (!layout) return [];
  const mounts: SandboxMount[] = [{ kind: 'ro', path: layout.common }];
  if (layout.own === null) {
    // A plain checkout: its .git is inside the writable worktree, so all of it is made read-only.
    mounts.push({ kind: 'ro', path: join(worktree, '.git') });
    return mounts;
  }
  mounts.push({ kind: 'rw', path: layout.own });
  for (const file of ['HEAD', 'commondir', 'gitdir'])
    mounts.push({ kind: 'ro', path: join(layout.own, file), optional: true });
  mounts.push({ kind: 'ro', path: join(worktree, '.git') });
  return mounts;
}

/** Login and state files of an adapter's CLI, given the agent's environment. */
function adapterFiles(adapter: AdapterName, env: Readonly<Record<string, string>>): string[] {
  return adapterFor(adapter).credentials?.files(env) ?? [];
}

export interface SandboxInput {
  config: SandboxConfig;
  adapter: AdapterName;
  worktree: string;
  /** The agent's environment (HOME, ORCH_SCRIPT_FILE). */
  env: Readonly<Record<string, string>>;
  /** The agent's argv: its executable, given by an absolute path, is made readable. */
  argv: readonly string[];
  /** The rendered prompt (inside orch's hidden logs): made readable. */
  promptFile: string | null;
  /** orch's own places: home, state and repos directories, database file, every project's checkout. */
  orchPaths: readonly string[];
  /** bwrap to use (`ORCH_BWRAP`); default `bwrap` on PATH. */
  bwrap?: string;
}

/** The sandbox of one run. */
export function sandboxPlan(input: SandboxInput): SandboxPlan {
  const { config, env } = input;
  const home = env.HOME;
  const worktree = real(input.worktree);
  const paths = (list: readonly string[]): string[] =>
    list.map((p) => resolveSandboxPath(p, home, worktree)).filter((p): p is string => p !== null);
  const mounts: SandboxMount[] = [];
  const hide = (p: string) => mounts.push({ kind: 'hide', path: real(p) });

  // orch's own state, and the local services' sockets (a database, docker, D-Bus).
  for (const p of input.orchPaths) hide(p);
  hide('/run');
  hide('/var/run');
  if (home) for (const p of HOME_SECRETS) hide(join(home, p));
  if (CLI_ADAPTERS.has(input.adapter))
    for (const other of ADAPTER_NAMES)
      if (other !== input.adapter && CLI_ADAPTERS.has(other))
        for (const file of adapterFiles(other, env)) hide(file);

  // The name server may live under the hidden /run (systemd-resolved).
  if (config.network) mounts.push({ kind: 'ro', path: real('/etc/resolv.conf'), optional: true });

  mounts.push({ kind: 'rw', path: worktree }, ...gitMounts(worktree));
  for (const file of adapterFiles(input.adapter, env))
    mounts.push({ kind: 'rw', path: real(dirname(file)), optional: true });
  if (home)
    for (const p of ADAPTER_STATE[input.adapter] ?? [])
      mounts.push({ kind: 'rw', path: real(join(home, p)), optional: true });

  // Files orch hands the agent: its prompt, the scripted agent's script, its executable (a binary
  // under the project's checkout, say). Never other argv elements: placeholders such as {key}
  // are filled from task data, which must not be able to name a hidden file into view.
  const handed = [input.promptFile, env.ORCH_SCRIPT_FILE, input.argv[0]].filter(
    (p): p is string => typeof p === 'string' && isAbsolute(p) && isFile(p),
  );
  for (const p of handed) mounts.push({ kind: 'ro', path: real(p), optional: true });

  // The role's own paths come last: at the same path they win over the defaults.
  for (const p of paths(config.writable_paths)) mounts.push({ kind: 'rw', path: p, optional: true });
  for (const p of paths(config.read_only_paths)) mounts.push({ kind: 'ro', path: p, optional: true });
  for (const p of paths(config.hidden_paths)) mounts.push({ kind: 'hide', path: p });

  return {
    ...(input.bwrap ? { bwrap: input.bwrap } : {}),
    network: config.network,
    mounts,
    // The agent's TMPDIR may be a directory it cannot write in here; its private /tmp it can.
    setEnv: { TMPDIR: '/tmp' },
  };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** orch's own places to hide from an agent: home, state, clones, database, every project's checkout. */
export async function orchPaths(ctx: OrchContext, rt: ProjectRuntime): Promise<string[]> {
  const { settings } = ctx;
  const db = settings.databaseUrl
    ? []
    : [settings.dbPath, ...['-wal', '-shm', '-journal'].map((s) => settings.dbPath + s)];
  const projects = await ctx.store.listProjects();
  return [
    ctx.home,
    settings.stateDir,
    settings.reposDir,
    ...db,
    rt.project.root_path,
    ...projects.map((p) => p.root_path),
  ];
}

/** The sandbox of a role's run, or undefined when the role runs unsandboxed. */
export async function sandboxForRun(
  ctx: OrchContext,
  rt: ProjectRuntime,
  cfg: AgentConfig,
  run: {
    worktree: string;
    env: Readonly<Record<string, string>>;
    argv: readonly string[];
    promptFile: string | null;
  },
): Promise<SandboxPlan | undefined> {
  if (!cfg.sandbox.enabled) return undefined;
  return sandboxPlan({
    config: cfg.sandbox,
    adapter: cfg.adapter,
    ...run,
    orchPaths: await orchPaths(ctx, rt),
    ...(ctx.env.ORCH_BWRAP ? { bwrap: ctx.env.ORCH_BWRAP } : {}),
  });
}
