/**
 * What the fake GitHub and the fake Gitea share beneath their wire formats:
 * one repository's issues and pull requests in memory (on both forges a pull
 * request is an issue with a pull part, numbered with the issues), opening a
 * pull request on branches of the bare repository when there is one, the
 * latest commit status of each context, and the request helpers both routes
 * use. Each fake keeps its own JSON shapes, errors, routes and label model.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { hasBranch, resolveCommit } from './git-merge.ts';
import type { FakeService } from './kit.ts';

let lastMs = 0;
/** Now, ISO-8601; strictly later than the last call, so records made in one millisecond keep their order. */
export const now = (): string => {
  lastMs = Math.max(Date.now(), lastMs + 1);
  return new Date(lastMs).toISOString();
};

export interface CommentRec {
  id: number;
  body: string;
  createdAt: string;
  /** Who wrote it: the token's user (orch) unless a test posted it as a person. */
  author?: string;
}

/** A review of a pull request as a whole. */
export interface ReviewRec {
  id: number;
  author: string;
  state: 'approved' | 'changes_requested' | 'commented';
  body: string;
  submittedAt: string;
  /** The head commit it reviewed. */
  commitSha: string;
  dismissed: boolean;
}

/** A comment on a line of a pull request's diff, or a reply in its thread. */
export interface LineCommentRec {
  id: number;
  /** The review it came with; null for a reply. */
  reviewId: number | null;
  author: string;
  path: string;
  line: number;
  body: string;
  createdAt: string;
  /** The thread's first comment, for a reply. */
  inReplyTo: number | null;
  /** Who resolved the thread, when someone did. */
  resolvedBy: string | null;
}

/** A review as a person submits it: a verdict, a text, and comments on lines of the diff. */
export interface NewReview {
  author: string;
  state: ReviewRec['state'];
  body?: string;
  comments?: { path: string; line: number; body: string }[];
}

/** The pull part of an issue: its branches, the commits they pointed at when opened, and the merge. */
export interface PullRec {
  head: string;
  base: string;
  headSha: string;
  baseSha: string;
  merged: boolean;
  mergedAt: string | null;
  mergeCommitSha: string | null;
  reviews: ReviewRec[];
  lineComments: LineCommentRec[];
}

/** An issue or pull request; `L` is how the forge keeps its labels (GitHub: names, Gitea: label ids). */
export interface ForgeIssueRec<L> {
  number: number;
  title: string;
  body: string;
  state: 'open' | 'closed';
  labels: L[];
  assignees: string[];
  comments: CommentRec[];
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
  pull?: PullRec;
  /** Issues that block this one (GitHub's issue dependencies, Gitea's dependencies). */
  blockedBy: number[];
  /** Sub-issues (GitHub). */
  subIssues: number[];
}

/** A pull request as a test reads it back. */
export interface ForgePullView {
  number: number;
  title: string;
  head: string;
  base: string;
  state: 'open' | 'closed';
  merged: boolean;
  mergeCommitSha: string | null;
}

export interface NewPull {
  head: string;
  base: string;
  title: string;
  body?: string;
}

/** An issue as a test reads it back. */
export interface ForgeIssueView {
  number: number;
  title: string;
  state: 'open' | 'closed';
  labels: string[];
  assignees: string[];
  comments: string[];
}

/** What a test does with either forge's fake; `V` is how it reads an issue back. */
export interface ForgeFake<V extends ForgeIssueView> {
  url: string;
  service: FakeService;
  /** `owner/name`. */
  repo: string;
  createIssue(i: {
    title: string;
    body?: string;
    labels?: string[];
    assignees?: string[];
    state?: 'open' | 'closed';
  }): number;
  /** A pull request (also an issue); with a bare repository its branches must exist there. */
  createPull(p: NewPull): Promise<number>;
  /** By number; throws when there is none. */
  issue(n: number): V;
  pulls(): ForgePullView[];
  /** A delivery's payload for an issue (`issues`, `issue_comment`), as the forge shapes it, for the webhook sender. */
  webhookPayload(event: 'issues' | 'issue_comment', n: number, action?: string): Record<string, unknown>;
  /** The delivery the forge sends about the last review of pull request `n`: its event name and payload. */
  reviewWebhook(n: number): { event: string; payload: Record<string, unknown> };
  /** Submits a review of pull request `n` as a person would; its id and the ids of its line comments. */
  review(n: number, r: NewReview): { id: number; comments: number[] };
  /** A person's reply in the thread of line comment `to`. */
  reply(n: number, to: number, author: string, body: string): number;
  /** The line comments of pull request `n` with their replies, in order. */
  lineComments(n: number): LineCommentRec[];
  /** Issue `blocked` is blocked by issue `blocker`. */
  block(blocker: number, blocked: number): void;
  close(): Promise<void>;
}

