/**
 * Handoff through git, machine by machine: two clones of one bare remote play
 * two workers. A stage's commit published on one is what the next stage sees
 * on the other; a stale worker cannot overwrite a newer branch; landings from
 * both reach origin's base even when they race.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitAll, configureOrigin, ensureWorktree, landBranch, taskBranch } from '../../src/runtime/git.ts';
import { publishAfterStage, syncBeforeStage } from '../../src/runtime/handoff.ts';

let root = '';
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

/** A bare remote with one commit on main, and a clone of it per "machine". */
function setup<const M extends string>(machines: M[]): Record<M, string> {
  sh(root, ['init', '-q', '--bare', '-b', 'main', 'remote.git']);
  sh(root, ['init', '-q', '-b', 'main', 'seed']);
  writeFileSync(join(root, 'seed', 'README.md'), '# app\n');
  sh(join(root, 'seed'), ['add', '-A']);
  sh(join(root, 'seed'), ['commit', '-qm', 'initial']);
  sh(join(root, 'seed'), ['push', '-q', '../remote.git', 'main']);
  const clones = {} as Record<M, string>;
  for (const m of machines) {
    sh(root, ['clone', '-q', 'remote.git', m]);
    clones[m] = realpathSync(join(root, m));
  }
  return clones;
}

const remoteTip = (ref: string) => sh(join(root, 'remote.git'), ['rev-parse', ref]);
const remoteFile = (ref: string, path: string) => sh(join(root, 'remote.git'), ['show', `${ref}:${path}`]);

/** What the engine does around a stage, on one machine. */
async function stage(clone: string, key: string, write: Record<string, string>) {
  const worktree = join(clone, '..', `${clone.split('/').pop()}-wt`, key);
  await ensureWorktree(clone, worktree, taskBranch(key), 'main');
  const synced = await syncBeforeStage(worktree, taskBranch(key), 'main');
  for (const [path, content] of Object.entries(write)) writeFileSync(join(worktree, path), content);
  await commitAll(worktree, `${key}: stage`);
  await publishAfterStage(worktree, taskBranch(key));
  return { worktree, synced };
}

