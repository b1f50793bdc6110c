/**
 * The answers git.ts reads from the repository's files instead of spawning
 * git (commit ids, MERGE_HEAD, the checked-out branch) must be git's own, and
 * the shortcuts of commit, diff hash and landing must give what the long way
 * gives: checked here against git itself, on real repositories and worktrees.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  commitAll,
  currentBranch,
  diffHash,
  ensureWorktree,
  headCommit,
  landBranch,
  mergeInProgress,
  refCommit,
  removeCleanWorktree,
  reopenMergeConflict,
} from '../../src/runtime/git.ts';

let root: string;
let repo: string;
const sh = (cwd: string, args: string[]) =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@l',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@l',
    },
  }).trim();

beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'orch-git-fast-')));
  repo = join(root, 'repo');
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  writeFileSync(join(repo, 'README.md'), 'one\n');
  sh(repo, ['add', '-A']);
  sh(repo, ['commit', '-q', '-m', 'initial']);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const worktree = async (name: string) => {
  const path = join(root, 'wt', name);
  expect(await ensureWorktree(repo, path, `orch/${name}`, 'main')).toBe(true);
  return path;
};

describe('what git.ts reads from the files', () => {
  it('agrees with git on commit ids, loose and packed, in the main and a linked worktree', async () => {
    const wt = await worktree('T-1');
    writeFileSync(join(wt, 'a.txt'), 'a\n');
    await commitAll(wt, 'a');
    for (const dir of [repo, wt]) {
      expect(headCommit(dir)).toBe(sh(dir, ['rev-parse', 'HEAD']));
      expect(refCommit(dir, 'refs/heads/main')).toBe(sh(dir, ['rev-parse', 'refs/heads/main']));
      expect(refCommit(dir, 'refs/heads/orch/T-1')).toBe(sh(dir, ['rev-parse', 'refs/heads/orch/T-1']));
      expect(refCommit(dir, 'refs/heads/none')).toBeNull();
    }
    sh(repo, ['pack-refs', '--all']);
    expect(refCommit(wt, 'refs/heads/main')).toBe(sh(repo, ['rev-parse', 'main']));
    expect(headCommit(wt)).toBe(sh(wt, ['rev-parse', 'HEAD']));
    // A detached HEAD is a commit id in the HEAD file.
    sh(wt, ['checkout', '-q', '--detach']);
    expect(headCommit(wt)).toBe(sh(wt, ['rev-parse', 'HEAD']));
    expect(await currentBranch(repo)).toBe('main');
  });

  it('sees a merge in progress, and commitAll concludes it', async () => {
    const wt = await worktree('T-2');
    writeFileSync(join(wt, 'README.md'), 'branch\n');
    await commitAll(wt, 'branch edit');
    writeFileSync(join(repo, 'README.md'), 'main\n');
    sh(repo, ['commit', '-qam', 'main edit']);
    expect(mergeInProgress(wt)).toBe(false);
    // A conflicting merge stops with MERGE_HEAD in the worktree's own git directory.
    expect(() => sh(wt, ['merge', '-q', 'main'])).toThrow();
    expect(sh(wt, ['rev-parse', '-q', '--verify', 'MERGE_HEAD'])).toMatch(/^[0-9a-f]{40}$/);
    expect(mergeInProgress(wt)).toBe(true);
    expect(mergeInProgress(repo)).toBe(false);
    writeFileSync(join(wt, 'README.md'), 'resolved\n');
    const merged = await commitAll(wt, 'resolved');
    expect(sh(wt, ['rev-list', '--parents', '-n', '1', 'HEAD']).split(' ')).toHaveLength(3);
    expect(merged).toBe(sh(wt, ['rev-parse', 'HEAD']));
    expect(mergeInProgress(wt)).toBe(false);
  });
});

describe('the shortcuts give what the long way gives', () => {
  it('commitAll: nothing on a clean tree, a commit for new files, nothing for an edit undone', async () => {
    const wt = await worktree('T-3');
    expect(await commitAll(wt, 'nothing')).toBeNull();
    writeFileSync(join(wt, 'new.txt'), 'x\n');
    const commit = await commitAll(wt, 'new file');
    expect(commit).toBe(sh(wt, ['rev-parse', 'HEAD']));
    expect(sh(wt, ['status', '--porcelain'])).toBe('');
    // Staged, then undone in the tree: the status shows it, the commit has nothing to say.
    writeFileSync(join(wt, 'new.txt'), 'y\n');
    sh(wt, ['add', 'new.txt']);
    writeFileSync(join(wt, 'new.txt'), 'x\n');
    expect(await commitAll(wt, 'undone')).toBeNull();
    expect(sh(wt, ['rev-parse', 'HEAD'])).toBe(commit);
  });

  it('diffHash: a branch at the base tip hashes as the empty diff git would give', async () => {
    const wt = await worktree('T-4');
    const atTip = await diffHash(wt, 'main');
    writeFileSync(join(wt, 'b.txt'), 'b\n');
    await commitAll(wt, 'b');
    const changed = await diffHash(wt, 'main');
    expect(changed).not.toBe(atTip);
    // Undo the change in a new commit: the diff against the base is empty again, the long way.
    rmSync(join(wt, 'b.txt'));
    await commitAll(wt, 'undo b');
    expect(await diffHash(wt, 'main')).toBe(atTip);
  });

  it('landing: the base fast-forwards at once when it has not moved, and merges when it has', async () => {
    const one = await worktree('T-5');
    writeFileSync(join(one, 'one.txt'), '1\n');
    const first = (await commitAll(one, 'one'))!;
    expect(await landBranch(repo, one, 'orch/T-5', 'main')).toEqual({ ok: true, commit: first });
    expect(sh(repo, ['rev-parse', 'main'])).toBe(first);
    expect(sh(repo, ['show', 'main:one.txt'])).toBe('1');

    // T-6 started before T-5 landed: its landing must merge the new base in.
    const two = join(root, 'wt', 'T-6');
    sh(repo, ['worktree', 'add', '-q', '-b', 'orch/T-6', two, `${first}~1`]);
    writeFileSync(join(two, 'two.txt'), '2\n');
    await commitAll(two, 'two');
    const landed = await landBranch(repo, two, 'orch/T-6', 'main');
    expect(landed.ok).toBe(true);
    expect(sh(repo, ['show', 'main:one.txt'])).toBe('1');
    expect(sh(repo, ['show', 'main:two.txt'])).toBe('2');
    expect(sh(repo, ['merge-base', '--is-ancestor', first, 'main'])).toBe('');
  });

  it('reopenMergeConflict: nothing for a branch at the base tip, the conflict opened once the base moved against it', async () => {
    const wt = await worktree('T-8');
    writeFileSync(join(wt, 'README.md'), 'branch\n');
    // At the base tip (the edit is not committed): nothing to merge, the worktree untouched.
    expect(await reopenMergeConflict(wt, 'main')).toEqual([]);
    expect(mergeInProgress(wt)).toBe(false);
    await commitAll(wt, 'branch edit');
    // The base's own edit of the same line: the branch no longer merges, and the developer gets the merge.
    writeFileSync(join(repo, 'README.md'), 'base\n');
    sh(repo, ['commit', '-q', '-am', 'base edit']);
    expect(await reopenMergeConflict(wt, 'main')).toEqual(['README.md']);
    expect(mergeInProgress(wt)).toBe(true);
  });

  it('removeCleanWorktree keeps a worktree holding untracked or modified files, and removes a clean one', async () => {
    const wt = await worktree('T-7');
    writeFileSync(join(wt, 'stray.txt'), 'left behind\n');
    const kept: string[] = [];
    expect(await removeCleanWorktree(repo, wt, { info: (m) => kept.push(m) })).toBe(false);
    expect(kept.join('\n')).toContain('uncommitted');
    rmSync(join(wt, 'stray.txt'));
    expect(await removeCleanWorktree(repo, wt, { info: () => {} })).toBe(true);
    // Gone, and made again on the same branch on request.
    expect(await ensureWorktree(repo, wt, 'orch/T-7', 'main')).toBe(true);
  });
});
