/**
 * The fix the "stale git lock files" fault called for, at git.ts's level:
 * lock files a killed git left are removed and the work goes on; a lock a
 * live git holds is waited for and never taken away.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { commitAll, gitRaw, landBranch } from '../../src/runtime/git.ts';
import { waitFor } from '../helpers/kit.ts';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@localhost',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@localhost',
};
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      process.kill(-c.pid!, 'SIGKILL');
      await once(c, 'exit');
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A repository on main with a task worktree on branch orch/T-1 that has a commit of its own. */
function repoWithWorktree(): { repo: string; worktree: string } {
  const root = mkdtempSync(join(tmpdir(), 'orch-locks-'));
  dirs.push(root);
  const repo = join(root, 'repo');
  const worktree = join(root, 'wt');
  const git = (cwd: string, args: string[]) =>
    execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' });
  mkdirSync(repo);
  git(repo, ['init', '-q', '-b', 'main']);
  writeFileSync(join(repo, 'a.txt'), 'a\n');
  git(repo, ['add', '-A']);
  git(repo, ['commit', '-q', '-m', 'initial']);
  git(repo, ['worktree', 'add', '-q', '-b', 'orch/T-1', worktree]);
  writeFileSync(join(worktree, 't.txt'), 't\n');
  git(worktree, ['add', '-A']);
  git(worktree, ['commit', '-q', '-m', 'task']);
  // The base moves on meanwhile, so landing is a real merge.
  writeFileSync(join(repo, 'b.txt'), 'b\n');
  git(repo, ['add', '-A']);
  git(repo, ['commit', '-q', '-m', 'base moved']);
  return { repo, worktree };
}

/** An empty lock file dated an hour back: what a git killed before this process started leaves. */
function staleLockAt(path: string): string {
  mkdirSync(join(path, '..'), { recursive: true });
  closeSync(openSync(path, 'w'));
  const past = new Date(Date.now() - 3_600_000);
  utimesSync(path, past, past);
  return path;
}

it('locks a killed git left (index, HEAD, branch refs, in the checkout and the worktree) are removed, and the task commits and lands', async () => {
  const { repo, worktree } = repoWithWorktree();
  const locks = [
    staleLockAt(join(repo, '.git', 'index.lock')),
    staleLockAt(join(repo, '.git', 'refs', 'heads', 'main.lock')),
    staleLockAt(join(repo, '.git', 'worktrees', 'wt', 'index.lock')),
    staleLockAt(join(repo, '.git', 'refs', 'heads', 'orch', 'T-1.lock')),
  ];
  writeFileSync(join(worktree, 'more.txt'), 'more\n');
  expect(await commitAll(worktree, 'T-1: more')).toMatch(/^[0-9a-f]{40}$/);
  const landed = await landBranch(repo, worktree, 'orch/T-1', 'main');
  expect(landed).toMatchObject({ ok: true });
  expect(execFileSync('git', ['ls-tree', '--name-only', 'main'], { cwd: repo, encoding: 'utf8' })).toContain(
    'more.txt',
  );
  expect(locks.filter((l) => existsSync(l))).toEqual([]);
});

it('a lock a live git holds is waited for, not removed; once that git is killed, its lock is cleared and the command runs', async () => {
  const { worktree } = repoWithWorktree();
  writeFileSync(join(worktree, 't.txt'), 'edited\n');
  // `git commit -a` holds the index lock while its editor is open; this editor never closes.
  const holder = spawn('git', ['commit', '-a'], {
    cwd: worktree,
    env: { ...GIT_ENV, GIT_EDITOR: 'sleep 600; true' },
    detached: true,
    stdio: 'ignore',
  });
  children.push(holder);
  const lock = join(worktree, '..', 'repo', '.git', 'worktrees', 'wt', 'index.lock');
  await waitFor(() => existsSync(lock), 10_000, 'git commit to take the index lock');

  let done = false;
  const adding = gitRaw(worktree, ['add', '-A']).finally(() => (done = true));
  // The command is waiting on the lock, and the live git's lock is still in place.
  await new Promise((r) => setTimeout(r, 1_000));
  expect(done).toBe(false);
  expect(existsSync(lock)).toBe(true);

  // Killed as the OOM killer would: its lock stays behind, stale now, and the waiting command
  // (which may already have found its owner gone) clears it and runs.
  process.kill(-holder.pid!, 'SIGKILL');
  await once(holder, 'exit');
  const r = await adding;
  expect(r.code, r.stderr).toBe(0);
  expect(existsSync(lock)).toBe(false);
});
