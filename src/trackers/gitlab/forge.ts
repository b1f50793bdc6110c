/**
 * GitLab as a forge, over gitbeaker: merge requests, their pipelines as CI,
 * merges, and the review loop. On GitLab a review is its approvals (who
 * approved), its reviewers' states (a standing "requested changes" holds the
 * merge until that reviewer approves, as GitLab's own merge check does) and
 * its diff discussions (a comment on a line is a thread, answered by a reply
 * and resolved). A `pullRequest` number is the merge request's iid.
 */
import { z } from 'zod';
import { combineSignals, type CiSignal } from '../ci.ts';
import { answeredIds, markedAnswer } from '../review-marks.ts';
import {
  TrackerError,
  type CiState,
  type Forge,
  type LineComment,
  type PullRequest,
  type PullRequestReview,
} from '../types.ts';
import {
  createGitLabClient,
  GitLabUser,
  iidOf,
  parse,
  type GitLabClient,
  type GitLabOptions,
} from './client.ts';

const GitLabMergeRequest = z.object({
  iid: z.number(),
  web_url: z.string(),
  /** opened, closed, locked or merged. */
  state: z.string(),
  source_branch: z.string(),
  target_branch: z.string(),
  author: GitLabUser,
  merge_commit_sha: z.string().nullable().optional(),
  squash_commit_sha: z.string().nullable().optional(),
  updated_at: z.string(),
  rebase_in_progress: z.boolean().optional(),
  merge_error: z.string().nullable().optional(),
});
type GitLabMergeRequest = z.infer<typeof GitLabMergeRequest>;

const Pipeline = z.object({ id: z.number(), status: z.string(), web_url: z.string().optional() });

const Approvals = z.object({
  approved_by: z
    .array(z.object({ user: GitLabUser, approved_at: z.string().nullable().optional() }))
    .default([]),
});

const Reviewer = z.object({ user: GitLabUser, state: z.string() });

const Note = z.object({
  id: z.number(),
  body: z.string(),
  author: GitLabUser,
  created_at: z.string(),
  system: z.boolean().default(false),
  resolvable: z.boolean().default(false),
  resolved: z.boolean().optional(),
  position: z
    .object({
      new_path: z.string().nullable().optional(),
      old_path: z.string().nullable().optional(),
      new_line: z.number().nullable().optional(),
      old_line: z.number().nullable().optional(),
    })
    .nullable()
    .optional(),
});

const Discussion = z.object({ id: z.string(), notes: z.array(Note) });

const toPullRequest = (m: GitLabMergeRequest): PullRequest => ({
  number: m.iid,
  url: m.web_url,
  head: m.source_branch,
  base: m.target_branch,
  state: m.state === 'merged' ? 'merged' : m.state === 'opened' ? 'open' : 'closed',
});

/** A pipeline's status as a CI signal: `manual` and the waiting states are pending. */
export function pipelineSignal(p: { id: number; status: string }): CiSignal {
  const name = `pipeline #${p.id}`;
  if (p.status === 'success' || p.status === 'skipped') return { name, outcome: 'passed' };
  if (p.status === 'failed' || p.status === 'canceled') return { name, outcome: 'failed' };
  return { name, outcome: 'pending' };
}

async function findOpen(client: GitLabClient, head: string, base: string): Promise<PullRequest | null> {
  const mrs = parse(
    z.array(GitLabMergeRequest),
    await client.api.MergeRequests.all({
      projectId: client.project,
      state: 'opened',
      sourceBranch: head,
      targetBranch: base,
      perPage: 100,
    }),
    `GET merge requests of ${client.slug} from ${head}`,
  );
  const found = mrs.find((m) => m.source_branch === head && m.target_branch === base);
  return found ? toPullRequest(found) : null;
}

/** How long a rebase GitLab runs in the background may take before the merge is attempted anyway. */
const REBASE_WAIT_MS = 60_000;

