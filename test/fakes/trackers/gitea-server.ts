/**
 * A fake Gitea/Forgejo REST API (v1, under `/api/v1`) on loopback: one
 * repository's issues, labels, comments, pull requests and commit statuses,
 * in memory, shaped like Gitea's swagger (`Issue`, `Label`, `Comment`,
 * `PullRequest`, `CombinedStatus`: a commit status's state is in `status`).
 *
 * What it keeps of Gitea's behaviour: the issues list serves pull requests
 * too unless `type=issues`; `labels` keeps issues with ANY of the named
 * labels and discards names the repository lacks (all unknown: no filter at
 * all); pages are `page`/`limit`, capped at `maxPageSize` (Gitea's
 * MAX_RESPONSE_ITEMS, 50) whatever `limit` asks, with `X-Total-Count` and
 * `Link`; issue label endpoints take label ids; creating a second open pull
 * request for the same head and base is a 409; merging runs git on a bare
 * repository when one is given: a conflict answers 409, an already merged
 * pull request 405. Auth: `Authorization: token <t>` (or `Bearer`), else 401.
 */
import type { Context } from 'hono';
import {
  forgeRepo,
  latestByContext,
  now,
  onlyRepo,
  readJson,
  tokenOrBearer,
  type ForgeFake,
  type ForgeIssueRec,
  type ForgeIssueView,
  type ForgePullView,
  type LineCommentRec,
  type ReviewRec,
} from './forge-kit.ts';
import { hasBranch, mergeInBareRepo, resolveCommit, type MergeMethod } from './git-merge.ts';
import { pageOf, startFakeService } from './kit.ts';

interface GtUser {
  id: number;
  login: string;
  login_name: string;
  full_name: string;
  email: string;
  avatar_url: string;
  username: string;
}

interface GtLabel {
  id: number;
  name: string;
  exclusive: boolean;
  is_archived: boolean;
  color: string;
  description: string;
  url: string;
}

interface GtRepoMeta {
  id: number;
  name: string;
  owner: string;
  full_name: string;
}

interface GtIssue {
  id: number;
  url: string;
  html_url: string;
  number: number;
  user: GtUser;
  original_author: string;
  original_author_id: number;
  title: string;
  body: string;
  ref: string;
  labels: GtLabel[];
  milestone: null;
  assignee: GtUser | null;
  assignees: GtUser[] | null;
  state: 'open' | 'closed';
  is_locked: boolean;
  comments: number;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  due_date: null;
  pull_request: { merged: boolean; merged_at: string | null; draft: boolean; html_url: string } | null;
  repository: GtRepoMeta;
}

interface GtComment {
  id: number;
  html_url: string;
  pull_request_url: string;
  issue_url: string;
  user: GtUser;
  original_author: string;
  original_author_id: number;
  body: string;
  created_at: string;
  updated_at: string;
}

interface GtBranchRef {
  label: string;
  ref: string;
  sha: string;
  repo_id: number;
}

interface GtPull {
  id: number;
  url: string;
  number: number;
  user: GtUser;
  title: string;
  body: string;
  labels: GtLabel[];
  state: 'open' | 'closed';
  is_locked: boolean;
  comments: number;
  html_url: string;
  diff_url: string;
  patch_url: string;
  mergeable: boolean;
  merged: boolean;
  merged_at: string | null;
  merge_commit_sha: string | null;
  merged_by: GtUser | null;
  base: GtBranchRef;
  head: GtBranchRef;
  merge_base: string;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
}

interface GtStatus {
  id: number;
  status: 'pending' | 'success' | 'error' | 'failure' | 'warning';
  target_url: string;
  description: string;
  url: string;
  context: string;
  creator: GtUser;
  created_at: string;
  updated_at: string;
}

interface GtCombinedStatus {
  state: string;
  sha: string;
  total_count: number;
  statuses: GtStatus[];
  repository: GtRepoMeta;
  commit_url: string;
  url: string;
}

/** Gitea keeps an issue's labels by id (labels are the repository's, made before they are used). */
type IssueRec = ForgeIssueRec<number>;

export type GiteaIssueView = ForgeIssueView;

export type GiteaPullView = ForgePullView;

