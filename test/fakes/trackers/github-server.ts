/**
 * A fake GitHub REST API on loopback: one repository's issues, labels,
 * comments, pull requests, commit statuses and check runs, in memory, with
 * the response shapes typed by `@octokit/openapi-types` (GitHub's published
 * OpenAPI description), so a field the adapter reads that GitHub does not
 * send fails to compile here.
 *
 * What it keeps of GitHub's behaviour: pull requests are issues too (the
 * issues list returns them, with a `pull_request` field); lists are paged by
 * `page`/`per_page` with a `Link` header, and `maxPerPage` caps a page below
 * GitHub's 100 so small tests need many pages; the `labels` filter keeps
 * issues with all the labels; adding a missing label creates it; removing a
 * label the issue lacks is a 404; merging runs git on a bare repository (the
 * project's origin) when one is given: a conflict answers 405 like GitHub.
 * Auth: `Authorization: token <t>` or `Bearer <t>`, else 401.
 */
import type { components } from '@octokit/openapi-types';
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

type Schemas = components['schemas'];
type GhUser = Schemas['simple-user'];
type GhIssue = Schemas['issue'];
type GhLabel = Schemas['label'];
type GhComment = Schemas['issue-comment'];
type GhCheckRun = Schemas['check-run'];
type GhStatus = Schemas['simple-commit-status'];
type GhRepoRef = Pick<
  Schemas['repository'],
  'id' | 'node_id' | 'name' | 'full_name' | 'private' | 'html_url' | 'url'
>;
type GhPullRef = Omit<Schemas['pull-request']['head'], 'repo'> & { repo: GhRepoRef };
/** A pull request without the full `repository` objects GitHub nests in it (and the counters). */
type GhPull = Pick<
  Schemas['pull-request'],
  | 'url'
  | 'id'
  | 'node_id'
  | 'html_url'
  | 'issue_url'
  | 'number'
  | 'state'
  | 'locked'
  | 'title'
  | 'user'
  | 'body'
  | 'created_at'
  | 'updated_at'
  | 'closed_at'
  | 'merged_at'
  | 'merge_commit_sha'
  | 'assignee'
  | 'milestone'
  | 'draft'
  | 'merged'
  | 'mergeable'
  | 'mergeable_state'
  | 'merged_by'
  | 'author_association'
  | 'auto_merge'
> & { head: GhPullRef; base: GhPullRef; labels: GhLabel[] };
type GhCombinedStatus = Omit<Schemas['combined-commit-status'], 'repository'> & { repository: GhRepoRef };
type GhMergeResult = Schemas['pull-request-merge-result'];
type GhReview = Schemas['pull-request-review'];
type GhReviewComment = Schemas['pull-request-review-comment'];

/** GitHub keeps an issue's labels by name, and why it was closed. */
type IssueRec = ForgeIssueRec<string> & { stateReason: GhIssue['state_reason'] };

/** An issue or pull request as a test reads it back. */
export interface GitHubIssueView extends ForgeIssueView {
  stateReason: string | null;
}

export type GitHubPullView = ForgePullView;

export interface GitHubFake extends ForgeFake<GitHubIssueView> {
  /** Makes issue `child` a sub-issue of `parent`. */
  addSubIssue(parent: number, child: number): void;
  /** The API root, for `baseUrl`. */
  url: string;
  /** A commit status on a sha or branch (resolved to its commit when the fake has a repository). */
  setStatus(
    ref: string,
    s: { context: string; state: 'error' | 'failure' | 'pending' | 'success'; description?: string },
  ): Promise<void>;
  addCheckRun(
    ref: string,
    r: { name: string; status: GhCheckRun['status']; conclusion?: GhCheckRun['conclusion'] },
  ): Promise<void>;
}

export interface GitHubFakeOptions {
  token?: string;
  /** `owner/name`; `acme/app` unless told. */
  repo?: string;
  /** A bare git repository: pull requests are checked and merged in it. */
  repoPath?: string;
  /** The most items a page holds (GitHub: 100). */
  maxPerPage?: number;
  /**
   * A CI that runs on every commit, as GitHub Actions does on a push: a
   * commit with no status of this context yet reads as `pending` under it,
   * until the test sets one with `setStatus`.
   */
  ciContext?: string;
}