export interface ForgeRepoOptions<I extends ForgeIssueRec<unknown>> {
  /** Names the fake in the errors a test sees (`github`, `gitea`, `forgejo`). */
  vendor: string;
  /** A bare git repository: branches are checked and resolved in it. */
  repoPath?: string;
  /** The first id handed out to labels, comments, statuses and check runs. */
  firstId: number;
  /** The forge's own fields of a new issue (GitHub: its state reason). */
  defaults: Omit<I, keyof ForgeIssueRec<unknown>>;
  /** Runs on every new issue before it is stored (GitHub creates the labels it names). */
  prepare?: (rec: I) => void;
}

export interface ForgeRepo<I extends ForgeIssueRec<unknown>> {
  issues: Map<number, I>;
  /** The next id for a label, comment, status or check run. */
  nextId(): number;
  newIssue(i: Partial<I> & { title: string }): I;
  /** A pull request (also an issue) on branches already checked. */
  openPull(p: NewPull): Promise<I>;
  /** The issue a route's `:n` names. */
  issueParam(c: Context): I | undefined;
  /** Marks an issue changed now. */
  touch(i: I): void;
  addComment(i: I, body: string, author?: string): CommentRec;
  /** The last comment, or an empty new one (a webhook payload for an issue no one commented on). */
  lastComment(i: I): CommentRec;
  /** A sha or branch to the key statuses and check runs are kept under. */
  commitKey(ref: string): Promise<string>;
  /** By number, for a test; throws when there is none. */
  issue(n: number): I;
  /** A pull request for a test; with a bare repository its branches must exist there. */
  createPull(p: NewPull): Promise<number>;
  pulls(): ForgePullView[];
  /** Records a review as a person submits it. */
  review(n: number, r: NewReview): { id: number; comments: number[] };
  /** A reply in the thread of line comment `to`. */
  reply(n: number, to: number, author: string, body: string): LineCommentRec;
  /** The pull part of issue `n`; throws when it is no pull request. */
  pull(n: number): PullRec;
  block(blocker: number, blocked: number): void;
}

