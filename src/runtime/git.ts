/**
 * Git, always through an argv array (never a shell), so task titles and keys
 * can never become shell code.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { OrchError } from '../errors.ts';

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

const GIT_ENV = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_AUTHOR_NAME: 'orch',
  GIT_AUTHOR_EMAIL: 'orch@localhost',
  GIT_COMMITTER_NAME: 'orch',
  GIT_COMMITTER_EMAIL: 'orch@localhost',
};

/** Runs git and returns its outcome as a value. */
export function gitRaw(cwd: string, args: readonly string[], timeoutMs = 120_000): Promise<GitResult> {
  return new Promise((resolvePromise) => {
    execFile(
      'git',
      args as string[],
      { cwd, env: { ...process.env, ...GIT_ENV }, maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolvePromise({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Runs git; throws a clear error when it fails. */
export async function git(cwd: string, args: readonly string[]): Promise<string> {
  const r = await gitRaw(cwd, args);
  if (r.code !== 0) {
    throw new OrchError(
      'git_failed',
      `git ${args.join(' ')} failed in ${cwd}: ${r.stderr.trim() || r.stdout.trim()}`,
      {
        context: { args, cwd },
      },
    );
  }
  return r.stdout;
}

export async function isGitRepo(dir: string): Promise<boolean> {
  const r = await gitRaw(dir, ['rev-parse', '--is-inside-work-tree']);
  return r.code === 0 && r.stdout.trim() === 'true';
}

export async function repoRoot(dir: string): Promise<string> {
  return (await git(dir, ['rev-parse', '--show-toplevel'])).trim();
}

/** The checked-out branch, or `main` for a repository with no commit yet. */
export async function currentBranch(dir: string): Promise<string> {
  const r = await gitRaw(dir, ['symbolic-ref', '--short', 'HEAD']);
  return r.code === 0 ? r.stdout.trim() : 'main';
}

/** Branch names orch creates: `orch/<KEY>`; keys are validated before they get here. */
export const taskBranch = (key: string): string => `orch/${key}`;

export async function validBranchName(dir: string, name: string): Promise<boolean> {
  return (await gitRaw(dir, ['check-ref-format', '--branch', name])).code === 0;
}

/**
 * Creates the task's worktree on its branch, or reuses it. A new branch
 * starts at the current tip of the base branch.
 */
export async function ensureWorktree(
  repo: string,
  path: string,
  branch: string,
  base: string,
): Promise<void> {
  if (existsSync(path) && (await isGitRepo(path))) return;
  mkdirSync(dirname(path), { recursive: true });
  await gitRaw(repo, ['worktree', 'prune']);
  const hasBranch =
    (await gitRaw(repo, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`])).code === 0;
  const args = hasBranch
    ? ['worktree', 'add', '--force', path, branch]
    : ['worktree', 'add', '-b', branch, path, base];
  await git(repo, args);
}

/** Commits everything in the worktree; returns the new commit or null when nothing changed. */
export async function commitAll(worktree: string, message: string): Promise<string | null> {
  await git(worktree, ['add', '-A']);
  const status = await git(worktree, ['status', '--porcelain']);
  if (!status.trim()) return null;
  await git(worktree, ['commit', '-q', '--no-verify', '-m', message]);
  return (await git(worktree, ['rev-parse', 'HEAD'])).trim();
}

/**
 * Hash of the normalized diff between the base and the branch: what the task
 * changed, independent of commit ids, dates and how the work was split.
 */
export async function diffHash(worktree: string, base: string): Promise<string> {
  const mergeBase = (await git(worktree, ['merge-base', base, 'HEAD'])).trim();
  const diff = await git(worktree, [
    'diff',
    '--no-color',
    '--no-ext-diff',
    '--full-index',
    '--no-renames',
    mergeBase,
    'HEAD',
  ]);
  const normalized = diff
    .split('\n')
    .filter((l) => !l.startsWith('index '))
    .map((l) => l.trimEnd())
    .join('\n');
  return createHash('sha256').update(normalized).digest('hex');
}

export async function diffStat(worktree: string, base: string): Promise<string> {
  const r = await gitRaw(worktree, ['diff', '--stat', `${base}...HEAD`]);
  return r.code === 0 ? r.stdout : '';
}

export type MergeOutcome = { ok: true; commit: string } | { ok: false; conflicts: string[]; message: string };

/**
 * Lands the task branch on the base branch: first the base is merged into the
 * branch inside the worktree (a conflict is left there for the developer to
 * resolve), then the base
 * fast-forwards to it. A base checked out in the main worktree is updated with
 * `merge --ff-only` so the user's files follow; otherwise the ref moves with a
 * compare-and-swap.
 */
const landingLocks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier landing on the same repository (in this process) has finished. */
function serialized<T>(repo: string, fn: () => Promise<T>): Promise<T> {
  const previous = landingLocks.get(repo) ?? Promise.resolve();
  const next = previous.catch(() => {}).then(fn);
  landingLocks.set(repo, next);
  return next.finally(() => {
    if (landingLocks.get(repo) === next) landingLocks.delete(repo);
  });
}

export function landBranch(
  repo: string,
  worktree: string,
  branch: string,
  base: string,
): Promise<MergeOutcome> {
  return serialized(repo, async () => {
    // Another process may move the base between our merge and our fast-forward: merge again.
    for (let round = 0; ; round += 1) {
      const outcome = await landOnce(repo, worktree, branch, base);
      if (outcome.ok || outcome.conflicts.length || round >= 4) return outcome;
      if (!(await baseMovedSince(repo, worktree, base))) return outcome;
    }
  });
}

async function baseMovedSince(repo: string, worktree: string, base: string): Promise<boolean> {
  const r = await gitRaw(worktree, ['merge-base', '--is-ancestor', `refs/heads/${base}`, 'HEAD']);
  return r.code !== 0;
}

async function landOnce(repo: string, worktree: string, branch: string, base: string): Promise<MergeOutcome> {
  const merged = await gitRaw(worktree, ['merge', '--no-edit', '-q', base]);
  if (merged.code !== 0) {
    const conflicts = (await gitRaw(worktree, ['diff', '--name-only', '--diff-filter=U'])).stdout
      .split('\n')
      .filter(Boolean);
    // The merge stays in progress, conflict markers and all: the developer's rework resolves
    // it, and the commit after that run completes the merge onto the new base.
    if (!conflicts.length) await gitRaw(worktree, ['merge', '--abort']);
    return { ok: false, conflicts, message: merged.stderr.trim() || merged.stdout.trim() };
  }
  const tip = (await git(worktree, ['rev-parse', 'HEAD'])).trim();
  if ((await currentBranch(repo)) === base) {
    const ff = await gitRaw(repo, ['merge', '--ff-only', '-q', branch]);
    if (ff.code !== 0) {
      return {
        ok: false,
        conflicts: [],
        message: ff.stderr.trim() || 'fast-forward of the base branch failed',
      };
    }
  } else {
    const old = (await git(repo, ['rev-parse', `refs/heads/${base}`])).trim();
    const moved = await gitRaw(repo, ['update-ref', `refs/heads/${base}`, tip, old]);
    if (moved.code !== 0) return { ok: false, conflicts: [], message: moved.stderr.trim() };
  }
  return { ok: true, commit: tip };
}

export async function removeWorktree(repo: string, path: string): Promise<void> {
  await gitRaw(repo, ['worktree', 'remove', '--force', path]);
}