const DOCS = 'https://docs.github.com/rest';

export async function startGitHubFake(opts: GitHubFakeOptions = {}): Promise<GitHubFake> {
  const token = opts.token ?? 'ghp_fake';
  const slug = opts.repo ?? 'acme/app';
  const [owner, name] = slug.split('/') as [string, string];
  const maxPerPage = opts.maxPerPage ?? 100;
  const repo = forgeRepo<IssueRec>({
    vendor: 'github',
    repoPath: opts.repoPath,
    firstId: 1000,
    defaults: { stateReason: null },
    // Adding a missing label creates it.
    prepare: (rec) => {
      rec.labels = rec.labels.map(ensureLabel);
    },
  });
  const { issues, issueParam, touch, commitKey } = repo;
  const labels = new Map<string, { id: number; name: string; color: string; description: string | null }>();
  const statuses = new Map<string, GhStatus[]>();
  const checkRuns = new Map<string, GhCheckRun[]>();
  let origin = '';

  // ---- shapes -------------------------------------------------------------
  const api = (path: string) => `${origin}${path}`;
  const web = (path: string) => `https://github.com/${slug}${path}`;
  const user = (login: string): GhUser => ({
    login,
    id: login.length * 7919,
    node_id: `U_${login}`,
    avatar_url: `https://avatars.githubusercontent.com/${login}`,
    gravatar_id: '',
    url: api(`/users/${login}`),
    html_url: `https://github.com/${login}`,
    followers_url: api(`/users/${login}/followers`),
    following_url: api(`/users/${login}/following{/other_user}`),
    gists_url: api(`/users/${login}/gists{/gist_id}`),
    starred_url: api(`/users/${login}/starred{/owner}{/repo}`),
    subscriptions_url: api(`/users/${login}/subscriptions`),
    organizations_url: api(`/users/${login}/orgs`),
    repos_url: api(`/users/${login}/repos`),
    events_url: api(`/users/${login}/events{/privacy}`),
    received_events_url: api(`/users/${login}/received_events`),
    type: 'User',
    site_admin: false,
  });
  const bot = () => user('orch-bot');
  const repoRef = (): GhRepoRef => ({
    id: 4242,
    node_id: 'R_fake',
    name,
    full_name: slug,
    private: true,
    html_url: `https://github.com/${slug}`,
    url: api(`/repos/${slug}`),
  });
  const labelOf = (labelName: string): GhLabel => {
    const l = labels.get(labelName.toLowerCase())!;
    return {
      id: l.id,
      node_id: `LA_${l.id}`,
      url: api(`/repos/${slug}/labels/${encodeURIComponent(l.name)}`),
      name: l.name,
      description: l.description,
      color: l.color,
      default: false,
    };
  };
  const ensureLabel = (labelName: string): string => {
    const key = labelName.toLowerCase();
    if (!labels.has(key))
      labels.set(key, { id: repo.nextId(), name: labelName, color: 'ededed', description: null });
    return labels.get(key)!.name;
  };
  const issueJson = (i: IssueRec): GhIssue => ({
    id: i.number + 10_000,
    node_id: `I_${i.number}`,
    url: api(`/repos/${slug}/issues/${i.number}`),
    repository_url: api(`/repos/${slug}`),
    labels_url: api(`/repos/${slug}/issues/${i.number}/labels{/name}`),
    comments_url: api(`/repos/${slug}/issues/${i.number}/comments`),
    events_url: api(`/repos/${slug}/issues/${i.number}/events`),
    html_url: web(`/${i.pull ? 'pull' : 'issues'}/${i.number}`),
    number: i.number,
    state: i.state,
    state_reason: i.stateReason,
    title: i.title,
    body: i.body,
    user: bot(),
    labels: i.labels.map(labelOf),
    assignee: i.assignees[0] ? user(i.assignees[0]) : null,
    assignees: i.assignees.map(user),
    milestone: null,
    locked: false,
    comments: i.comments.length,
    ...(i.pull
      ? {
          pull_request: {
            merged_at: i.pull.mergedAt,
            diff_url: web(`/pull/${i.number}.diff`),
            html_url: web(`/pull/${i.number}`),
            patch_url: web(`/pull/${i.number}.patch`),
            url: api(`/repos/${slug}/pulls/${i.number}`),
          },
        }
      : {}),
    closed_at: i.closedAt,
    created_at: i.createdAt,
    updated_at: i.updatedAt,
    author_association: 'OWNER',
    issue_dependencies_summary: {
      blocked_by: openOf(i.blockedBy).length,
      blocking: [...issues.values()].filter((o) => o.blockedBy.includes(i.number) && o.state === 'open')
        .length,
      total_blocked_by: i.blockedBy.length,
      total_blocking: [...issues.values()].filter((o) => o.blockedBy.includes(i.number)).length,
    },
    sub_issues_summary: {
      total: i.subIssues.length,
      completed: i.subIssues.length - openOf(i.subIssues).length,
      percent_completed: i.subIssues.length
        ? Math.round((100 * (i.subIssues.length - openOf(i.subIssues).length)) / i.subIssues.length)
        : 0,
    },
  });
  const openOf = (ns: number[]) => ns.filter((n) => issues.get(n)?.state === 'open');
  const pullRef = (branch: string, sha: string): GhPullRef => ({
    label: `${owner}:${branch}`,
    ref: branch,
    sha,
    user: user(owner),
    repo: repoRef(),
  });
  const pullJson = (i: IssueRec): GhPull => {
    const p = i.pull!;
    return {
      url: api(`/repos/${slug}/pulls/${i.number}`),
      id: i.number + 20_000,
      node_id: `PR_${i.number}`,
      html_url: web(`/pull/${i.number}`),
      issue_url: api(`/repos/${slug}/issues/${i.number}`),
      number: i.number,
      state: i.state,
      locked: false,
      title: i.title,
      user: bot(),
      body: i.body,
      labels: i.labels.map(labelOf),
      milestone: null,
      created_at: i.createdAt,
      updated_at: i.updatedAt,
      closed_at: i.closedAt,
      merged_at: p.mergedAt,
      merge_commit_sha: p.mergeCommitSha,
      assignee: null,
      head: pullRef(p.head, p.headSha),
      base: pullRef(p.base, p.baseSha),
      author_association: 'OWNER',
      auto_merge: null,
      draft: false,
      merged: p.merged,
      mergeable: p.merged ? null : true,
      mergeable_state: p.merged ? 'unknown' : 'clean',
      merged_by: p.merged ? bot() : null,
    };
  };
  const reviewJson = (i: IssueRec, r: ReviewRec): GhReview => ({
    id: r.id,
    node_id: `PRR_${r.id}`,
    user: user(r.author),
    body: r.body,
    state: r.dismissed
      ? 'DISMISSED'
      : { approved: 'APPROVED', changes_requested: 'CHANGES_REQUESTED', commented: 'COMMENTED' }[r.state],
    html_url: web(`/pull/${i.number}#pullrequestreview-${r.id}`),
    pull_request_url: api(`/repos/${slug}/pulls/${i.number}`),
    _links: {
      html: { href: web(`/pull/${i.number}#pullrequestreview-${r.id}`) },
      pull_request: { href: api(`/repos/${slug}/pulls/${i.number}`) },
    },
    submitted_at: r.submittedAt,
    commit_id: r.commitSha,
    author_association: 'MEMBER',
  });
  const reviewCommentJson = (i: IssueRec, c: LineCommentRec): GhReviewComment => ({
    url: api(`/repos/${slug}/pulls/comments/${c.id}`),
    pull_request_review_id: c.reviewId,
    id: c.id,
    node_id: `PRRC_${c.id}`,
    diff_hunk: `@@ -1 +1,${c.line} @@`,
    path: c.path,
    commit_id: i.pull!.headSha,
    original_commit_id: i.pull!.headSha,
    ...(c.inReplyTo !== null ? { in_reply_to_id: c.inReplyTo } : {}),
    user: user(c.author),
    body: c.body,
    created_at: c.createdAt,
    updated_at: c.createdAt,
    html_url: web(`/pull/${i.number}#discussion_r${c.id}`),
    pull_request_url: api(`/repos/${slug}/pulls/${i.number}`),
    author_association: 'MEMBER',
    _links: {
      self: { href: api(`/repos/${slug}/pulls/comments/${c.id}`) },
      html: { href: web(`/pull/${i.number}#discussion_r${c.id}`) },
      pull_request: { href: api(`/repos/${slug}/pulls/${i.number}`) },
    },
    line: c.line,
    original_line: c.line,
    side: 'RIGHT',
    subject_type: 'line',
  });
  /** The pending status of `ciContext` on a commit CI has not finished with. */
  const running = (sha: string): GhStatus => ({
    description: 'Waiting to run',
    id: 0,
    node_id: 'SC_running',
    state: 'pending',
    context: opts.ciContext!,
    target_url: null,
    avatar_url: null,
    url: api(`/repos/${slug}/statuses/${sha}`),
    created_at: now(),
    updated_at: now(),
  });
  const commentJson = (i: IssueRec, cm: IssueRec['comments'][number]): GhComment => ({
    id: cm.id,
    node_id: `IC_${cm.id}`,
    url: api(`/repos/${slug}/issues/comments/${cm.id}`),
    body: cm.body,
    html_url: web(`/issues/${i.number}#issuecomment-${cm.id}`),
    user: cm.author ? user(cm.author) : bot(),
    created_at: cm.createdAt,
    updated_at: cm.createdAt,
    issue_url: api(`/repos/${slug}/issues/${i.number}`),
    author_association: 'OWNER',
  });

  // ---- helpers ------------------------------------------------------------
  const notFound = (c: Context) =>
    c.json({ message: 'Not Found', documentation_url: DOCS, status: '404' }, 404);
  const invalid = (c: Context, message: string, errors: unknown[] = []) =>
    c.json({ message, errors, documentation_url: DOCS, status: '422' }, 422);
  const paged = <T>(c: Context, items: T[]) => {
    const page = pageOf(c.req.url, items, {
      pageParam: 'page',
      sizeParam: 'per_page',
      defaultSize: 30,
      maxSize: maxPerPage,
    });
    return { items: page.items, headers: page.link ? { link: page.link } : undefined };
  };

  const service = await startFakeService(
    {
      token,
      authorized: tokenOrBearer,
    },
    (app) => {
      app.use('/repos/:owner/:repo/*', onlyRepo(slug, notFound));
      const base = '/repos/:owner/:repo';

      // ---- issues -----------------------------------------------------------
      app.get(`${base}/issues`, (c) => {
        const state = c.req.query('state') ?? 'open';
        const want = (c.req.query('labels') ?? '')
          .split(',')
          .map((l) => l.trim().toLowerCase())
          .filter(Boolean);
        const assignee = c.req.query('assignee');
        const list = [...issues.values()]
          .filter((i) => state === 'all' || i.state === state)
          .filter((i) => want.every((w) => i.labels.some((l) => l.toLowerCase() === w)))
          .filter((i) =>
            !assignee
              ? true
              : assignee === '*'
                ? i.assignees.length > 0
                : assignee === 'none'
                  ? i.assignees.length === 0
                  : i.assignees.includes(assignee),
          )
          // GitHub sorts by creation, newest first unless `direction=asc`.
          .sort((a, b) => (c.req.query('direction') === 'asc' ? a.number - b.number : b.number - a.number));
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
          if (body.state !== 'open' && body.state !== 'closed')
            return invalid(c, 'Validation Failed', [{ field: 'state', code: 'invalid' }]);
          if (body.state === 'closed')
            i.stateReason = (body.state_reason as GhIssue['state_reason']) ?? 'completed';
          else if (i.state === 'closed') i.stateReason = 'reopened';
          if (body.state !== i.state) {
            i.state = body.state;
            i.closedAt = body.state === 'closed' ? now() : null;
          }
        }
        if (typeof body.title === 'string') i.title = body.title;
        if (typeof body.body === 'string') i.body = body.body;
        if (Array.isArray(body.labels)) i.labels = (body.labels as string[]).map(ensureLabel);
        if (Array.isArray(body.assignees)) i.assignees = body.assignees as string[];
        touch(i);
        return c.json(issueJson(i));
      });
      app.post(`${base}/issues/:n/labels`, async (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        const body = await readJson(c);
        const raw = Array.isArray(body.labels) ? body.labels : [];
        const names = raw.map((l) =>
          typeof l === 'string' ? l : String((l as { name?: unknown }).name ?? ''),
        );
        if (names.some((n) => n === ''))
          return invalid(c, 'Validation Failed', [{ field: 'labels', code: 'invalid' }]);
        for (const n of names.map(ensureLabel)) if (!i.labels.includes(n)) i.labels.push(n);
        touch(i);
        return c.json(i.labels.map(labelOf));
      });
      app.delete(`${base}/issues/:n/labels/:name`, (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        const want = c.req.param('name').toLowerCase();
        const at = i.labels.findIndex((l) => l.toLowerCase() === want);
        if (at < 0)
          return c.json({ message: 'Label does not exist', documentation_url: DOCS, status: '404' }, 404);
        i.labels.splice(at, 1);
        touch(i);
        return c.json(i.labels.map(labelOf));
      });
      app.post(`${base}/issues/:n/comments`, async (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        const body = await readJson(c);
        if (typeof body.body !== 'string' || body.body === '')
          return invalid(c, 'Validation Failed', [{ field: 'body', code: 'missing_field' }]);
        return c.json(commentJson(i, repo.addComment(i, body.body)), 201);
      });
      app.get(`${base}/issues/:n/comments`, (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        const page = paged(c, i.comments);
        return c.json(
          page.items.map((cm) => commentJson(i, cm)),
          200,
          page.headers,
        );
      });

      // ---- issue dependencies and sub-issues ----------------------------------
      app.get(`${base}/issues/:n/dependencies/blocked_by`, (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        const page = paged(
          c,
          i.blockedBy.map((n) => issues.get(n)!),
        );
        return c.json(page.items.map(issueJson), 200, page.headers);
      });
      app.get(`${base}/issues/:n/sub_issues`, (c) => {
        const i = issueParam(c);
        if (!i) return notFound(c);
        const page = paged(
          c,
          i.subIssues.map((n) => issues.get(n)!),
        );
        return c.json(page.items.map(issueJson), 200, page.headers);
      });

      // ---- reviews --------------------------------------------------------------
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
      app.get(`${base}/pulls/:n/comments`, (c) => {
        const i = issueParam(c);
        if (!i?.pull) return notFound(c);
        const page = paged(c, i.pull.lineComments);
        return c.json(
          page.items.map((cm) => reviewCommentJson(i, cm)),
          200,
          page.headers,
        );
      });
      app.post(`${base}/pulls/:n/comments/:id/replies`, async (c) => {
        const i = issueParam(c);
        if (!i?.pull) return notFound(c);
        const body = await readJson(c);
        if (typeof body.body !== 'string' || body.body === '')
          return invalid(c, 'Validation Failed', [{ field: 'body', code: 'missing_field' }]);
        const to = Number(c.req.param('id'));
        if (!i.pull.lineComments.some((cm) => cm.id === to)) return notFound(c);
        return c.json(reviewCommentJson(i, repo.reply(i.number, to, 'orch-bot', body.body)), 201);
      });

      // ---- pull requests ----------------------------------------------------
      app.get(`${base}/pulls`, (c) => {
        const state = c.req.query('state') ?? 'open';
        const head = c.req.query('head');
        const baseBranch = c.req.query('base');
        const list = [...issues.values()]
          .filter((i) => i.pull)
          .filter((i) => state === 'all' || i.state === state)
          // GitHub's head filter is `user:ref-name`.
          .filter((i) => !head || head === `${owner}:${i.pull!.head}`)
          .filter((i) => !baseBranch || baseBranch === i.pull!.base)
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
        const title = body.title;
        const head = typeof body.head === 'string' ? body.head.replace(new RegExp(`^${owner}:`), '') : '';
        const baseBranch = typeof body.base === 'string' ? body.base : '';
        if (typeof title !== 'string' || !head || !baseBranch) {
          return invalid(c, 'Validation Failed', [{ resource: 'PullRequest', code: 'missing_field' }]);
        }
        if (opts.repoPath) {
          for (const [field, branch] of [
            ['head', head],
            ['base', baseBranch],
          ] as const) {
            if (!(await hasBranch(opts.repoPath, branch))) {
              return invalid(c, 'Validation Failed', [{ resource: 'PullRequest', field, code: 'invalid' }]);
            }
          }
        }
        const dup = [...issues.values()].find(
          (i) => i.pull && i.state === 'open' && i.pull.head === head && i.pull.base === baseBranch,
        );
        if (dup) {
          return invalid(c, 'Validation Failed', [
            {
              resource: 'PullRequest',
              code: 'custom',
              message: `A pull request already exists for ${owner}:${head}.`,
            },
          ]);
        }
        const rec = await repo.openPull({
          head,
          base: baseBranch,
          title,
          body: typeof body.body === 'string' ? body.body : '',
        });
        return c.json(pullJson(rec), 201);
      });
      app.put(`${base}/pulls/:n/merge`, async (c) => {
        const i = issueParam(c);
        if (!i?.pull) return notFound(c);
        const p = i.pull;
        const notMergeable = (message = 'Pull Request is not mergeable') =>
          c.json({ message, documentation_url: DOCS, status: '405' }, 405);
        if (p.merged || i.state === 'closed') return notMergeable();
        const body = await readJson(c);
        const method = (body.merge_method ?? 'merge') as MergeMethod;
        if (!['merge', 'squash', 'rebase'].includes(method)) {
          return invalid(c, 'Validation Failed', [{ field: 'merge_method', code: 'invalid' }]);
        }
        if (opts.repoPath) p.headSha = (await resolveCommit(opts.repoPath, p.head)) ?? p.headSha;
        if (typeof body.sha === 'string' && body.sha !== p.headSha) {
          return c.json(
            {
              message: 'Head branch was modified. Review and try the merge again.',
              documentation_url: DOCS,
              status: '409',
            },
            409,
          );
        }
        let sha = `merged-${i.number}`;
        if (opts.repoPath) {
          const title =
            typeof body.commit_title === 'string'
              ? body.commit_title
              : `Merge pull request #${i.number} from ${owner}/${p.head}`;
          const out = await mergeInBareRepo(opts.repoPath, { base: p.base, head: p.head, method, title });
          if (!out.ok) {
            if (out.reason === 'moved') {
              return c.json(
                {
                  message: 'Base branch was modified. Review and try the merge again.',
                  documentation_url: DOCS,
                  status: '409',
                },
                409,
              );
            }
            return notMergeable();
          }
          sha = out.sha;
        }
        const at = now();
        Object.assign(p, { merged: true, mergedAt: at, mergeCommitSha: sha });
        Object.assign(i, { state: 'closed', closedAt: at, updatedAt: at });
        const result: GhMergeResult = { sha, merged: true, message: 'Pull Request successfully merged' };
        return c.json(result);
      });

      // ---- CI -----------------------------------------------------------------
      app.get(`${base}/commits/:ref/check-runs`, async (c) => {
        const runs = checkRuns.get(await commitKey(c.req.param('ref'))) ?? [];
        const page = paged(c, runs);
        return c.json({ total_count: runs.length, check_runs: page.items }, 200, page.headers);
      });
      app.get(`${base}/commits/:ref/status`, async (c) => {
        const sha = await commitKey(c.req.param('ref'));
        const latest = latestByContext(statuses.get(sha));
        if (opts.ciContext && !latest.has(opts.ciContext)) latest.set(opts.ciContext, running(sha));
        const list = [...latest.values()];
        const state = list.some((s) => s.state === 'failure' || s.state === 'error')
          ? 'failure'
          : list.length === 0 || list.some((s) => s.state === 'pending')
            ? 'pending'
            : 'success';
        const page = paged(c, list);
        const combined: GhCombinedStatus = {
          state,
          statuses: page.items,
          sha,
          total_count: list.length,
          repository: repoRef(),
          commit_url: api(`/repos/${slug}/commits/${sha}`),
          url: api(`/repos/${slug}/commits/${sha}/status`),
        };
        return c.json(combined, 200, page.headers);
      });
    },
  );
  origin = service.url;

  const view = (i: IssueRec): GitHubIssueView => ({
    number: i.number,
    title: i.title,
    state: i.state,
    stateReason: i.stateReason ?? null,
    labels: [...i.labels],
    assignees: [...i.assignees],
    comments: i.comments.map((cm) => cm.body),
  });

  return {
    url: service.url,
    service,
    repo: slug,
    createIssue: (i) =>
      repo.newIssue({
        title: i.title,
        body: i.body ?? '',
        labels: i.labels ?? [],
        assignees: i.assignees ?? [],
        state: i.state ?? 'open',
        stateReason: i.state === 'closed' ? 'completed' : null,
      }).number,
    createPull: repo.createPull,
    issue: (n) => view(repo.issue(n)),
    pulls: repo.pulls,
    setStatus: async (ref, s) => {
      const sha = await commitKey(ref);
      const id = repo.nextId();
      const at = now();
      const status: GhStatus = {
        description: s.description ?? null,
        id,
        node_id: `SC_${id}`,
        state: s.state,
        context: s.context,
        target_url: null,
        avatar_url: null,
        url: api(`/repos/${slug}/statuses/${sha}`),
        created_at: at,
        updated_at: at,
      };
      statuses.set(sha, [...(statuses.get(sha) ?? []), status]);
    },
    addCheckRun: async (ref, r) => {
      const sha = await commitKey(ref);
      const id = repo.nextId();
      const completed = r.status === 'completed';
      const run: GhCheckRun = {
        id,
        head_sha: sha,
        node_id: `CR_${id}`,
        external_id: null,
        url: api(`/repos/${slug}/check-runs/${id}`),
        html_url: web(`/runs/${id}`),
        details_url: null,
        status: r.status,
        conclusion: completed ? (r.conclusion ?? 'success') : null,
        started_at: now(),
        completed_at: completed ? now() : null,
        output: {
          title: null,
          summary: null,
          text: null,
          annotations_count: 0,
          annotations_url: api(`/repos/${slug}/check-runs/${id}/annotations`),
        },
        name: r.name,
        check_suite: { id: 1 },
        app: null,
        pull_requests: [],
      };
      checkRuns.set(sha, [...(checkRuns.get(sha) ?? []), run]);
    },
    review: repo.review,
    reply: (n, to, author, body) => repo.reply(n, to, author, body).id,
    lineComments: (n) => [...repo.pull(n).lineComments],
    block: repo.block,
    addSubIssue(parent: number, child: number) {
      const p = repo.issue(parent);
      repo.issue(child);
      p.subIssues.push(child);
      touch(p);
    },
    reviewWebhook(n) {
      const i = repo.issue(n);
      const review = i.pull?.reviews.at(-1);
      if (!review) throw new Error(`github fake: #${n} has no review`);
      return {
        event: 'pull_request_review',
        payload: {
          action: 'submitted',
          review: reviewJson(i, review),
          pull_request: pullJson(i),
          repository: { ...repoRef(), owner: user(owner) },
          sender: user(review.author),
        },
      };
    },
    webhookPayload: (event, n, action) => {
      const i = repo.issue(n);
      const common = { repository: { ...repoRef(), owner: user(owner) }, sender: bot() };
      if (event === 'issue_comment') {
        const comment = commentJson(i, repo.lastComment(i));
        return { action: action ?? 'created', issue: issueJson(i), comment, ...common };
      }
      return { action: action ?? 'edited', issue: issueJson(i), ...common };
    },
    close: () => service.close(),
  };
}