beforeEach(() => {
  // The handoff is on, as for workers on PostgreSQL (test files share a process, and a context
  // opened on SQLite in another one turns it off for the process).
  configureOrigin({ enabled: true });
  root = realpathSync(mkdtempSync(join(tmpdir(), 'orch-handoff-')));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('handoff through the git remote', () => {
  it('a stage published on one machine is where the next stage starts on another', async () => {
    const { a, b } = setup(['a', 'b']);
    const first = await stage(a, 'T-1', { 'analysis.md': 'from a\n' });
    expect(first.synced).toBe('new');
    expect(remoteFile('orch/T-1', 'analysis.md')).toBe('from a');

    const second = await stage(b, 'T-1', { 'design.md': 'from b\n' });
    expect(second.synced).toBe('updated');
    expect(readFileSync(join(second.worktree, 'analysis.md'), 'utf8')).toBe('from a\n');
    expect(remoteFile('orch/T-1', 'design.md')).toBe('from b');

    // Back on the first machine: its old worktree is brought forward, nothing of b's is lost.
    const third = await stage(a, 'T-1', { 'code.md': 'from a again\n' });
    expect(third.synced).toBe('updated');
    expect(readFileSync(join(third.worktree, 'design.md'), 'utf8')).toBe('from b\n');
    expect(sh(join(root, 'remote.git'), ['ls-tree', '--name-only', 'orch/T-1']).split('\n').sort()).toEqual([
      'README.md',
      'analysis.md',
      'code.md',
      'design.md',
    ]);
  });

  it('a stale worker cannot overwrite the branch another worker published', async () => {
    const { a, b } = setup(['a', 'b']);
    await stage(a, 'T-1', { 'one.md': '1\n' });
    const onB = await stage(b, 'T-1', { 'two.md': '2\n' });
    // a, which never synced, worked the same stage on the old tip: its publish is refused.
    const stale = join(root, 'a-wt', 'T-1');
    writeFileSync(join(stale, 'late.md'), 'late\n');
    await commitAll(stale, 'T-1: late');
    await expect(publishAfterStage(stale, 'orch/T-1')).rejects.toMatchObject({ code: 'git_failed' });
    expect(remoteTip('orch/T-1')).toBe(sh(onB.worktree, ['rev-parse', 'HEAD']));
    // The next sync there puts origin's record back in place of the refused work.
    expect(await syncBeforeStage(stale, 'orch/T-1', 'main')).toBe('updated');
    expect(existsSync(join(stale, 'late.md'))).toBe(false);
    expect(existsSync(join(stale, 'two.md'))).toBe(true);
  });

  it('keeps local work that builds on origin (a commit whose push has not happened yet)', async () => {
    const { a } = setup(['a']);
    const { worktree } = await stage(a, 'T-1', { 'one.md': '1\n' });
    writeFileSync(join(worktree, 'two.md'), '2\n');
    const ahead = await commitAll(worktree, 'T-1: not pushed');
    expect(await syncBeforeStage(worktree, 'orch/T-1', 'main')).toBe('current');
    expect(sh(worktree, ['rev-parse', 'HEAD'])).toBe(ahead);
    await publishAfterStage(worktree, 'orch/T-1');
    expect(remoteTip('orch/T-1')).toBe(ahead);
  });

  it('landings from two machines both reach origin, the later one merging the earlier', async () => {
    const { a, b } = setup(['a', 'b']);
    const one = await stage(a, 'T-1', { 'one.md': '1\n' });
    const two = await stage(b, 'T-2', { 'two.md': '2\n' });
    const first = await landBranch(a, one.worktree, 'orch/T-1', 'main');
    expect(first.ok).toBe(true);
    // b's main is stale: its first push is refused, it lands again on the new base.
    const second = await landBranch(b, two.worktree, 'orch/T-2', 'main');
    expect(second.ok).toBe(true);
    expect(remoteFile('main', 'one.md')).toBe('1');
    expect(remoteFile('main', 'two.md')).toBe('2');
    expect(sh(b, ['rev-parse', 'main'])).toBe(remoteTip('main'));
    // The next stage anywhere starts from the new base: a's main catches up on its next sync.
    await stage(a, 'T-3', {});
    expect(sh(a, ['rev-parse', 'main'])).toBe(remoteTip('main'));
  });

  it('racing landings on two machines both land, none lost', async () => {
    const { a, b } = setup(['a', 'b']);
    const tasks = await Promise.all([
      stage(a, 'T-1', { 'one.md': '1\n' }),
      stage(b, 'T-2', { 'two.md': '2\n' }),
      stage(a, 'T-3', { 'three.md': '3\n' }),
      stage(b, 'T-4', { 'four.md': '4\n' }),
    ]);
    const clones = [a, b, a, b];
    const landed = await Promise.all(
      tasks.map((t, i) => landBranch(clones[i]!, t.worktree, `orch/T-${i + 1}`, 'main')),
    );
    expect(landed.map((l) => l.ok)).toEqual([true, true, true, true]);
    const files = sh(join(root, 'remote.git'), ['ls-tree', '--name-only', 'main']).split('\n');
    expect(files.sort()).toEqual(['README.md', 'four.md', 'one.md', 'three.md', 'two.md']);
  });

  it('without an origin remote, handoff does nothing', async () => {
    sh(root, ['init', '-q', '-b', 'main', 'solo']);
    const solo = realpathSync(join(root, 'solo'));
    writeFileSync(join(solo, 'README.md'), '# solo\n');
    sh(solo, ['add', '-A']);
    sh(solo, ['commit', '-qm', 'initial']);
    const { worktree, synced } = await stage(solo, 'T-1', { 'x.md': 'x\n' });
    expect(synced).toBe('local');
    expect(sh(worktree, ['log', '--format=%s', '-1'])).toBe('T-1: stage');
    const landed = await landBranch(solo, worktree, 'orch/T-1', 'main');
    expect(landed.ok).toBe(true);
    expect(sh(solo, ['show', 'main:x.md'])).toBe('x');
  });
});