export interface GiteaFake extends ForgeFake<GiteaIssueView> {
  /** Resolves the conversation of a line comment, as a person would in the web UI. */
  resolve(n: number, comment: number, by: string): void;
  /** The instance root (the API is at `${url}/api/v1`), for the adapters' `url`. */
  url: string;
  kind: 'gitea' | 'forgejo';
  /** A repository label (Gitea labels must exist before an issue can carry them). */
  addLabel(name: string): number;
  /** Label names of the repository. */
  labels(): string[];
  setStatus(
    ref: string,
    s: { context: string; state: GtStatus['status']; description?: string },
  ): Promise<void>;
}

export interface GiteaFakeOptions {
  kind?: 'gitea' | 'forgejo';
  token?: string;
  /** `owner/name`; `acme/app` unless told. */
  repo?: string;
  /** A bare git repository: pull requests are checked and merged in it. */
  repoPath?: string;
  /** The most items a page holds (Gitea's MAX_RESPONSE_ITEMS: 50). */
  maxPageSize?: number;
  /** False leaves out `X-Total-Count` (as a proxy that strips it does), so only `Link` tells what follows. */
  totalCount?: boolean;
  /**
   * A CI that runs on every commit, as Gitea Actions does on a push: a commit
   * with no status of this context yet reads as `pending` under it, until
   * the test sets one with `setStatus`.
   */
  ciContext?: string;
}

