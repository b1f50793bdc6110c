/**
 * Gitea and Forgejo as a forge: pull requests, the combined commit status
 * (Gitea/Forgejo Actions and external CI both report commit statuses; there is
 * no checks API), merges, and reviews. Gitea's API cannot reply in a review
 * thread, so orch answers a review or a line comment with a comment on the
 * pull request that quotes it and carries an answer mark (review-marks.ts);
 * a line comment whose conversation someone resolved counts as answered too.
 */
import { z } from 'zod';
import { combineSignals, type CiSignal } from '../ci.ts';
import { httpError, Ignored } from '../http.ts';
import { answeredIds, markedAnswer } from '../review-marks.ts';
import type { CiState, Forge, LineComment, PullRequest, PullRequestReview } from '../types.ts';
import { TrackerError } from '../types.ts';
import {
  createGiteaClient,
  GiteaComment,
  GiteaPull,
  GiteaUser,
  messageOf,
  type GiteaClient,
  type GiteaOptions,
} from './client.ts';

const GiteaCombinedStatus = z.object({
  /** `''` (no status yet) or the worst of the statuses. */
  state: z.string(),
  total_count: z.number(),
  statuses: z.array(z.object({ context: z.string(), status: z.string() })).nullable(),
});

const GiteaReview = z.object({
  id: z.number(),
  user: GiteaUser.nullable(),
  /** APPROVED, REQUEST_CHANGES, COMMENT, PENDING or REQUEST_REVIEW. */
  state: z.string(),
  body: z.string(),
  submitted_at: z.string().nullable().optional(),
  dismissed: z.boolean().optional(),
  comments_count: z.number().optional(),
});

const GiteaReviewComment = z.object({
  id: z.number(),
  user: GiteaUser.nullable(),
  path: z.string(),
  /** The line in the new file; 0 when the comment is on a removed line. */
  position: z.number().optional(),
  /** The line in the old file. */
  original_position: z.number().optional(),
  body: z.string(),
  created_at: z.string(),
  /** Who resolved the conversation, when someone did. */
  resolver: GiteaUser.nullable().optional(),
});

const toPullRequest = (p: GiteaPull): PullRequest => ({
  number: p.number,
  url: p.html_url,
  head: p.head.ref,
  base: p.base.ref,
  state: p.merged ? 'merged' : p.state === 'closed' ? 'closed' : 'open',
});

const REVIEW_STATES: Record<string, PullRequestReview['state']> = {
  APPROVED: 'approved',
  REQUEST_CHANGES: 'changes_requested',
  COMMENT: 'commented',
};

/** A Gitea commit status (its state is in `status`); `warning` and `skipped` do not fail a commit. */
export function commitStatusSignal(s: { context: string; status: string }): CiSignal {
  if (s.status === 'failure' || s.status === 'error') return { name: s.context, outcome: 'failed' };
  if (s.status === 'success' || s.status === 'warning' || s.status === 'skipped') {
    return { name: s.context, outcome: 'passed' };
  }
  return { name: s.context, outcome: 'pending' };
}

async function findOpenPull(client: GiteaClient, head: string, base: string): Promise<PullRequest | null> {
  const pulls = await client.http.getAllPages(`${client.repoPath}/pulls?state=open`, GiteaPull, {
    pageSize: client.pageSize,
  });
  const found = pulls.find((p) => p.head.ref === head && p.base.ref === base);
  return found ? toPullRequest(found) : null;
}

/** `review:<n>` or `comment:<n>`, the ids `reviews` gives. */
function parseId(kind: string, id: string): { type: 'review' | 'comment'; n: number } {
  const m = /^(review|comment):([1-9][0-9]*)$/.exec(id);
  if (!m) throw new TrackerError(`${kind}: '${id}' is not a review or comment id of this forge`, 'invalid');
  return { type: m[1] as 'review' | 'comment', n: Number(m[2]) };
}

