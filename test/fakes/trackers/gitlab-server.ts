/**
 * A fake GitLab REST API (v4, under `/api/v4`) on loopback: one project's
 * issues, notes, merge requests, pipelines, approvals, reviewers and
 * discussions, in memory, shaped like GitLab's answers (`Issue`,
 * `MergeRequest`, `Note`, `Discussion`, `Pipeline`; snake_case).
 *
 * What it keeps of GitLab's behaviour: the project is named by its
 * URL-encoded path (`acme%2Fapp`) or its numeric id; issues and merge
 * requests have iids of their own sequences; an issue's state is `opened`
 * or `closed`, changed with `state_event`; `add_labels` creates a label the
 * project lacks; lists are paged by `page`/`per_page` with `Link` and the
 * `X-Page`/`X-Total` headers; a second open merge request for the same
 * branches is a 409; merging runs git on a bare repository (the project's
 * origin): a conflict answers 406, a merge request that is not open 405, a
 * `sha` that is not the head 409; a rebase rewrites the source branch. A
 * line comment is a discussion thread, answered by a note in it and resolved
 * with `PUT …/discussions/:id?resolved=true`. Auth: `PRIVATE-TOKEN: <t>` or
 * `Authorization: Bearer <t>`, else 401.
 */
import type { Context } from 'hono';
import {
  forgeRepo,
  now,
  readJson,
  type CommentRec,
  type ForgeFake,
  type ForgeIssueRec,
  type ForgeIssueView,
  type LineCommentRec,
  type ReviewRec,
} from './forge-kit.ts';
import { hasBranch, mergeInBareRepo, rebaseInBareRepo, resolveCommit } from './git-merge.ts';
import { pageOf, startFakeService } from './kit.ts';

type IssueRec = ForgeIssueRec<string>;

export type GitLabIssueView = ForgeIssueView;

export interface GitLabFake extends ForgeFake<GitLabIssueView> {
  /** The instance root (the API is at `${url}/api/v4`), for the adapters' `url`. */
  url: string;
  /** The project's numeric id (it is also found by its path). */
  projectId: number;
  /** A pipeline on a sha or branch (resolved to its commit when the fake has a repository). */
  setPipeline(ref: string, status: string): Promise<void>;
  /** Resolves the thread of a line comment, as a person would. */
  resolve(n: number, comment: number, by: string): void;
  /** Notes on merge request `n` outside the diff (orch's answers), in order. */
  notes(n: number): { author: string; body: string }[];
}

export interface GitLabFakeOptions {
  token?: string;
  /** `group/name`; `acme/app` unless told. */
  project?: string;
  /** A bare git repository: merge requests are checked, merged and rebased in it. */
  repoPath?: string;
  /** The most items a page holds (GitLab: 100). */
  maxPerPage?: number;
  /**
   * A CI that runs on every commit, as GitLab CI does on a push: a commit
   * with no pipeline yet reads as having one `running`, until the test sets
   * one with `setPipeline`.
   */
  ciPipelines?: boolean;
}

const BOT = 'orch-bot';

