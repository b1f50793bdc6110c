/**
 * What a forge does to its repository when a pull request is merged, done
 * for real on a bare repository (the project's `origin`): a temporary clone
 * checks out the base, merges, squashes or rebases the head into it, and
 * pushes the base back, so the base then holds the pull request's change.
 * git here is 2.39 (no `merge-tree --write-tree`), hence the clone. A
 * conflict leaves the bare repository untouched.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export type MergeMethod = 'merge' | 'squash' | 'rebase';

export type MergeOutcome =
  | { ok: true; sha: string }
  /** `conflict`: the head does not apply on the base; `moved`: the base changed under the merge; `empty`: nothing to merge. */
  | { ok: false; reason: 'conflict' | 'moved' | 'empty'; message: string };

const GIT_ENV = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_AUTHOR_NAME: 'Fake Forge',
  GIT_AUTHOR_EMAIL: 'forge@fake.invalid',
  GIT_COMMITTER_NAME: 'Fake Forge',
  GIT_COMMITTER_EMAIL: 'forge@fake.invalid',
};

interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

function git(cwd: string, args: string[]): Promise<GitResult> {
  return new Promise((resolve) => {
    execFile(
      'git',
      ['-c', 'commit.gpgsign=false', ...args],
      { cwd, env: { ...process.env, ...GIT_ENV }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

async function gitOk(cwd: string, args: string[]): Promise<string> {
  const r = await git(cwd, args);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} in ${cwd} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The commit a branch, tag or sha names in the bare repository, or null. */
export async function resolveCommit(bare: string, ref: string): Promise<string | null> {
  const r = await git(bare, ['rev-parse', '--verify', '-q', `${ref}^{commit}`]);
  return r.code === 0 ? r.stdout.trim() : null;
}

/** Whether the bare repository has the branch. */
export async function hasBranch(bare: string, branch: string): Promise<boolean> {
  return (await git(bare, ['show-ref', '--verify', '-q', `refs/heads/${branch}`])).code === 0;
}

let queue: Promise<unknown> = Promise.resolve();

/** Merges `head` into `base` in the bare repository; merges run one at a time. */
export function mergeInBareRepo(
  bare: string,
  p: { base: string; head: string; method: MergeMethod; title: string },
): Promise<MergeOutcome> {
  const run = queue.then(() => mergeOnce(bare, p));
  queue = run.catch(() => undefined);
  return run;
}

async function mergeOnce(
  bare: string,
  { base, head, method, title }: { base: string; head: string; method: MergeMethod; title: string },
): Promise<MergeOutcome> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-forge-merge-'));
  try {
    await gitOk(dir, ['clone', '-q', '--branch', base, bare, '.']);
    const theirs = `origin/${head}`;
    const conflict = (r: GitResult): MergeOutcome => ({
      ok: false,
      reason: 'conflict',
      message: `${head} does not ${method} cleanly into ${base}: ${(r.stdout + r.stderr).trim().split('\n')[0]}`,
    });
    if (method === 'merge') {
      const r = await git(dir, ['merge', '--no-ff', '-q', '-m', title, theirs]);
      if (r.code !== 0) return conflict(r);
    } else if (method === 'squash') {
      const r = await git(dir, ['merge', '--squash', '-q', theirs]);
      if (r.code !== 0) return conflict(r);
      if ((await git(dir, ['diff', '--cached', '--quiet'])).code === 0) {
        return { ok: false, reason: 'empty', message: `${head} has nothing to merge into ${base}` };
      }
      await gitOk(dir, ['commit', '-q', '-m', title]);
    } else {
      await gitOk(dir, ['checkout', '-q', '-b', 'fake-forge-rebase', theirs]);
      const r = await git(dir, ['rebase', '-q', base]);
      if (r.code !== 0) return conflict(r);
      await gitOk(dir, ['checkout', '-q', base]);
      await gitOk(dir, ['merge', '--ff-only', '-q', 'fake-forge-rebase']);
    }
    const push = await git(dir, ['push', '-q', 'origin', `HEAD:refs/heads/${base}`]);
    if (push.code !== 0)
      return { ok: false, reason: 'moved', message: `${base} moved during the merge: ${push.stderr.trim()}` };
    return { ok: true, sha: await gitOk(dir, ['rev-parse', 'HEAD']) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A bare repository standing for a project's `origin`, with a working clone to make branches in. */
export interface OriginRepo {
  /** The bare repository: give it to a fake forge. */
  bare: string;
  /** Commits `files` on `branch` (created from `from`, `main` unless told) and pushes it; the new sha. */
  commit(branch: string, files: Record<string, string>, opts?: { from?: string; message?: string }): string;
  /** A file at a ref of the bare repository, or null when it is not there. */
  show(ref: string, path: string): string | null;
  /** The commit a ref names in the bare repository. */
  rev(ref: string): string;
  /** Whether commit `a` is an ancestor of (contained in) `b` in the bare repository. */
  contains(b: string, a: string): boolean;
  cleanup(): void;
}

/** A new origin whose `main` holds one commit (README.md). */
export function makeOriginRepo(): OriginRepo {
  const root = mkdtempSync(join(tmpdir(), 'fake-forge-origin-'));
  const bare = join(root, 'origin.git');
  const work = join(root, 'work');
  const run = (cwd: string, args: string[]) =>
    execFileSync('git', ['-c', 'commit.gpgsign=false', ...args], {
      cwd,
      env: { ...process.env, ...GIT_ENV },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  run(root, ['init', '-q', '--bare', '-b', 'main', bare]);
  run(root, ['clone', '-q', bare, work]);
  run(work, ['checkout', '-q', '-b', 'main']);
  writeFileSync(join(work, 'README.md'), '# app\n');
  run(work, ['add', '-A']);
  run(work, ['commit', '-q', '-m', 'initial']);
  run(work, ['push', '-q', 'origin', 'main']);
  return {
    bare,
    commit(branch, files, opts = {}) {
      run(work, ['fetch', '-q', 'origin']);
      const exists = run(work, ['ls-remote', '--heads', 'origin', branch]) !== '';
      run(work, ['checkout', '-q', '-B', branch, `origin/${exists ? branch : (opts.from ?? 'main')}`]);
      for (const [path, content] of Object.entries(files)) {
        mkdirSync(dirname(join(work, path)), { recursive: true });
        writeFileSync(join(work, path), content);
      }
      run(work, ['add', '-A']);
      run(work, [
        'commit',
        '-q',
        '-m',
        opts.message ?? `change ${Object.keys(files).join(', ')} on ${branch}`,
      ]);
      run(work, ['push', '-q', 'origin', `HEAD:refs/heads/${branch}`]);
      return run(work, ['rev-parse', 'HEAD']);
    },
    show(ref, path) {
      try {
        return run(bare, ['show', `${ref}:${path}`]);
      } catch {
        return null;
      }
    },
    rev: (ref) => run(bare, ['rev-parse', `${ref}^{commit}`]),
    contains(b, a) {
      try {
        run(bare, ['merge-base', '--is-ancestor', a, b]);
        return true;
      } catch {
        return false;
      }
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/**
 * Rebases `head` onto `base` in the bare repository, as a forge's rebase
 * button does: `head` is force-pushed, `base` stays. A conflict leaves both.
 */
export function rebaseInBareRepo(bare: string, p: { base: string; head: string }): Promise<MergeOutcome> {
  const run = queue.then(() => rebaseOnce(bare, p));
  queue = run.catch(() => undefined);
  return run;
}

async function rebaseOnce(
  bare: string,
  { base, head }: { base: string; head: string },
): Promise<MergeOutcome> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-forge-rebase-'));
  try {
    await gitOk(dir, ['clone', '-q', '--branch', head, bare, '.']);
    const r = await git(dir, ['rebase', '-q', `origin/${base}`]);
    if (r.code !== 0) {
      return {
        ok: false,
        reason: 'conflict',
        message: `${head} does not rebase onto ${base}: ${r.stderr.trim()}`,
      };
    }
    const push = await git(dir, ['push', '-q', '--force', 'origin', `HEAD:refs/heads/${head}`]);
    if (push.code !== 0) return { ok: false, reason: 'moved', message: push.stderr.trim() };
    return { ok: true, sha: await gitOk(dir, ['rev-parse', 'HEAD']) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
