/**
 * Handoff through git: consecutive stages of a task may run on different
 * machines, each in a worktree of its own clone. A stage starts from the task
 * branch as origin has it, and its commit is pushed to origin before the
 * stage's advance is recorded, so whoever claims the next stage finds it.
 *
 * On only when the project's repository has an `origin` remote (and
 * `ORCH_GIT_HANDOFF` is not `off`); without one, both calls do nothing.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { realpathSync } from 'node:fs';
import {
  FETCH,
  fastForwardBase,
  git,
  gitRaw,
  hasOrigin,
  isAncestor,
  refTips,
  trackingSpec,
  withRepoLock,
} from './git.ts';
import { OrchError } from '../errors.ts';

/** What {@link syncBeforeStage} did to the worktree. */
export type SyncOutcome =
  /** No origin: nothing to do. */
  | 'local'
  /** origin has no such branch yet (the task's first stage). */
  | 'new'
  /** The worktree already had origin's commit, or commits of its own on top of it. */
  | 'current'
  /** The worktree was moved to origin's commit (another machine worked the last stage). */
  | 'updated';

const repos = new Map<string, string>();

/** The repository (main worktree) a worktree belongs to. */
async function repoOf(worktree: string): Promise<string> {
  let repo = repos.get(worktree);
  if (!repo) {
    const common = (await git(worktree, ['rev-parse', '--git-common-dir'])).trim();
    repo = realpathSync(dirname(isAbsolute(common) ? common : resolve(worktree, common)));
    repos.set(worktree, repo);
  }
  return repo;
}

/**
 * Before a stage: brings the local base up to origin's (diff hashes are taken
 * against it) and the worktree to origin's tip of the task branch. Work that
 * origin does not have yet but that builds on its tip (a commit whose push
 * failed, a landing conflict left for the developer) is kept; a worktree that
 * fell behind or went another way is reset to origin, which is the record of
 * what the last stage produced.
 */
export async function syncBeforeStage(worktree: string, branch: string, base: string): Promise<SyncOutcome> {
  const repo = await repoOf(worktree);
  if (!(await hasOrigin(repo))) return 'local';
  const local = `refs/heads/${branch}`;
  const tracking = `refs/remotes/origin/${branch}`;
  const refs = [local, tracking, `refs/heads/${base}`, `refs/remotes/origin/${base}`];
  return withRepoLock(repo, async () => {
    // One fetch for the base and the branch; the branch is missing before the task's first publish.
    const both = await gitRaw(worktree, [...FETCH, 'origin', trackingSpec(base), trackingSpec(branch)]);
    if (both.code !== 0) {
      if (!/couldn't find remote ref|no such ref/i.test(both.stderr)) {
        throw new OrchError(
          'git_failed',
          `git fetch of ${branch} from origin failed: ${both.stderr.trim()}`,
          {
            context: { worktree, branch },
          },
        );
      }
      await git(worktree, [...FETCH, 'origin', trackingSpec(base)]);
      await fastForwardBase(repo, base);
      const tips = await refTips(worktree, refs);
      // A stale tracking ref would make the first publish look like an overwrite.
      if (tips.has(tracking)) await gitRaw(worktree, ['update-ref', '-d', tracking]);
      // A branch with no commit of its own starts from the base as origin has it now.
      const head = tips.get(local);
      const baseTip = tips.get(`refs/heads/${base}`);
      if (head && baseTip && head !== baseTip && (await isAncestor(worktree, head, baseTip))) {
        await git(worktree, ['reset', '-q', '--hard', baseTip]);
      }
      return 'new';
    }
    const tips = await refTips(worktree, refs);
    await fastForwardBase(repo, base, tips);
    const remote = tips.get(tracking);
    const head = tips.get(local);
    if (!remote) return 'new';
    if (head && (head === remote || (await isAncestor(worktree, remote, head)))) return 'current';
    await gitRaw(worktree, ['merge', '--abort']);
    await git(worktree, ['reset', '-q', '--hard', remote]);
    await git(worktree, ['clean', '-q', '-fd']);
    return 'updated';
  });
}

/**
 * After a stage's commit: pushes the task branch to origin. A refused push
 * (another worker published this stage first) throws, so this stage is not
 * advanced: the compare-and-set in the store is what decides, and the loser
 * must not overwrite the winner's branch.
 */
export async function publishAfterStage(worktree: string, branch: string): Promise<void> {
  const repo = await repoOf(worktree);
  if (!(await hasOrigin(repo))) return;
  await withRepoLock(repo, async () => {
    const tracking = `refs/remotes/origin/${branch}`;
    const tips = await refTips(worktree, [`refs/heads/${branch}`, tracking]);
    if (tips.get(`refs/heads/${branch}`) === tips.get(tracking) && tips.has(tracking)) return;
    const pushed = await gitRaw(worktree, ['push', '-q', 'origin', `HEAD:refs/heads/${branch}`]);
    if (pushed.code !== 0) {
      throw new OrchError('git_failed', `git push of ${branch} to origin failed: ${pushed.stderr.trim()}`, {
        context: { worktree, branch },
      });
    }
  });
}