export async function startGiteaFake(opts: GiteaFakeOptions = {}): Promise<GiteaFake> {
  const kind = opts.kind ?? 'gitea';
  const token = opts.token ?? 'gitea_fake_token';
  const slug = opts.repo ?? 'acme/app';
  const [owner, name] = slug.split('/') as [string, string];
  const maxPageSize = opts.maxPageSize ?? 50;
  const repo = forgeRepo<IssueRec>({ vendor: kind, repoPath: opts.repoPath, firstId: 100, defaults: {} });
  const { issues, issueParam, touch, commitKey } = repo;
  const labels = new Map<number, { id: number; name: string; color: string }>();
  const statuses = new Map<string, GtStatus[]>();
  let origin = '';

  // ---- shapes -------------------------------------------------------------
  const api = (path: string) => `${origin}/api/v1${path}`;
  const web = (path: string) => `${origin}/${slug}${path}`;
  const user = (login: string): GtUser => ({
    id: login.length * 31,
    login,
    login_name: '',
    full_name: login,
    email: `${login}@noreply.fake`,
    avatar_url: `${origin}/avatars/${login}`,
    username: login,
  });
  const bot = () => user('orch-bot');
  const repoMeta = (): GtRepoMeta => ({ id: 7, name, owner, full_name: slug });
  const labelJson = (id: number): GtLabel => {
    const l = labels.get(id)!;
    return {
      id,
      name: l.name,
      exclusive: false,
      is_archived: false,
      color: l.color,
      description: '',
      url: api(`/repos/${slug}/labels/${id}`),
    };
  };
  const labelByName = (labelName: string) =>
    [...labels.values()].find((l) => l.name.toLowerCase() === labelName.toLowerCase());
  const addLabel = (labelName: string, color = 'ededed'): number => {
    const found = labelByName(labelName);
    if (found) return found.id;
    const id = repo.nextId();
    labels.set(id, { id, name: labelName, color });
    return id;
  };
  const issueJson = (i: IssueRec): GtIssue => ({
    id: i.number + 5000,
    url: api(`/repos/${slug}/issues/${i.number}`),
    html_url: web(`/${i.pull ? 'pulls' : 'issues'}/${i.number}`),
    number: i.number,
    user: bot(),
    original_author: '',
    original_author_id: 0,
    title: i.title,
    body: i.body,
    ref: '',
    labels: i.labels.map(labelJson),
    milestone: null,
    assignee: i.assignees[0] ? user(i.assignees[0]) : null,
    assignees: i.assignees.length > 0 ? i.assignees.map(user) : null,
    state: i.state,
    is_locked: false,
    comments: i.comments.length,
    created_at: i.createdAt,
    updated_at: i.updatedAt,
    closed_at: i.closedAt,
    due_date: null,
    pull_request: i.pull
      ? {
          merged: i.pull.merged,
          merged_at: i.pull.mergedAt,
          draft: false,
          html_url: web(`/pulls/${i.number}`),
        }
      : null,
    repository: repoMeta(),
  });
  const branchRef = (branch: string, sha: string): GtBranchRef => ({
    label: branch,
    ref: branch,
    sha,
    repo_id: 7,
  });
  const pullJson = (i: IssueRec): GtPull => {
    const p = i.pull!;
    return {
      id: i.number + 9000,
      url: web(`/pulls/${i.number}`),
      number: i.number,
      user: bot(),
      title: i.title,
      body: i.body,
      labels: i.labels.map(labelJson),
      state: i.state,
      is_locked: false,
      comments: i.comments.length,
      html_url: web(`/pulls/${i.number}`),
      diff_url: web(`/pulls/${i.number}.diff`),
      patch_url: web(`/pulls/${i.number}.patch`),
      mergeable: !p.merged,
      merged: p.merged,
      merged_at: p.mergedAt,
      merge_commit_sha: p.mergeCommitSha,
      merged_by: p.merged ? bot() : null,
      base: branchRef(p.base, p.baseSha),
      head: branchRef(p.head, p.headSha),
      merge_base: p.baseSha,
      created_at: i.createdAt,
      updated_at: i.updatedAt,
      closed_at: i.closedAt,
    };
  };
  /** The pending status of `ciContext` on a commit CI has not finished with. */
  const running = (sha: string): GtStatus => ({
    id: 0,
    status: 'pending',
    target_url: `${origin}/${slug}/actions`,
    description: 'Waiting to run',
    url: api(`/repos/${slug}/statuses/${sha}`),
    context: opts.ciContext!,
    creator: bot(),
    created_at: now(),
    updated_at: now(),
  });
  const commentJson = (i: IssueRec, cm: IssueRec['comments'][number]): GtComment => ({
    id: cm.id,
    html_url: web(`/issues/${i.number}#issuecomment-${cm.id}`),
    pull_request_url: '',
    issue_url: web(`/issues/${i.number}`),
    user: cm.author ? user(cm.author) : bot(),
    original_author: '',
    original_author_id: 0,
    body: cm.body,
    created_at: cm.createdAt,
    updated_at: cm.createdAt,
  });

  /** Gitea's PullReview. */
  const reviewJson = (i: IssueRec, r: ReviewRec) => ({
    id: r.id,
    user: user(r.author),
    team: null,
    state: { approved: 'APPROVED', changes_requested: 'REQUEST_CHANGES', commented: 'COMMENT' }[r.state],
    body: r.body,
    commit_id: r.commitSha,
    stale: false,
    official: r.state !== 'commented',
    dismissed: r.dismissed,
    comments_count: i.pull!.lineComments.filter((c) => reviewOf(i, c) === r.id).length,
    submitted_at: r.submittedAt,
    updated_at: r.submittedAt,
    html_url: web(`/pulls/${i.number}#issuecomment-${r.id}`),
    pull_request_url: web(`/pulls/${i.number}`),
  });
  /** The review a line comment belongs to: its own, or its thread's first comment's for a reply. */
  const reviewOf = (i: IssueRec, c: LineCommentRec): number | null =>
    c.reviewId ?? i.pull!.lineComments.find((r) => r.id === c.inReplyTo)?.reviewId ?? null;
  /** Gitea's PullReviewComment: `position` is the line in the new file. */
  const reviewCommentJson = (i: IssueRec, c: LineCommentRec) => ({
    id: c.id,
    body: c.body,
    user: user(c.author),
    resolver: c.resolvedBy ? user(c.resolvedBy) : null,
    pull_request_review_id: reviewOf(i, c),
    created_at: c.createdAt,
    updated_at: c.createdAt,
    path: c.path,
    commit_id: i.pull!.headSha,
    original_commit_id: i.pull!.headSha,
    diff_hunk: `@@ -1 +1,${c.line} @@`,
    position: c.line,
    original_position: 0,
    html_url: web(`/pulls/${i.number}/files#issuecomment-${c.id}`),
    pull_request_url: web(`/pulls/${i.number}`),
  });

  // ---- helpers ------------------------------------------------------------
  // Gitea's APIError body: { message, url }.
  const error = (c: Context, status: 404 | 405 | 409 | 422, message: string) =>
    c.json({ message, url: `${origin}/api/swagger` }, status);
  const notFound = (c: Context) => error(c, 404, "The target couldn't be found.");
  const paged = <T>(c: Context, items: T[]) => {
    const page = pageOf(c.req.url, items, {
      pageParam: 'page',
      sizeParam: 'limit',
      defaultSize: Math.min(30, maxPageSize),
      maxSize: maxPageSize,
    });
    const headers: Record<string, string> = {};
    if (opts.totalCount !== false) headers['x-total-count'] = String(page.total);
    if (page.link) headers.link = page.link;
    return { items: page.items, headers };
  };

  const service = await startFakeService(
    {
      token,
      authorized: tokenOrBearer,
    },
    (app) => {
      app.use('/api/v1/repos/:owner/:repo/*', onlyRepo(slug, notFound));
      const base = '/api/v1/repos/:owner/:repo';

      // ---- labels -----------------------------------------------------------
      app.get(`${base}/labels`, (c) => {
        const page = paged(c, [...labels.keys()]);
        return c.json(page.items.map(labelJson), 200, page.headers);
      });
      app.post(`${base}/labels`, async (c) => {
        const body = await readJson(c);
        if (typeof body.name !== 'string' || body.name === '') return error(c, 422, 'name is required');
        const color = typeof body.color === 'string' ? body.color.replace(/^#/, '') : '';
        if (!/^[0-9a-fA-F]{6}$/.test(color)) return error(c, 422, 'color is invalid');
        const id = repo.nextId();
        labels.set(id, { id, name: body.name, color });
        return c.json(labelJson(id), 201);
      });

      // ---- issues -----------------------------------------------------------
      app.get(`${base}/issues`, (c) => {
        const state = c.req.query('state') ?? 'open';
        const type = c.req.query('type');
        // Any of the named labels; names the repository lacks are discarded.
        const wanted = (c.req.query('labels') ?? '')
          .split(',')
          .map((n) => labelByName(n.trim())?.id)
          .filter((id): id is number => id !== undefined);
        const assignedBy = c.req.query('assigned_by');
        const list = [...issues.values()]
          .filter((i) => state === 'all' || i.state === state)
          .filter((i) => (type === 'issues' ? !i.pull : type === 'pulls' ? !!i.pull : true))
          .filter((i) => wanted.length === 0 || i.labels.some((id) => wanted.includes(id)))
          .filter((i) => !assignedBy || i.assignees.includes(assignedBy))
          .sort((a, b) => b.number - a.number);
        const page = paged(c, list);
        return c.json(page.items.map(issueJson), 200, page.headers);
      });
      app.get(`${base}/issues/:n`, (c) => {
        const i = issueParam(c);
        return i ? c.json(issueJson(i)) : notFound(c);
      });
      app.patch(`${base}/issues/:n`, async (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        const body = await readJson(c);
        if (body.state !== undefined) {
          if (body.state !== 'open' && body.state !== 'closed') return error(c, 422, 'invalid state');
          if (i.pull?.merged)
            return c.json(
              { message: 'cannot change state of this pull request, it was already merged' },
              412,
            );
          if (body.state !== i.state) {
            i.state = body.state;
            i.closedAt = body.state === 'closed' ? now() : null;
          }
        }
        if (typeof body.title === 'string') i.title = body.title;
        if (typeof body.body === 'string') i.body = body.body;
        touch(i);
        // Gitea answers an edit with 201.
        return c.json(issueJson(i), 201);
      });
      app.post(`${base}/issues/:n/labels`, async (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        const body = await readJson(c);
        const ids = Array.isArray(body.labels) ? body.labels : [];
        if (!ids.every((id) => typeof id === 'number' && labels.has(id)))
          return error(c, 422, 'invalid label ids');
        for (const id of ids as number[]) if (!i.labels.includes(id)) i.labels.push(id);
        touch(i);
        return c.json(i.labels.map(labelJson));
      });
      app.delete(`${base}/issues/:n/labels/:id`, (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        const id = Number(c.req.param('id'));
        if (!labels.has(id)) return error(c, 422, 'label does not exist');
        i.labels = i.labels.filter((l) => l !== id);
        touch(i);
        return c.body(null, 204);
      });
      app.post(`${base}/issues/:n/comments`, async (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        const body = await readJson(c);
        if (typeof body.body !== 'string' || body.body === '') return error(c, 422, 'body is required');
        return c.json(commentJson(i, repo.addComment(i, body.body)), 201);
      });
      app.get(`${base}/issues/:n/comments`, (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        return c.json(i.comments.map((cm) => commentJson(i, cm)));
      });

      // ---- dependencies -------------------------------------------------------
      app.get(`${base}/issues/:n/dependencies`, (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        const page = paged(
          c,
          i.blockedBy.map((n) => issues.get(n)!),
        );
        return c.json(page.items.map(issueJson), 200, page.headers);
      });

      // ---- reviews ------------------------------------------------------------
      app.get(`${base}/pulls/:n/reviews`, (c) => {
        const i = issueParam(c);
        if (!i?.pull) return notFound(c);
        const page = paged(c, i.pull.reviews);
        return c.json(
          page.items.map((r) => reviewJson(i, r)),
          200,
          page.headers,
        );
      });
      app.get(`${base}/pulls/:n/reviews/:id/comments`, (c) => {
        const i = issueParam(c);
        const id = Number(c.req.param('id'));
        if (!i?.pull || !i.pull.reviews.some((r) => r.id === id)) return notFound(c);
        return c.json(
          i.pull.lineComments.filter((cm) => reviewOf(i, cm) === id).map((cm) => reviewCommentJson(i, cm)),
        );
      });

      // ---- pull requests ----------------------------------------------------
      app.get(`${base}/pulls`, (c) => {
        const state = c.req.query('state') ?? 'open';
        const list = [...issues.values()]
          .filter((i) => i.pull)
          .filter((i) => state === 'all' || i.state === state)
          .sort((a, b) => b.number - a.number);
        const page = paged(c, list);
        return c.json(page.items.map(pullJson), 200, page.headers);
      });
      app.get(`${base}/pulls/:n`, (c) => {
        const i = issueParam(c);
        return i?.pull ? c.json(pullJson(i)) : notFound(c);
      });
      app.post(`${base}/pulls`, async (c) => {
        const body = await readJson(c);
        const head = typeof body.head === 'string' ? body.head.replace(new RegExp(`^${owner}:`), '') : '';
        const baseBranch = typeof body.base === 'string' ? body.base : '';
        if (typeof body.title !== 'string' || !head || !baseBranch)
          return error(c, 422, 'title, head and base are required');
        if (head === baseBranch)
          return error(c, 422, 'Invalid PullRequest: There are no changes between the head and the base');
        if (opts.repoPath) {
          for (const branch of [head, baseBranch])
            if (!(await hasBranch(opts.repoPath, branch))) return notFound(c);
        }
        const dup = [...issues.values()].find(
          (i) =>
            i.pull &&
            !i.pull.merged &&
            i.state === 'open' &&
            i.pull.head === head &&
            i.pull.base === baseBranch,
        );
        if (dup) {
          return error(
            c,
            409,
            `pull request already exists for these targets [id: ${dup.number}, issue_id: ${dup.number}, head_repo_id: 7, base_repo_id: 7, head_branch: ${head}, base_branch: ${baseBranch}]`,
          );
        }
        const rec = await repo.openPull({
          head,
          base: baseBranch,
          title: body.title,
          body: typeof body.body === 'string' ? body.body : '',
        });
        return c.json(pullJson(rec), 201);
      });
      app.post(`${base}/pulls/:n/merge`, async (c) => {
        const i = issueParam(c);
        if (!i?.pull) return notFound(c);
        const p = i.pull;
        if (p.merged) return c.json({ message: '', url: `${origin}/api/swagger` }, 405);
        if (i.state === 'closed') return notFound(c);
        const body = await readJson(c);
        const style = typeof body.Do === 'string' ? body.Do : 'merge';
        if (!['merge', 'squash', 'rebase'].includes(style)) {
          return error(c, 405, `${style} is not allowed an allowed merge style for this repository`);
        }
        let sha = `merged-${i.number}`;
        if (opts.repoPath) {
          const title =
            typeof body.MergeTitleField === 'string' && body.MergeTitleField
              ? body.MergeTitleField
              : `Merge pull request '${i.title}' (#${i.number}) from ${p.head} into ${p.base}`;
          const out = await mergeInBareRepo(opts.repoPath, {
            base: p.base,
            head: p.head,
            method: style as MergeMethod,
            title,
          });
          if (!out.ok) {
            // Gitea answers a conflict with the ErrMergeConflicts object itself.
            if (out.reason === 'conflict')
              return c.json({ Style: style, StdOut: '', StdErr: out.message, Err: {} }, 409);
            return error(c, 409, out.reason === 'moved' ? 'merge push out of date' : out.message);
          }
          sha = out.sha;
          p.headSha = (await resolveCommit(opts.repoPath, p.head)) ?? p.headSha;
        }
        const at = now();
        Object.assign(p, { merged: true, mergedAt: at, mergeCommitSha: sha });
        Object.assign(i, { state: 'closed', closedAt: at, updatedAt: at });
        return c.body(null, 200);
      });

      // ---- commit statuses ----------------------------------------------------
      app.get(`${base}/commits/:ref/status`, async (c) => {
        const sha = await commitKey(c.req.param('ref'));
        const latest = latestByContext(statuses.get(sha));
        if (opts.ciContext && !latest.has(opts.ciContext)) latest.set(opts.ciContext, running(sha));
        const list = [...latest.values()];
        // Gitea's combined state: the worst status, '' when there is none.
        const order = ['error', 'failure', 'warning', 'pending', 'success'] as const;
        const state = list.length === 0 ? '' : (order.find((o) => list.some((s) => s.status === o)) ?? '');
        const page = paged(c, list);
        const combined: GtCombinedStatus = {
          state,
          sha,
          total_count: list.length,
          statuses: page.items,
          repository: repoMeta(),
          commit_url: api(`/repos/${slug}/git/commits/${sha}`),
          url: api(`/repos/${slug}/commits/${sha}/status`),
        };
        return c.json(combined, 200, page.headers);
      });
    },
  );
  origin = service.url;

  const view = (i: IssueRec): GiteaIssueView => ({
    number: i.number,
    title: i.title,
    state: i.state,
    labels: i.labels.map((id) => labels.get(id)!.name),
    assignees: [...i.assignees],
    comments: i.comments.map((cm) => cm.body),
  });

  return {
    url: service.url,
    service,
    kind,
    repo: slug,
    addLabel: (labelName) => addLabel(labelName),
    labels: () => [...labels.values()].map((l) => l.name),
    createIssue: (i) =>
      repo.newIssue({
        title: i.title,
        body: i.body ?? '',
        labels: (i.labels ?? []).map((l) => addLabel(l)),
        assignees: i.assignees ?? [],
        state: i.state ?? 'open',
      }).number,
    createPull: repo.createPull,
    issue: (n) => view(repo.issue(n)),
    pulls: repo.pulls,
    setStatus: async (ref, s) => {
      const sha = await commitKey(ref);
      const id = repo.nextId();
      const at = now();
      const status: GtStatus = {
        id,
        status: s.state,
        target_url: '',
        description: s.description ?? '',
        url: api(`/repos/${slug}/statuses/${sha}`),
        context: s.context,
        creator: bot(),
        created_at: at,
        updated_at: at,
      };
      statuses.set(sha, [...(statuses.get(sha) ?? []), status]);
    },
    review: repo.review,
    reply: (n, to, author, body) => repo.reply(n, to, author, body).id,
    lineComments: (n) => [...repo.pull(n).lineComments],
    block: repo.block,
    resolve(n: number, comment: number, by: string) {
      const c = repo.pull(n).lineComments.find((x) => x.id === comment);
      if (!c) throw new Error(`${kind} fake: no line comment ${comment} on #${n}`);
      c.resolvedBy = by;
    },
    reviewWebhook(n) {
      const i = repo.issue(n);
      const review = i.pull?.reviews.at(-1);
      if (!review) throw new Error(`${kind} fake: #${n} has no review`);
      const event = {
        approved: 'pull_request_approved',
        changes_requested: 'pull_request_rejected',
        commented: 'pull_request_comment',
      }[review.state];
      return {
        event,
        payload: {
          action: 'reviewed',
          number: n,
          pull_request: pullJson(i),
          requested_reviewer: null,
          repository: { ...repoMeta(), owner: user(owner), html_url: web('') },
          sender: user(review.author),
          review: { type: event, content: review.body },
        },
      };
    },
    webhookPayload: (event, n, action) => {
      const i = repo.issue(n);
      const repository = { ...repoMeta(), owner: user(owner), html_url: web('') };
      if (event === 'issue_comment') {
        const cm = repo.lastComment(i);
        return {
          action: action ?? 'created',
          issue: issueJson(i),
          comment: commentJson(i, cm),
          repository,
          sender: bot(),
          is_pull: !!i.pull,
        };
      }
      return { action: action ?? 'edited', number: i.number, issue: issueJson(i), repository, sender: bot() };
    },
    close: () => service.close(),
  };
}