export async function startGitLabFake(opts: GitLabFakeOptions = {}): Promise<GitLabFake> {
  const token = opts.token ?? 'glpat-fake';
  const slug = opts.project ?? 'acme/app';
  const projectId = 42;
  const maxPerPage = opts.maxPerPage ?? 100;
  const issuesRepo = forgeRepo<IssueRec>({ vendor: 'gitlab', firstId: 1000, defaults: {} });
  // Merge requests number from 1 too: GitLab's iids are per kind.
  const mrRepo = forgeRepo<IssueRec>({
    vendor: 'gitlab',
    repoPath: opts.repoPath,
    firstId: 500_000,
    defaults: {},
  });
  const pipelines = new Map<string, { id: number; status: string; ref: string; createdAt: string }[]>();
  let nextPipeline = 1;
  let origin = '';

  // ---- shapes -------------------------------------------------------------
  const web = (path: string) => `${origin}/${slug}${path}`;
  const user = (username: string) => ({
    id: username.length * 101,
    username,
    name: username,
    state: 'active',
    locked: false,
    avatar_url: `${origin}/uploads/-/system/user/avatar/${username}.png`,
    web_url: `${origin}/${username}`,
  });
  const issueJson = (i: IssueRec) => ({
    id: i.number + 70_000,
    iid: i.number,
    project_id: projectId,
    title: i.title,
    description: i.body,
    state: i.state === 'open' ? 'opened' : 'closed',
    created_at: i.createdAt,
    updated_at: i.updatedAt,
    closed_at: i.closedAt,
    closed_by: null,
    labels: [...i.labels],
    milestone: null,
    assignees: i.assignees.map(user),
    assignee: i.assignees[0] ? user(i.assignees[0]) : null,
    author: user(BOT),
    type: 'ISSUE',
    user_notes_count: i.comments.length,
    merge_requests_count: 0,
    upvotes: 0,
    downvotes: 0,
    due_date: null,
    confidential: false,
    discussion_locked: null,
    issue_type: 'issue',
    web_url: web(`/-/issues/${i.number}`),
    references: { short: `#${i.number}`, relative: `#${i.number}`, full: `${slug}#${i.number}` },
  });
  const mrJson = (m: IssueRec) => {
    const p = m.pull!;
    return {
      id: m.number + 90_000,
      iid: m.number,
      project_id: projectId,
      title: m.title,
      description: m.body,
      state: p.merged ? 'merged' : m.state === 'open' ? 'opened' : 'closed',
      created_at: m.createdAt,
      updated_at: m.updatedAt,
      merged_at: p.mergedAt,
      closed_at: p.merged ? null : m.closedAt,
      target_branch: p.base,
      source_branch: p.head,
      author: user(BOT),
      assignees: [],
      reviewers: [...new Set(p.reviews.map((r) => r.author))].map(user),
      source_project_id: projectId,
      target_project_id: projectId,
      labels: [...m.labels],
      draft: false,
      work_in_progress: false,
      merge_when_pipeline_succeeds: false,
      merge_status: 'can_be_merged',
      detailed_merge_status: p.merged ? 'not_open' : 'mergeable',
      sha: p.headSha,
      merge_commit_sha: p.merged && !squashed.has(m.number) ? p.mergeCommitSha : null,
      squash_commit_sha: p.merged && squashed.has(m.number) ? p.mergeCommitSha : null,
      squash: squashed.has(m.number),
      web_url: web(`/-/merge_requests/${m.number}`),
      rebase_in_progress: false,
      merge_error: null,
      references: { short: `!${m.number}`, relative: `!${m.number}`, full: `${slug}!${m.number}` },
    };
  };
  const squashed = new Set<number>();
  const noteJson = (
    n: { id: number; body: string; author: string; createdAt: string },
    noteable: { type: 'Issue' | 'MergeRequest'; iid: number },
    diff?: { c: LineCommentRec; resolvable: boolean },
  ) => ({
    id: n.id,
    type: diff ? 'DiffNote' : null,
    body: n.body,
    attachment: null,
    author: user(n.author),
    created_at: n.createdAt,
    updated_at: n.createdAt,
    system: false,
    noteable_id: noteable.iid + (noteable.type === 'Issue' ? 70_000 : 90_000),
    noteable_type: noteable.type,
    noteable_iid: noteable.iid,
    resolvable: !!diff?.resolvable,
    ...(diff
      ? {
          resolved: diff.c.resolvedBy !== null,
          resolved_by: diff.c.resolvedBy ? user(diff.c.resolvedBy) : null,
          position: {
            base_sha: 'base',
            start_sha: 'start',
            head_sha: 'head',
            position_type: 'text',
            old_path: diff.c.path,
            new_path: diff.c.path,
            old_line: null,
            new_line: diff.c.line,
          },
        }
      : {}),
    confidential: false,
    internal: false,
  });
  const commentNote = (c: CommentRec) => ({ ...c, author: c.author ?? BOT });
  /** A thread's id: GitLab's are 40 hex digits. */
  const threadId = (rootId: number) => `a${rootId.toString(16).padStart(39, '0')}`;
  const noteThreadId = (noteId: number) => `b${noteId.toString(16).padStart(39, '0')}`;
  const discussionsOf = (m: IssueRec) => {
    const p = m.pull!;
    const on = { type: 'MergeRequest' as const, iid: m.number };
    const threads = p.lineComments
      .filter((c) => c.inReplyTo === null)
      .map((root) => ({
        id: threadId(root.id),
        individual_note: false,
        notes: p.lineComments
          .filter((c) => c.id === root.id || c.inReplyTo === root.id)
          .map((c) => noteJson(c, on, { c, resolvable: true })),
        createdAt: root.createdAt,
      }));
    const single = m.comments.map((c) => ({
      id: noteThreadId(c.id),
      individual_note: true,
      notes: [noteJson(commentNote(c), on)],
      createdAt: c.createdAt,
    }));
    return [...threads, ...single]
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .map(({ createdAt: _c, ...d }) => d);
  };
  /** Each reviewer's latest verdict (a comment-only review changes none). */
  const verdicts = (m: IssueRec) => {
    const latest = new Map<string, ReviewRec>();
    for (const r of m.pull!.reviews) {
      if (r.dismissed) continue;
      if (r.state !== 'commented' || !latest.has(r.author)) latest.set(r.author, r);
    }
    return latest;
  };

  // ---- helpers ------------------------------------------------------------
  const notFound = (c: Context, what = 'Not found') => c.json({ message: `404 ${what}` }, 404);
  const paged = <T>(c: Context, items: T[]) => {
    const page = pageOf(c.req.url, items, {
      pageParam: 'page',
      sizeParam: 'per_page',
      defaultSize: 20,
      maxSize: maxPerPage,
    });
    const size = Math.min(Number(c.req.query('per_page') ?? 20) || 20, maxPerPage);
    const current = Number(c.req.query('page') ?? 1) || 1;
    const pages = Math.max(1, Math.ceil(items.length / size));
    const headers: Record<string, string> = {
      'x-page': String(current),
      'x-per-page': String(size),
      'x-total': String(items.length),
      'x-total-pages': String(pages),
      'x-next-page': current < pages ? String(current + 1) : '',
      'x-prev-page': current > 1 ? String(current - 1) : '',
    };
    if (page.link) headers.link = page.link;
    return { items: page.items, headers };
  };
  const list = <T>(c: Context, items: T[], json: (t: T) => unknown) => {
    const page = paged(c, items);
    return c.json(page.items.map(json), 200, page.headers);
  };
  const iidParam = (c: Context) => Number(c.req.param('iid'));
  const issueOf = (c: Context) => issuesRepo.issues.get(iidParam(c));
  const mrOf = (c: Context) => mrRepo.issues.get(iidParam(c));
  /** A query value sent as `x` or as GitLab's array form `x[]`. */
  const queryList = (c: Context, name: string) => [
    ...(c.req.queries(name) ?? []),
    ...(c.req.queries(`${name}[]`) ?? []),
  ];
  const csv = (v: unknown) =>
    (typeof v === 'string' ? v.split(',') : Array.isArray(v) ? v.map(String) : [])
      .map((s) => s.trim())
      .filter(Boolean);
  const pipelineJson = (sha: string, p: { id: number; status: string; ref: string; createdAt: string }) => ({
    id: p.id,
    iid: p.id,
    project_id: projectId,
    sha,
    ref: p.ref,
    status: p.status,
    source: 'push',
    created_at: p.createdAt,
    updated_at: p.createdAt,
    web_url: web(`/-/pipelines/${p.id}`),
  });

  const service = await startFakeService(
    {
      token,
      authorized: (c, t) =>
        c.req.header('private-token') === t || c.req.header('authorization') === `Bearer ${t}`,
    },
    (app) => {
      const base = '/api/v4/projects/:project';
      app.use(`${base}/*`, async (c, next) => {
        const p = c.req.param('project');
        if (p !== slug && p !== String(projectId)) return notFound(c, 'Project Not Found');
        await next();
      });

      // ---- issues -----------------------------------------------------------
      app.get(`${base}/issues`, (c) => {
        const state = c.req.query('state') ?? 'all';
        const want = csv(c.req.query('labels')).map((l) => l.toLowerCase());
        const assignees = queryList(c, 'assignee_username');
        const items = [...issuesRepo.issues.values()]
          .filter((i) => state === 'all' || (state === 'opened' ? i.state === 'open' : i.state === 'closed'))
          .filter((i) => want.every((w) => i.labels.some((l) => l.toLowerCase() === w)))
          .filter((i) => assignees.every((a) => i.assignees.includes(a)))
          .sort((a, b) => (c.req.query('sort') === 'asc' ? a.number - b.number : b.number - a.number));
        return list(c, items, issueJson);
      });
      app.get(`${base}/issues/:iid`, (c) => {
        const i = issueOf(c);
        return i ? c.json(issueJson(i)) : notFound(c);
      });
      app.put(`${base}/issues/:iid`, async (c) => {
        const i = issueOf(c);
        if (!i) return notFound(c);
        const body = await readJson(c);
        if (body.state_event === 'close' && i.state === 'open')
          Object.assign(i, { state: 'closed', closedAt: now() });
        else if (body.state_event === 'reopen' && i.state === 'closed')
          Object.assign(i, { state: 'open', closedAt: null });
        else if (
          body.state_event !== undefined &&
          body.state_event !== 'close' &&
          body.state_event !== 'reopen'
        )
          return c.json({ error: 'state_event does not have a valid value' }, 400);
        if (body.labels !== undefined) i.labels = csv(body.labels);
        for (const l of csv(body.add_labels))
          if (!i.labels.some((x) => x.toLowerCase() === l.toLowerCase())) i.labels.push(l);
        const remove = csv(body.remove_labels).map((l) => l.toLowerCase());
        i.labels = i.labels.filter((l) => !remove.includes(l.toLowerCase()));
        if (typeof body.title === 'string') i.title = body.title;
        issuesRepo.touch(i);
        return c.json(issueJson(i));
      });
      app.post(`${base}/issues/:iid/notes`, async (c) => {
        const i = issueOf(c);
        if (!i) return notFound(c);
        const body = await readJson(c);
        if (typeof body.body !== 'string' || body.body === '')
          return c.json({ message: { note: ["can't be blank"] } }, 400);
        const note = issuesRepo.addComment(i, body.body);
        return c.json(noteJson(commentNote(note), { type: 'Issue', iid: i.number }), 201);
      });

      // ---- merge requests ---------------------------------------------------
      app.get(`${base}/merge_requests`, (c) => {
        const state = c.req.query('state') ?? 'all';
        const source = c.req.query('source_branch');
        const target = c.req.query('target_branch');
        const items = [...mrRepo.issues.values()]
          .filter((m) => state === 'all' || mrJson(m).state === state)
          .filter((m) => !source || m.pull!.head === source)
          .filter((m) => !target || m.pull!.base === target)
          .sort((a, b) => b.number - a.number);
        return list(c, items, mrJson);
      });
      app.post(`${base}/merge_requests`, async (c) => {
        const body = await readJson(c);
        const head = typeof body.source_branch === 'string' ? body.source_branch : '';
        const target = typeof body.target_branch === 'string' ? body.target_branch : '';
        if (!head || !target || typeof body.title !== 'string')
          return c.json({ error: 'source_branch, target_branch, title are missing' }, 400);
        if (opts.repoPath)
          for (const b of [head, target])
            if (!(await hasBranch(opts.repoPath, b)))
              return c.json({ message: ['Source branch is invalid'] }, 422);
        const dup = [...mrRepo.issues.values()].find(
          (m) => m.state === 'open' && !m.pull!.merged && m.pull!.head === head && m.pull!.base === target,
        );
        if (dup)
          return c.json(
            { message: [`Another open merge request already exists for this source branch: !${dup.number}`] },
            409,
          );
        const rec = await mrRepo.openPull({
          head,
          base: target,
          title: body.title,
          body: typeof body.description === 'string' ? body.description : '',
        });
        return c.json(mrJson(rec), 201);
      });
      app.get(`${base}/merge_requests/:iid`, async (c) => {
        const m = mrOf(c);
        if (!m) return notFound(c);
        if (opts.repoPath && !m.pull!.merged)
          m.pull!.headSha = (await resolveCommit(opts.repoPath, m.pull!.head)) ?? m.pull!.headSha;
        return c.json(mrJson(m));
      });
      app.put(`${base}/merge_requests/:iid/merge`, async (c) => {
        const m = mrOf(c);
        if (!m) return notFound(c);
        const p = m.pull!;
        if (p.merged || m.state !== 'open') return c.json({ message: '405 Method Not Allowed' }, 405);
        const body = await readJson(c);
        if (opts.repoPath) p.headSha = (await resolveCommit(opts.repoPath, p.head)) ?? p.headSha;
        if (typeof body.sha === 'string' && body.sha !== p.headSha)
          return c.json({ message: 'SHA does not match HEAD of source branch' }, 409);
        const squash = body.squash === true;
        let sha = `merged-${m.number}`;
        if (opts.repoPath) {
          const out = await mergeInBareRepo(opts.repoPath, {
            base: p.base,
            head: p.head,
            method: squash ? 'squash' : 'merge',
            title: `Merge branch '${p.head}' into '${p.base}'`,
          });
          if (!out.ok) return c.json({ message: 'Branch cannot be merged' }, 406);
          sha = out.sha;
        }
        if (squash) squashed.add(m.number);
        const at = now();
        Object.assign(p, { merged: true, mergedAt: at, mergeCommitSha: sha });
        Object.assign(m, { state: 'closed', closedAt: at, updatedAt: at });
        return c.json(mrJson(m));
      });
      app.put(`${base}/merge_requests/:iid/rebase`, async (c) => {
        const m = mrOf(c);
        if (!m) return notFound(c);
        if (m.state !== 'open') return c.json({ message: '405 Method Not Allowed' }, 405);
        if (opts.repoPath) {
          const out = await rebaseInBareRepo(opts.repoPath, { base: m.pull!.base, head: m.pull!.head });
          if (out.ok) m.pull!.headSha = out.sha;
        }
        return c.json({ rebase_in_progress: true }, 202);
      });

      // ---- reviews ----------------------------------------------------------
      app.get(`${base}/merge_requests/:iid/approvals`, (c) => {
        const m = mrOf(c);
        if (!m) return notFound(c);
        const approved = [...verdicts(m).values()].filter((r) => r.state === 'approved');
        return c.json({
          id: m.number + 90_000,
          iid: m.number,
          project_id: projectId,
          title: m.title,
          state: mrJson(m).state,
          approved: approved.length > 0,
          approvals_required: 0,
          approvals_left: 0,
          approved_by: approved.map((r) => ({ user: user(r.author), approved_at: r.submittedAt })),
        });
      });
      app.get(`${base}/merge_requests/:iid/reviewers`, (c) => {
        const m = mrOf(c);
        if (!m) return notFound(c);
        const state = { approved: 'approved', changes_requested: 'requested_changes', commented: 'reviewed' };
        return c.json(
          [...new Set(m.pull!.reviews.map((r) => r.author))].map((author) => ({
            user: user(author),
            state: state[verdicts(m).get(author)?.state ?? 'commented'],
            created_at: m.pull!.reviews.find((r) => r.author === author)!.submittedAt,
          })),
        );
      });
      app.get(`${base}/merge_requests/:iid/discussions`, (c) => {
        const m = mrOf(c);
        return m ? list(c, discussionsOf(m), (d) => d) : notFound(c);
      });
      app.post(`${base}/merge_requests/:iid/discussions/:did/notes`, async (c) => {
        const m = mrOf(c);
        const root = parseInt(c.req.param('did').slice(1), 16);
        if (!m || !c.req.param('did').startsWith('a') || !m.pull!.lineComments.some((x) => x.id === root))
          return notFound(c);
        const body = await readJson(c);
        if (typeof body.body !== 'string' || body.body === '')
          return c.json({ message: { note: ["can't be blank"] } }, 400);
        const note = mrRepo.reply(m.number, root, BOT, body.body);
        return c.json(
          noteJson(note, { type: 'MergeRequest', iid: m.number }, { c: note, resolvable: true }),
          201,
        );
      });
      app.put(`${base}/merge_requests/:iid/discussions/:did`, async (c) => {
        const m = mrOf(c);
        const root = parseInt(c.req.param('did').slice(1), 16);
        if (!m || !m.pull!.lineComments.some((x) => x.id === root)) return notFound(c);
        const body = await readJson(c);
        const resolved = String(c.req.query('resolved') ?? body.resolved) === 'true';
        for (const x of m.pull!.lineComments.filter((x) => x.id === root || x.inReplyTo === root))
          x.resolvedBy = resolved ? BOT : null;
        return c.json(discussionsOf(m).find((d) => d.id === c.req.param('did')));
      });
      app.post(`${base}/merge_requests/:iid/notes`, async (c) => {
        const m = mrOf(c);
        if (!m) return notFound(c);
        const body = await readJson(c);
        if (typeof body.body !== 'string' || body.body === '')
          return c.json({ message: { note: ["can't be blank"] } }, 400);
        const note = mrRepo.addComment(m, body.body);
        return c.json(noteJson(commentNote(note), { type: 'MergeRequest', iid: m.number }), 201);
      });

      // ---- pipelines --------------------------------------------------------
      app.get(`${base}/pipelines`, async (c) => {
        const sha = c.req.query('sha');
        const ref = c.req.query('ref');
        const key = sha ?? (ref ? await mrRepo.commitKey(ref) : undefined);
        if (opts.ciPipelines && key && /^[0-9a-f]{40}$/.test(key) && !pipelines.has(key))
          pipelines.set(key, [{ id: nextPipeline++, status: 'running', ref: ref ?? key, createdAt: now() }]);
        const all = key
          ? (pipelines.get(key) ?? []).map((p) => pipelineJson(key, p))
          : [...pipelines.entries()].flatMap(([s, ps]) => ps.map((p) => pipelineJson(s, p)));
        return list(
          c,
          all.sort((a, b) => (c.req.query('sort') === 'asc' ? a.id - b.id : b.id - a.id)),
          (p) => p,
        );
      });
    },
  );
  origin = service.url;

  const view = (i: IssueRec): GitLabIssueView => ({
    number: i.number,
    title: i.title,
    state: i.state,
    labels: [...i.labels],
    assignees: [...i.assignees],
    comments: i.comments.map((cm) => cm.body),
  });
  const mrPayload = (m: IssueRec) => ({ ...mrJson(m), url: mrJson(m).web_url });
  const projectPayload = () => ({
    id: projectId,
    name: slug.split('/')[1],
    path_with_namespace: slug,
    web_url: web(''),
  });

  return {
    url: service.url,
    service,
    repo: slug,
    projectId,
    createIssue: (i) =>
      issuesRepo.newIssue({
        title: i.title,
        body: i.body ?? '',
        labels: i.labels ?? [],
        assignees: i.assignees ?? [],
        state: i.state ?? 'open',
      }).number,
    createPull: mrRepo.createPull,
    issue: (n) => view(issuesRepo.issue(n)),
    pulls: mrRepo.pulls,
    // A review's summary is a note of its author on the merge request, as GitLab keeps it.
    review(n, r) {
      const out = mrRepo.review(n, r);
      if (r.body) mrRepo.addComment(mrRepo.issue(n), r.body, r.author);
      return out;
    },
    reply: (n, to, author, body) => mrRepo.reply(n, to, author, body).id,
    lineComments: (n) => [...mrRepo.pull(n).lineComments],
    block: issuesRepo.block,
    resolve(n, comment, by) {
      for (const x of mrRepo.pull(n).lineComments.filter((x) => x.id === comment || x.inReplyTo === comment))
        x.resolvedBy = by;
    },
    notes: (n) => mrRepo.issue(n).comments.map((c) => ({ author: c.author ?? BOT, body: c.body })),
    setPipeline: async (ref, status) => {
      const sha = await mrRepo.commitKey(ref);
      pipelines.set(sha, [
        ...(pipelines.get(sha) ?? []),
        { id: nextPipeline++, status, ref, createdAt: now() },
      ]);
    },
    reviewWebhook(n) {
      const m = mrRepo.issue(n);
      const review = m.pull!.reviews.at(-1);
      if (!review) throw new Error(`gitlab fake: !${n} has no review`);
      const common = { project: projectPayload(), user: user(review.author) };
      if (review.state === 'approved') {
        return {
          event: 'Merge Request Hook',
          payload: {
            object_kind: 'merge_request',
            event_type: 'merge_request',
            ...common,
            object_attributes: { ...mrPayload(m), action: 'approved' },
          },
        };
      }
      return {
        event: 'Note Hook',
        payload: {
          object_kind: 'note',
          event_type: 'note',
          ...common,
          object_attributes: {
            id: review.id,
            note: review.body,
            noteable_type: 'MergeRequest',
            url: mrJson(m).web_url,
          },
          merge_request: mrPayload(m),
        },
      };
    },
    webhookPayload: (event, n, action) => {
      const i = issuesRepo.issue(n);
      const common = { project: projectPayload(), user: user(BOT) };
      if (event === 'issue_comment') {
        const cm = issuesRepo.lastComment(i);
        return {
          object_kind: 'note',
          event_type: 'note',
          ...common,
          object_attributes: { id: cm.id, note: cm.body, noteable_type: 'Issue' },
          issue: issueJson(i),
        };
      }
      return {
        object_kind: 'issue',
        event_type: 'issue',
        ...common,
        object_attributes: { ...issueJson(i), action: action ?? 'update' },
        labels: i.labels.map((title) => ({ title })),
      };
    },
    close: () => service.close(),
  };
}
