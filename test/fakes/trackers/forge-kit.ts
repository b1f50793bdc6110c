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

export const now = () => new Date().toISOString();

export interface CommentRec {
  id: number;
  body: string;
  createdAt: string;
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
  addComment(i: I, body: string): CommentRec;
  /** The last comment, or an empty new one (a webhook payload for an issue no one commented on). */
  lastComment(i: I): CommentRec;
  /** A sha or branch to the key statuses and check runs are kept under. */
  commitKey(ref: string): Promise<string>;
  /** By number, for a test; throws when there is none. */
  issue(n: number): I;
  /** A pull request for a test; with a bare repository its branches must exist there. */
  createPull(p: NewPull): Promise<number>;
  pulls(): ForgePullView[];
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
    };
    return newIssue({ title: p.title, body: p.body ?? '', pull } as Partial<I> & { title: string });
  };
  const touch = (i: I) => {
    i.updatedAt = now();
  };

  return {
    issues,
    nextId: () => nextId++,
    newIssue,
    openPull,
    issueParam: (c) => issues.get(Number(c.req.param('n'))),
    touch,
    addComment: (i, body) => {
      const cm = { id: nextId++, body, createdAt: now() };
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
