/**
 * GitHub as a forge: pull requests, the CI state of a commit (check runs and
 * commit statuses together, since a repository may use either), merges, and
 * reviews. A line comment is answered by a reply in its thread; a review as
 * a whole by a comment on the pull request. Either carries an answer mark
 * (review-marks.ts): GitHub's REST API cannot resolve a thread, so the marks
 * are what tells the next read what orch answered.
 */
import { combineSignals, type CiSignal } from '../ci.ts';
import { answeredIds, markedAnswer } from '../review-marks.ts';
import { TrackerError, type CiState, type Forge, type LineComment, type PullRequest } from '../types.ts';
import {
  call,
  createGitHubClient,
  statusOf,
  toTrackerError,
  vendorMessage,
  type GitHubClient,
  type GitHubOptions,
} from './client.ts';

interface PullShape {
  number: number;
  html_url: string;
  state: string;
  merged_at: string | null;
  head: { ref: string };
  base: { ref: string };
}

const toPullRequest = (p: PullShape): PullRequest => ({
  number: p.number,
  url: p.html_url,
  head: p.head.ref,
  base: p.base.ref,
  state: p.merged_at ? 'merged' : p.state === 'closed' ? 'closed' : 'open',
});

/** Check run conclusions that fail (`stale`: GitHub gave up on a run that never finished). */
const FAILED_CONCLUSIONS = new Set([
  'failure',
  'cancelled',
  'timed_out',
  'action_required',
  'startup_failure',
  'stale',
]);

export function checkRunSignal(run: { name: string; status: string; conclusion: string | null }): CiSignal {
  if (run.status !== 'completed' || run.conclusion === null) return { name: run.name, outcome: 'pending' };
  return { name: run.name, outcome: FAILED_CONCLUSIONS.has(run.conclusion) ? 'failed' : 'passed' };
}

export function commitStatusSignal(status: { context: string; state: string }): CiSignal {
  const outcome =
    status.state === 'success'
      ? 'passed'
      : status.state === 'failure' || status.state === 'error'
        ? 'failed'
        : 'pending';
  return { name: status.context, outcome };
}

async function findOpenPull(client: GitHubClient, head: string, base: string): Promise<PullRequest | null> {
  const { octokit, owner, repo } = client;
  const pulls = await call(`GET open pull requests of ${client.slug} from ${head}`, () =>
    octokit.paginate(octokit.rest.pulls.list, {
      owner,
      repo,
      state: 'open',
      head: `${owner}:${head}`,
      base,
      per_page: 100,
    }),
  );
  const found = pulls.find((p) => p.head.ref === head && p.base.ref === base);
  return found ? toPullRequest(found) : null;
}

const REVIEW_STATES = {
  APPROVED: 'approved',
  CHANGES_REQUESTED: 'changes_requested',
  COMMENTED: 'commented',
} as const;

/** The review comments of one thread: its first comment and the replies to it, in order. */
interface ThreadComment {
  id: number;
  in_reply_to_id?: number;
  user: { login: string } | null;
  path: string;
  line?: number | null;
  original_line?: number | null;
  body: string;
  created_at: string;
}

/**
 * A thread as one line comment: the comments people wrote after orch's last
 * reply are what is left to answer (all of them when orch never replied).
 */
export function threadComment(
  thread: ThreadComment[],
  self: string,
  answered: Set<string>,
): LineComment | null {
  const [root] = thread;
  if (!root) return null;
  const id = `comment:${root.id}`;
  const lastOwn = thread.findLastIndex((c) => c.user?.login === self);
  const after = thread.slice(lastOwn + 1).filter((c) => c.user && c.user.login !== self);
  const pending = lastOwn < 0 && answered.has(id) ? [] : after;
  const shown = pending.length > 0 ? pending : thread.filter((c) => c.user?.login !== self);
  if (shown.length === 0) return null;
  return {
    id,
    author: shown[0]!.user!.login,
    path: root.path,
    line: root.line ?? root.original_line ?? null,
    body: shown.map((c) => c.body.trim()).join('\n\n'),
    createdAt: shown[0]!.created_at,
    answered: pending.length === 0,
  };
}