export function createGiteaForge(opts: GiteaOptions): Forge {
  const client = createGiteaClient(opts);
  const { http, kind, repoPath } = client;
  const pages = { pageSize: client.pageSize };

  return {
    kind,

    async openPullRequest({ head, base, title, body }): Promise<PullRequest> {
      const open = await findOpenPull(client, head, base);
      if (open) return open;
      try {
        const res = await http.request('POST', `${repoPath}/pulls`, GiteaPull, { head, base, title, body });
        return toPullRequest(res.body);
      } catch (err) {
        // 409 "pull request already exists": another caller opened it in between.
        if (err instanceof TrackerError && err.status === 409) {
          const raced = await findOpenPull(client, head, base);
          if (raced) return raced;
        }
        throw err;
      }
    },

    async ciStatus(ref: string): Promise<{ state: CiState; summary: string }> {
      const { body } = await http.get(
        `${repoPath}/commits/${encodeURIComponent(ref)}/status?limit=${client.pageSize}`,
        GiteaCombinedStatus,
      );
      const statuses = body.statuses ?? [];
      const result = combineSignals(statuses.map(commitStatusSignal));
      if (statuses.length < body.total_count) {
        // More statuses than one page: the server's combined state decides, the page only names some.
        const outcome = commitStatusSignal({ context: '', status: body.state }).outcome;
        const state: CiState =
          outcome === 'failed' ? 'failure' : outcome === 'pending' ? 'pending' : 'success';
        return {
          state,
          summary: `${result.summary} (${statuses.length} of ${body.total_count} statuses read)`,
        };
      }
      return result;
    },

    async mergePullRequest(number, method) {
      const path = `${repoPath}/pulls/${number}/merge`;
      const res = await http.send('POST', path, { Do: method });
      // 405: not mergeable (already merged, checks, style not allowed); 409: conflict or head moved.
      if (res.status === 405 || res.status === 409) {
        return { merged: false, message: messageOf(res.text) || `${kind} answered ${res.status}` };
      }
      if (res.status < 200 || res.status > 299)
        throw httpError(kind, 'POST', path, res.status, res.headers, res.text);
      const { body: pull } = await http.get(`${repoPath}/pulls/${number}`, GiteaPull);
      return { merged: true, ...(pull.merge_commit_sha ? { sha: pull.merge_commit_sha } : {}) };
    },

    async reviews(number) {
      const pullPath = `${repoPath}/pulls/${number}`;
      const { body: pull } = await http.get(pullPath, GiteaPull);
      const self = pull.user.login;
      const notSelf = (u: { login: string } | null | undefined) => !!u && u.login !== self;
      const [reviews, conversation] = await Promise.all([
        http.getAllPages(`${pullPath}/reviews`, GiteaReview, pages),
        http.getAllPages(`${repoPath}/issues/${number}/comments`, GiteaComment, pages),
      ]);
      const answered = answeredIds(conversation.filter((c) => c.user.login === self).map((c) => c.body));
      const comments: LineComment[] = [];
      for (const r of reviews) {
        if (r.dismissed || !r.comments_count) continue;
        const lines = await http.getAllPages(
          `${pullPath}/reviews/${r.id}/comments`,
          GiteaReviewComment,
          pages,
        );
        for (const c of lines.filter((c) => notSelf(c.user))) {
          const id = `comment:${c.id}`;
          comments.push({
            id,
            author: c.user!.login,
            path: c.path,
            line: c.position || c.original_position || null,
            body: c.body,
            createdAt: c.created_at,
            answered: answered.has(id) || !!c.resolver,
          });
        }
      }
      return {
        self,
        reviews: reviews
          .filter((r) => notSelf(r.user) && !r.dismissed && REVIEW_STATES[r.state] && r.submitted_at)
          .map((r) => ({
            id: `review:${r.id}`,
            author: r.user!.login,
            state: REVIEW_STATES[r.state]!,
            body: r.body,
            submittedAt: r.submitted_at!,
            answered: answered.has(`review:${r.id}`),
          })),
        comments: comments.sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
      };
    },

    async answer(number, id, body) {
      parseId(kind, id);
      await http.request('POST', `${repoPath}/issues/${number}/comments`, Ignored, {
        body: markedAnswer(id, body),
      });
    },
  };
}
