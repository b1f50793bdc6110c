/**
 * Landing through a forge: instead of merging into the base locally, the
 * task branch (with origin's base merged in) is pushed to origin, a pull
 * request is opened (or the open one reused), its CI is looked at, and the
 * forge merges it. The local base then follows origin's. Every step is safe
 * to repeat: a landing cut off by a crash is simply taken again, and so is a
 * landing whose CI was still running (`pending`: the caller polls later,
 * without holding a worker meanwhile).
 */
import type { ForgeConfig } from '../trackers/config.ts';
import type { Forge, PullRequest } from '../trackers/types.ts';
import { answerReview, readReview } from '../trackers/review.ts';
import { FETCH, git, gitRaw, refreshBaseFromOrigin, trackingSpec, withRepoLock } from './git.ts';

export type ForgeLandOutcome =
  | { ok: true; commit: string; pr: PullRequest; detail: string }
  /** CI is still running, or a review is awaited: look again later (after `pollMs`). */
  | { ok: false; pending: true; cancelled?: undefined; message: string; pr: PullRequest; pollMs: number }
  /** `stillWanted` said no before the merge. */
  | { ok: false; pending?: undefined; cancelled: true; message: string }
  /** A person asked for changes on the pull request (`require_review`). */
  | {
      ok: false;
      pending?: undefined;
      cancelled?: undefined;
      changesRequested: { feedback: string; handled: string[] };
      message: string;
      pr: PullRequest;
    }
  | {
      ok: false;
      pending?: undefined;
      cancelled?: undefined;
      changesRequested?: undefined;
      /** The gate the failure counts against: CI red, or a merge the forge (or git) refused. */
      gate: 'check_ci_green' | 'check_merge_clean';
      message: string;
      conflicts: string[];
      pr: PullRequest | null;
    };

export interface ForgeLandInput {
  repo: string;
  worktree: string;
  branch: string;
  base: string;
  forge: Forge;
  config: ForgeConfig;
  title: string;
  body: string;
  signal?: AbortSignal;
  /** When the landing began (ms since the epoch): the CI wait counts from there, across polls. Default now. */
  since?: number;
  /** Longest CI wait before the gate fails; default 30 min. */
  ciTimeoutMs?: number;
  /** Asked right before the forge is told to merge: false calls the landing off. */
  stillWanted?: () => Promise<boolean>;
  /** Called once the pull request exists (to record it). */
  onPullRequest?: (pr: PullRequest) => Promise<void>;
  /**
   * Reviews and comments a developer attempt answered (a `changes_requested` decision's
   * `handled`): answered on the pull request once its commits are pushed, then `onAnswered`.
   */
  answer?: { handled: readonly string[]; onAnswered: () => Promise<void> } | null;
}

export async function landViaForge(input: ForgeLandInput): Promise<ForgeLandOutcome> {
  const { repo, worktree, branch, base, forge, config } = input;
  // Bring origin's base into the branch, so the pull request merges as tested.
  const prepared = await withRepoLock(repo, async () => {
    await git(repo, [...FETCH, 'origin', trackingSpec(base)]);
    const merged = await gitRaw(worktree, ['merge', '--no-edit', '-q', `refs/remotes/origin/${base}`]);
    if (merged.code !== 0) {
      const conflicts = (await gitRaw(worktree, ['diff', '--name-only', '--diff-filter=U'])).stdout
        .split('\n')
        .filter(Boolean);
      // As with a local landing, the conflict stays in progress for the developer to resolve.
      if (!conflicts.length) await gitRaw(worktree, ['merge', '--abort']);
      return { conflicts, message: merged.stderr.trim() || merged.stdout.trim() };
    }
    const pushed = await gitRaw(worktree, ['push', '-q', '--force', 'origin', `HEAD:refs/heads/${branch}`]);
    if (pushed.code !== 0) throw new Error(`git push of ${branch} to origin failed: ${pushed.stderr.trim()}`);
    return null;
  });
  if (prepared)
    return {
      ok: false,
      gate: 'check_merge_clean',
      message: prepared.conflicts.length
        ? `origin's ${base} conflicts with the branch: the merge is in progress in your worktree; resolve the conflict markers in ${prepared.conflicts.join(', ')}, then finish the change.`
        : prepared.message,
      conflicts: prepared.conflicts,
      pr: null,
    };

  const head = (await git(worktree, ['rev-parse', 'HEAD'])).trim();
  const pr = await forge.openPullRequest({ head: branch, base, title: input.title, body: input.body });
  await input.onPullRequest?.(pr);

  if (input.answer?.handled.length) {
    await answerReview(forge, pr, input.answer.handled, `Addressed in ${head.slice(0, 12)}.`);
    await input.answer.onAnswered();
  }

  if (config.require_ci) {
    const ci = await forge.ciStatus(head);
    if (ci.state === 'failure')
      return {
        ok: false,
        gate: 'check_ci_green',
        message: `CI failed on ${pr.url}: ${ci.summary}`,
        conflicts: [],
        pr,
      };
    if (ci.state !== 'success' && ci.state !== 'none') {
      if (Date.now() - (input.since ?? Date.now()) >= (input.ciTimeoutMs ?? 30 * 60_000))
        return {
          ok: false,
          gate: 'check_ci_green',
          message: `CI still pending on ${pr.url} after the wait: ${ci.summary}`,
          conflicts: [],
          pr,
        };
      return {
        ok: false,
        pending: true,
        message: `waiting for CI on ${pr.url}: ${ci.summary}`,
        pr,
        pollMs: config.ci_poll_s * 1000,
      };
    }
  }
  if (config.require_review) {
    // Merged only once someone other than orch approved, with no change asked for after it.
    const review = await readReview(forge, pr);
    if (review.kind === 'waiting')
      return { ok: false, pending: true, message: review.detail, pr, pollMs: config.review_poll_s * 1000 };
    if (review.kind === 'changes_requested')
      return {
        ok: false,
        changesRequested: { feedback: review.feedback, handled: review.handled },
        message: `changes requested on ${pr.url}`,
        pr,
      };
  }
  if (input.stillWanted && !(await input.stillWanted()))
    return { ok: false, cancelled: true, message: 'the landing was called off' };

  const merged = await forge.mergePullRequest(pr.number, config.merge_method);
  if (!merged.merged)
    return {
      ok: false,
      gate: 'check_merge_clean',
      message: `${forge.kind} refused to merge ${pr.url}: ${merged.message ?? 'no reason given'}`,
      conflicts: [],
      pr,
    };
  await withRepoLock(repo, () => refreshBaseFromOrigin(repo, base));
  const commit = merged.sha ?? (await git(repo, ['rev-parse', `refs/heads/${base}`])).trim();
  return {
    ok: true,
    commit,
    pr: { ...pr, state: 'merged' },
    detail: `merged ${pr.url} (${config.merge_method})`,
  };
}