export function createGitHubForge(opts: GitHubOptions): Forge {
  const client = createGitHubClient(opts);
  const { octokit, owner, repo } = client;
  const pr = (n: number) => `pull request #${n} in ${client.slug}`;

  return {
    kind: 'github',

    async openPullRequest({ head, base, title, body }): Promise<PullRequest> {
      const open = await findOpenPull(client, head, base);
      if (open) return open;
      try {
        const { data } = await octokit.rest.pulls.create({ owner, repo, head, base, title, body });
        return toPullRequest(data);
      } catch (err) {
        // 422 "A pull request already exists": another caller opened it in between.
        if (statusOf(err) === 422) {
          const raced = await findOpenPull(client, head, base);
          if (raced) return raced;
        }
        throw toTrackerError(err, `POST pull request ${head} → ${base} in ${client.slug}`);
      }
    },

    async ciStatus(ref: string): Promise<{ state: CiState; summary: string }> {
      const runs = await call(`GET check runs of ${ref} in ${client.slug}`, () =>
        octokit.paginate(octokit.rest.checks.listForRef, { owner, repo, ref, per_page: 100 }),
      );
      // The combined status holds the latest status of each context.
      const { data: combined } = await call(`GET combined status of ${ref} in ${client.slug}`, () =>
        octokit.rest.repos.getCombinedStatusForRef({ owner, repo, ref, per_page: 100 }),
      );
      return combineSignals([...runs.map(checkRunSignal), ...combined.statuses.map(commitStatusSignal)]);
    },

    async mergePullRequest(number, method) {
      try {
        const { data } = await octokit.rest.pulls.merge({
          owner,
          repo,
          pull_number: number,
          merge_method: method,
        });
        return { merged: data.merged, sha: data.sha, message: data.message };
      } catch (err) {
        // 405: not mergeable (conflict, failing required checks, method not allowed); 409: the head moved.
        const status = statusOf(err);
        if (status === 405 || status === 409) return { merged: false, message: vendorMessage(err) };
        throw toTrackerError(err, `PUT merge of pull request #${number} in ${client.slug}`);
      }
    },

    async reviews(number) {
      const pull_number = number;
      const { data: pull } = await call(`GET ${pr(number)}`, () =>
        octokit.rest.pulls.get({ owner, repo, pull_number }),
      );
      const self = pull.user.login;
      const [reviews, lineComments, conversation] = await Promise.all([
        call(`GET reviews of ${pr(number)}`, () =>
          octokit.paginate(octokit.rest.pulls.listReviews, { owner, repo, pull_number, per_page: 100 }),
        ),
        call(`GET review comments of ${pr(number)}`, () =>
          octokit.paginate(octokit.rest.pulls.listReviewComments, {
            owner,
            repo,
            pull_number,
            per_page: 100,
          }),
        ),
        call(`GET comments of ${pr(number)}`, () =>
          octokit.paginate(octokit.rest.issues.listComments, {
            owner,
            repo,
            issue_number: number,
            per_page: 100,
          }),
        ),
      ]);
      const own = (u: { login: string } | null | undefined) => u?.login === self;
      const answered = answeredIds(
        [...conversation, ...lineComments].filter((c) => own(c.user)).map((c) => c.body ?? ''),
      );
      const threads = new Map<number, ThreadComment[]>();
      for (const c of [...lineComments].sort((a, b) => a.created_at.localeCompare(b.created_at))) {
        const root = c.in_reply_to_id ?? c.id;
        threads.set(root, [...(threads.get(root) ?? []), c]);
      }
      return {
        self,
        reviews: reviews.flatMap((r) => {
          const state = REVIEW_STATES[r.state as keyof typeof REVIEW_STATES];
          if (!state || !r.user || own(r.user) || !r.submitted_at) return [];
          const id = `review:${r.id}`;
          return [
            {
              id,
              author: r.user.login,
              state,
              body: r.body ?? '',
              submittedAt: r.submitted_at,
              answered: answered.has(id),
            },
          ];
        }),
        comments: [...threads.values()]
          .map((t) => threadComment(t, self, answered))
          .filter((c): c is LineComment => c !== null)
          .sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
      };
    },

    async answer(number, id, body) {
      const m = /^(review|comment):([1-9][0-9]*)$/.exec(id);
      if (!m)
        throw new TrackerError(`github: '${id}' is not a review or comment id of this forge`, 'invalid');
      const text = markedAnswer(id, body);
      if (m[1] === 'comment') {
        await call(`POST reply to comment ${m[2]} of ${pr(number)}`, () =>
          octokit.rest.pulls.createReplyForReviewComment({
            owner,
            repo,
            pull_number: number,
            comment_id: Number(m[2]),
            body: text,
          }),
        );
        return;
      }
      await call(`POST comment on ${pr(number)}`, () =>
        octokit.rest.issues.createComment({ owner, repo, issue_number: number, body: text }),
      );
    },
  };
}