export function createGitLabForge(opts: GitLabOptions): Forge {
  const client = createGitLabClient(opts);
  const { api, project } = client;
  const mr = (n: number) => `merge request !${n} in ${client.slug}`;
  const show = async (n: number) =>
    parse(GitLabMergeRequest, await api.MergeRequests.show(project, n), `GET ${mr(n)}`);

  /** Merges, or the refusal GitLab gave (not mergeable, conflicts, head moved, pipeline). */
  async function accept(
    n: number,
    squash: boolean,
  ): Promise<{ merged: boolean; sha?: string; message?: string }> {
    try {
      const merged = parse(
        GitLabMergeRequest,
        await api.MergeRequests.merge(project, n, { squash }),
        `PUT merge of ${mr(n)}`,
      );
      const sha = merged.squash_commit_sha ?? merged.merge_commit_sha ?? undefined;
      return { merged: merged.state === 'merged', ...(sha ? { sha } : {}) };
    } catch (err) {
      // 405: not mergeable now (draft, pipeline, approvals); 406: conflicts; 409: the head moved; 422: refused.
      if (err instanceof TrackerError && [405, 406, 409, 422].includes(err.status ?? 0)) {
        return { merged: false, message: err.message };
      }
      throw err;
    }
  }

  return {
    kind: 'gitlab',

    async openPullRequest({ head, base, title, body }): Promise<PullRequest> {
      const open = await findOpen(client, head, base);
      if (open) return open;
      try {
        return toPullRequest(
          parse(
            GitLabMergeRequest,
            await api.MergeRequests.create(project, head, base, title, { description: body }),
            `POST merge request ${head} → ${base}`,
          ),
        );
      } catch (err) {
        // 409 "Another open merge request already exists": another caller opened it in between.
        if (err instanceof TrackerError && err.status === 409) {
          const raced = await findOpen(client, head, base);
          if (raced) return raced;
        }
        throw err;
      }
    },

    async ciStatus(ref: string): Promise<{ state: CiState; summary: string }> {
      const byCommit = /^[0-9a-f]{40}$/i.test(ref);
      const pipelines = parse(
        z.array(Pipeline),
        await api.Pipelines.all(project, {
          ...(byCommit ? { sha: ref } : { ref }),
          orderBy: 'id',
          sort: 'desc',
          perPage: 1,
          maxPages: 1,
        }),
        `GET pipelines of ${ref} in ${client.slug}`,
      );
      // The latest pipeline is the commit's CI; older ones were superseded.
      const latest = pipelines[0];
      return combineSignals(latest ? [pipelineSignal(latest)] : []);
    },

    async mergePullRequest(number, method) {
      if (method === 'rebase') {
        // GitLab rebases in the background: ask, then wait for it to finish before merging.
        await api.MergeRequests.rebase(project, number);
        const deadline = Date.now() + REBASE_WAIT_MS;
        for (;;) {
          const now = await show(number);
          if (now.merge_error) return { merged: false, message: now.merge_error };
          if (!now.rebase_in_progress || Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      return accept(number, method === 'squash');
    },

    async reviews(number) {
      const m = await show(number);
      const self = m.author.username;
      const [approvals, reviewers, discussions] = await Promise.all([
        api.MergeRequestApprovals.showConfiguration(project, { mergerequestIId: number }),
        api.MergeRequests.showReviewers(project, number),
        api.MergeRequestDiscussions.all(project, number, { perPage: 100 }),
      ]);
      const threads = parse(z.array(Discussion), discussions, `GET discussions of ${mr(number)}`);
      const answered = answeredIds(
        threads
          .flatMap((t) => t.notes)
          .filter((n) => n.author.username === self)
          .map((n) => n.body),
      );
      // Approvals have a time on recent GitLab versions; otherwise the request's last change stands for it.
      const approved: PullRequestReview[] = parse(Approvals, approvals, `GET approvals of ${mr(number)}`)
        .approved_by.filter((a) => a.user.username !== self)
        .map((a) => ({
          id: `approval:${a.user.username}`,
          author: a.user.username,
          state: 'approved',
          body: '',
          submittedAt: a.approved_at ?? m.updated_at,
          answered: true,
        }));
      // A standing "requested changes" holds now: no approval given before it counts. Its text is
      // the reviewer's latest note outside the diff (a review's summary), which also names it, so
      // changes requested again with a new summary are new feedback.
      const standing = new Date().toISOString();
      const said = threads.flatMap((t) => (t.notes.length === 1 && !t.notes[0]!.position ? t.notes : []));
      const requested = parse(z.array(Reviewer), reviewers, `GET reviewers of ${mr(number)}`)
        .filter((r) => r.state === 'requested_changes' && r.user.username !== self)
        .map((r): PullRequestReview => {
          const summary = said.filter((n) => !n.system && n.author.username === r.user.username).at(-1);
          const id = `changes:${r.user.username}${summary ? `:${summary.id}` : ''}`;
          return {
            id,
            author: r.user.username,
            state: 'changes_requested',
            body: summary?.body ?? '',
            submittedAt: standing,
            answered: answered.has(id),
          };
        });
      const comments: LineComment[] = [];
      for (const t of threads) {
        const [first] = t.notes;
        if (!first?.position || first.system || first.author.username === self) continue;
        const lastOwn = t.notes.findLastIndex((n) => n.author.username === self);
        const pending = t.notes.slice(lastOwn + 1).filter((n) => !n.system && n.author.username !== self);
        const resolved = first.resolvable && t.notes.every((n) => !n.resolvable || n.resolved);
        const shown = pending.length > 0 ? pending : [first];
        comments.push({
          id: `discussion:${t.id}`,
          author: shown[0]!.author.username,
          path: first.position.new_path ?? first.position.old_path ?? '',
          line: first.position.new_line ?? first.position.old_line ?? null,
          body: shown.map((n) => n.body.trim()).join('\n\n'),
          createdAt: shown[0]!.created_at,
          answered: resolved || pending.length === 0,
        });
      }
      return {
        self,
        reviews: [...approved, ...requested],
        comments: comments.sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
      };
    },

    async answer(number, id, body) {
      const n = iidOf(number);
      const m = /^(discussion|changes|approval):(.+)$/.exec(id);
      if (!m)
        throw new TrackerError(`gitlab: '${id}' is not a review or discussion id of this forge`, 'invalid');
      const text = markedAnswer(id, body);
      if (m[1] === 'discussion') {
        await api.MergeRequestDiscussions.addNote(project, n, m[2]!, text);
        await api.MergeRequestDiscussions.resolve(project, n, m[2]!, true);
        return;
      }
      await api.MergeRequestNotes.create(project, n, text);
    },
  };
}