export function forgeRepo<I extends ForgeIssueRec<unknown>>(opts: ForgeRepoOptions<I>): ForgeRepo<I> {
  const issues = new Map<number, I>();
  let nextId = opts.firstId;
  const { repoPath } = opts;

  const newIssue = (i: Partial<I> & { title: string }): I => {
    const at = now();
    const rec = {
      number: issues.size + 1,
      body: '',
      state: 'open',
      labels: [],
      assignees: [],
      comments: [],
      createdAt: at,
      updatedAt: at,
      closedAt: null,
      blockedBy: [],
      subIssues: [],
      ...opts.defaults,
      ...i,
    } as unknown as I;
    opts.prepare?.(rec);
    if (rec.state === 'closed') rec.closedAt = at;
    issues.set(rec.number, rec);
    return rec;
  };
  const openPull = async (p: NewPull): Promise<I> => {
    const sha = async (branch: string) =>
      repoPath ? ((await resolveCommit(repoPath, branch)) ?? '') : `${branch}-sha`;
    const pull: PullRec = {
      head: p.head,
      base: p.base,
      headSha: await sha(p.head),
      baseSha: await sha(p.base),
      merged: false,
      mergedAt: null,
      mergeCommitSha: null,
      reviews: [],
      lineComments: [],
    };
    return newIssue({ title: p.title, body: p.body ?? '', pull } as Partial<I> & { title: string });
  };
  const touch = (i: I) => {
    i.updatedAt = now();
  };
  const pullOf = (n: number): PullRec => {
    const p = issues.get(n)?.pull;
    if (!p) throw new Error(`${opts.vendor} fake: #${n} is no pull request`);
    return p;
  };

  return {
    issues,
    nextId: () => nextId++,
    newIssue,
    openPull,
    issueParam: (c) => issues.get(Number(c.req.param('n'))),
    touch,
    addComment: (i, body, author) => {
      const cm = { id: nextId++, body, createdAt: now(), ...(author ? { author } : {}) };
      i.comments.push(cm);
      touch(i);
      return cm;
    },
    lastComment: (i) => i.comments.at(-1) ?? { id: nextId++, body: '', createdAt: now() },
    commitKey: async (ref) => (repoPath ? ((await resolveCommit(repoPath, ref)) ?? ref) : ref),
    issue: (n) => {
      const i = issues.get(n);
      if (!i) throw new Error(`${opts.vendor} fake: no issue #${n}`);
      return i;
    },
    createPull: async (p) => {
      if (repoPath) {
        for (const branch of [p.head, p.base]) {
          if (!(await hasBranch(repoPath, branch)))
            throw new Error(`${opts.vendor} fake: no branch ${branch} in ${repoPath}`);
        }
      }
      return (await openPull(p)).number;
    },
    review(n, r) {
      const p = pullOf(n);
      const at = now();
      const review: ReviewRec = {
        id: nextId++,
        author: r.author,
        state: r.state,
        body: r.body ?? '',
        submittedAt: at,
        commitSha: p.headSha,
        dismissed: false,
      };
      p.reviews.push(review);
      const comments = (r.comments ?? []).map((c) => {
        const rec: LineCommentRec = {
          id: nextId++,
          reviewId: review.id,
          author: r.author,
          path: c.path,
          line: c.line,
          body: c.body,
          createdAt: at,
          inReplyTo: null,
          resolvedBy: null,
        };
        p.lineComments.push(rec);
        return rec.id;
      });
      return { id: review.id, comments };
    },
    reply(n, to, author, body) {
      const p = pullOf(n);
      const root = p.lineComments.find((c) => c.id === to);
      if (!root) throw new Error(`${opts.vendor} fake: no line comment ${to} on #${n}`);
      const rec: LineCommentRec = {
        ...root,
        id: nextId++,
        reviewId: null,
        author,
        body,
        createdAt: now(),
        inReplyTo: root.inReplyTo ?? root.id,
        resolvedBy: null,
      };
      p.lineComments.push(rec);
      return rec;
    },
    pull: (n) => pullOf(n),
    block(blocker, blocked) {
      const i = issues.get(blocked);
      if (!i || !issues.has(blocker))
        throw new Error(`${opts.vendor} fake: no issue #${blocker} or #${blocked}`);
      i.blockedBy.push(blocker);
      touch(i);
    },
    pulls: () =>
      [...issues.values()]
        .filter((i) => i.pull)
        .map((i) => ({
          number: i.number,
          title: i.title,
          head: i.pull!.head,
          base: i.pull!.base,
          state: i.state,
          merged: i.pull!.merged,
          mergeCommitSha: i.pull!.mergeCommitSha,
        })),
  };
}

/** The latest status of each context, newest first, from statuses kept in the order they were set. */
export function latestByContext<S extends { context: string }>(statuses: S[] | undefined): Map<string, S> {
  const latest = new Map<string, S>();
  for (const s of [...(statuses ?? [])].reverse()) if (!latest.has(s.context)) latest.set(s.context, s);
  return latest;
}

/** Both forges take `Authorization: token <t>` or `Bearer <t>`. */
export const tokenOrBearer = (c: Context, token: string): boolean => {
  const [scheme, value] = (c.req.header('authorization') ?? '').split(' ');
  return value === token && (scheme?.toLowerCase() === 'token' || scheme?.toLowerCase() === 'bearer');
};

/** Answers `notFound` for a repository other than the fake's one (`owner/name`) under `:owner/:repo`. */
export const onlyRepo =
  (slug: string, notFound: (c: Context) => Response): MiddlewareHandler =>
  async (c, next) => {
    if (`${c.req.param('owner')}/${c.req.param('repo')}` !== slug) return notFound(c);
    await next();
  };

/** A request's JSON object body; `{}` for none, a malformed one, or one that is not an object. */
export async function readJson(c: Context): Promise<Record<string, unknown>> {
  try {
    const body: unknown = await c.req.json();
    return body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
