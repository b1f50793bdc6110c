/**
 * The review loop end to end, through the real CLI, against each fake forge
 * (GitHub, Gitea, GitLab) with `forge.require_review` and `require_ci`: an
 * issue is imported and its pull request opened; CI goes green and the pull
 * request still waits, unmerged, for a person; a "changes requested" review
 * with a line comment sends the task back to development (attempt 1 judged
 * again: rejected, `changes_requested`), the next developer prompt holds the
 * reviewer's text and the comment as `file:line: body`, the rework is pushed
 * to the same pull request and each handled review and comment is answered
 * once; the pull request merges only after an approving review, and
 * origin's base has the change. `orch run --until-idle` keeps working all
 * along, since a review and CI are what orch polls by itself.
 *
 * And with a long `review_poll_s`, a review webhook sent to `orch serve`
 * makes the landing read the reviews at once (GitHub, Forgejo, GitLab).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { DEVELOP_AND_REVIEW, waitFor, type TempProject } from '../../helpers/kit.ts';
import { disposeAfterEach } from '../../helpers/dispose.ts';
import { serve } from '../../helpers/serve.ts';
import { startGitHubFake } from '../../fakes/trackers/github-server.ts';
import { startGiteaFake } from '../../fakes/trackers/gitea-server.ts';
import { startGitLabFake } from '../../fakes/trackers/gitlab-server.ts';
import { makeOriginRepo, type OriginRepo } from '../../fakes/trackers/git-merge.ts';
import { sendWebhook, type WebhookDeliveryInput } from '../../fakes/trackers/webhook-sender.ts';
import type { ForgeFake, ForgeIssueView } from '../../fakes/trackers/forge-kit.ts';
import type { FakeService } from '../../fakes/trackers/kit.ts';
import { expectLanded, makeForgeProject, recorded, runInBackground, waitForTask } from './e2e-kit.ts';

const own = disposeAfterEach();
// A whole pipeline or two per test, on a shared machine.
vi.setConfig({ testTimeout: 180_000 });
const SECRET = 'review-hook-secret-123';
const REVIEW_BODY = 'Please say in the change log why each attempt was made.';
const LINE_BODY = 'Name the reason for this change here.';
const BOT = 'orch-bot';

/** A fake forge (tracker too) over `origin`, with what the scenario does and checks on it. */
interface Forge {
  fake: ForgeFake<ForgeIssueView>;
  service: FakeService;
  /** orch.yaml's `tracker` and `forge`, the forge's with `forge` merged in. */
  config(forge: Record<string, unknown>): Record<string, unknown>;
  env: Record<string, string>;
  kind: WebhookDeliveryInput['kind'];
  prUrl(n: number): string;
  /** CI passes on commit `sha`. */
  ciGreen(sha: string): Promise<void>;
  /** The requests that read a pull request's reviews. */
  reviewReads: RegExp;
  /** The request that opens a pull request. */
  opens: { method: string; path: RegExp };
  /** Each review and line comment a person made was answered on the forge by orch, once, naming the commit `sha` that addressed it. */
  expectAnswered(pr: number, review: { id: number; comments: number[] }, sha: string): void;
}

/** The answers orch left whose invisible mark names `id` (review-marks.ts). */
const marked = (bodies: string[], id: string) =>
  bodies.filter((b) => b.includes(`<!-- orch:answered ${id} -->`));

/** What orch's answers say: the commit that addressed the feedback. */
const addressed = (sha: string) => `Addressed in ${sha.slice(0, 12)}.`;

/** A line comment's thread has one reply by orch, naming the commit `sha`. */
function expectReplied(fake: ForgeFake<ForgeIssueView>, pr: number, comment: number, sha: string): void {
  const replies = fake.lineComments(pr).filter((c) => c.inReplyTo === comment && c.author === BOT);
  expect(replies).toHaveLength(1);
  expect(replies[0]!.body).toContain(addressed(sha));
}

const forges = {
  async github(origin: OriginRepo): Promise<Forge> {
    const token = 'ghp_reviewLoopToken0123456789';
    const fake = own(await startGitHubFake({ token, repoPath: origin.bare, ciContext: 'ci/build' }));
    const at = { url: fake.url, repo: 'acme/app' };
    return {
      fake,
      service: fake.service,
      kind: 'github',
      env: { ORCH_GITHUB_TOKEN: token, ORCH_HOOK_SECRET: SECRET },
      config: (forge) => ({
        tracker: {
          kind: 'github',
          ...at,
          import: { labels: ['orch'] },
          webhook_secret_env: 'ORCH_HOOK_SECRET',
        },
        forge: { kind: 'github', ...at, merge_method: 'squash', ...forge },
      }),
      prUrl: (n) => `https://github.com/acme/app/pull/${n}`,
      ciGreen: (sha) => fake.setStatus(sha, { context: 'ci/build', state: 'success' }),
      reviewReads: /^\/repos\/acme\/app\/pulls\/\d+\/reviews$/,
      opens: { method: 'POST', path: /^\/repos\/acme\/app\/pulls$/ },
      expectAnswered(pr, review, sha) {
        for (const c of review.comments) expectReplied(fake, pr, c, sha);
        // A review as a whole is answered by a comment on the pull request quoting it.
        const answers = marked(fake.issue(pr).comments, `review:${review.id}`);
        expect(answers).toHaveLength(1);
        expect(answers[0]).toContain(`> @alice: ${REVIEW_BODY}`);
        expect(answers[0]).toContain(addressed(sha));
      },
    };
  },
  async gitea(origin: OriginRepo, kind: 'gitea' | 'forgejo' = 'gitea'): Promise<Forge> {
    const token = 'gitea_reviewLoopToken0123456789';
    const fake = own(await startGiteaFake({ kind, token, repoPath: origin.bare, ciContext: 'ci/build' }));
    const at = { url: fake.url, repo: fake.repo };
    return {
      fake,
      service: fake.service,
      kind,
      env: { ORCH_GITEA_TOKEN: token, ORCH_HOOK_SECRET: SECRET },
      config: (forge) => ({
        tracker: { kind, ...at, import: { labels: ['orch'] }, webhook_secret_env: 'ORCH_HOOK_SECRET' },
        forge: { kind, ...at, merge_method: 'merge', ...forge },
      }),
      prUrl: (n) => `${fake.url}/acme/app/pulls/${n}`,
      ciGreen: (sha) => fake.setStatus(sha, { context: 'ci/build', state: 'success' }),
      reviewReads: /^\/api\/v1\/repos\/acme\/app\/pulls\/\d+\/reviews$/,
      opens: { method: 'POST', path: /^\/api\/v1\/repos\/acme\/app\/pulls$/ },
      expectAnswered(pr, review, sha) {
        // Gitea's API cannot reply in a thread: each is answered by a comment on the pull request quoting it.
        const bodies = fake.issue(pr).comments;
        for (const id of [`review:${review.id}`, ...review.comments.map((c) => `comment:${c}`)]) {
          expect(marked(bodies, id), id).toHaveLength(1);
          expect(marked(bodies, id)[0]).toContain(addressed(sha));
        }
        expect(marked(bodies, `comment:${review.comments[0]}`)[0]).toContain(
          `changes/T-1.md:1: ${LINE_BODY}`,
        );
      },
    };
  },
  async gitlab(origin: OriginRepo): Promise<Forge> {
    const token = 'glpat-reviewLoopToken0123456789';
    const fake = own(await startGitLabFake({ token, repoPath: origin.bare, ciPipelines: true }));
    const at = { url: fake.url, project: 'acme/app' };
    return {
      fake,
      service: fake.service,
      kind: 'gitlab',
      env: { ORCH_GITLAB_TOKEN: token, ORCH_HOOK_SECRET: SECRET },
      config: (forge) => ({
        tracker: {
          kind: 'gitlab',
          ...at,
          import: { labels: ['orch'] },
          webhook_secret_env: 'ORCH_HOOK_SECRET',
        },
        forge: { kind: 'gitlab', ...at, merge_method: 'squash', ...forge },
      }),
      prUrl: (n) => `${fake.url}/acme/app/-/merge_requests/${n}`,
      ciGreen: (sha) => fake.setPipeline(sha, 'success'),
      reviewReads: /^\/api\/v4\/projects\/[^/]+\/merge_requests\/\d+\/approvals$/,
      opens: { method: 'POST', path: /^\/api\/v4\/projects\/[^/]+\/merge_requests$/ },
      expectAnswered(pr, review, sha) {
        // A line comment's discussion gets a note and is resolved.
        for (const c of review.comments) {
          expectReplied(fake, pr, c, sha);
          expect(fake.lineComments(pr).find((x) => x.id === c)!.resolvedBy).toBe(BOT);
        }
        // The standing "requested changes" is answered by a note on the merge request.
        const notes = fake
          .notes(pr)
          .filter((n) => n.author === BOT)
          .map((n) => n.body);
        const answers = notes.filter((b) => b.includes('<!-- orch:answered changes:alice'));
        expect(answers).toHaveLength(1);
        expect(answers[0]).toContain(addressed(sha));
      },
    };
  },
};

/** The pull request orch opened: the only one, and whether it merged. */
function onlyPull(forge: Forge) {
  const pulls = forge.fake.pulls();
  expect(pulls).toHaveLength(1);
  return pulls[0]!;
}

/** How often orch read the reviews so far. */
const reviewReads = (forge: Forge) =>
  forge.service.requests.filter((r) => r.method === 'GET' && forge.reviewReads.test(r.path)).length;

/** orch reads the reviews twice more: it polled, and still had no reason to merge. */
async function twoMoreReads(forge: Forge, alive: () => void): Promise<void> {
  const seen = reviewReads(forge);
  await waitFor(
    () => {
      alive();
      return reviewReads(forge) >= seen + 2;
    },
    60_000,
    'two more reads of the reviews',
  );
}

describe.each([
  ['GitHub', (o: OriginRepo) => forges.github(o)],
  ['Gitea', (o: OriginRepo) => forges.gitea(o)],
  ['GitLab', (o: OriginRepo) => forges.gitlab(o)],
])('the review loop on %s', (_name, start) => {
  it('changes requested send the task back to development; the same pull request merges only once approved', async () => {
    const origin = own(makeOriginRepo());
    const forge = await start(origin);
    const project: TempProject = own(
      makeForgeProject(origin, {
        ...forge.config({ require_ci: true, ci_poll_s: 0.2, require_review: true, review_poll_s: 0.2 }),
        pipeline: DEVELOP_AND_REVIEW,
      }),
    );
    const issue = forge.fake.createIssue({ title: 'Add a greeting', body: 'Print hello.', labels: ['orch'] });

    const run = runInBackground(project, forge.env);
    const ctx = own(await project.context());
    const waitingFor = (what: RegExp, extra: () => boolean = () => true) =>
      waitForTask(ctx, 'T-1', (t) => what.test(t.status_detail ?? '') && extra(), String(what), run.alive);

    // The first landing: the pull request is open, its CI running.
    await waitingFor(/^waiting for CI on /);
    const pr = onlyPull(forge);
    expect(pr).toMatchObject({ head: 'orch/T-1', base: 'main', merged: false });
    const url = forge.prUrl(pr.number);
    const head1 = origin.rev('orch/T-1');
    await forge.ciGreen(head1);

    // CI is green: the pull request waits for a person, polled, and is not merged.
    const waiting = await waitingFor(/^waiting for review on /);
    expect(waiting.status).toBe('waiting');
    expect(waiting.status_detail).toBe(`waiting for review on ${url}`);
    await twoMoreReads(forge, run.alive);
    expect(onlyPull(forge).merged).toBe(false);

    const review = forge.fake.review(pr.number, {
      author: 'alice',
      state: 'changes_requested',
      body: REVIEW_BODY,
      comments: [{ path: 'changes/T-1.md', line: 1, body: LINE_BODY }],
    });

    // Back to development; the rework is pushed to the same branch, and its CI runs.
    await waitingFor(/^waiting for CI on /, () => origin.rev('orch/T-1') !== head1);
    const head2 = origin.rev('orch/T-1');
    await forge.ciGreen(head2);
    // The answered changes wait for the reviewer to look again: still no merge.
    await waitingFor(/^waiting for review on .*answered\)$/);
    await twoMoreReads(forge, run.alive);
    expect(onlyPull(forge).merged).toBe(false);

    forge.fake.review(pr.number, { author: 'alice', state: 'approved', body: 'Thanks, good to go.' });
    await run.finish();

    const rec = await recorded(project);
    expect(rec.tasks).toEqual([{ key: 'T-1', stage: 'done', status: 'done' }]);
    expect(rec.task.external_id).toBe(String(issue));

    // Landing after the review stage, back to development on the person's word, and landing again.
    const moves = (await ctx.store.eventsAfter(0, 10_000))
      .filter((e) => e.task_id === rec.task.id && e.kind === 'stage_changed')
      .map((e) => (JSON.parse(e.payload) as { to: string }).to);
    expect(moves).toEqual(['development', 'review', 'development', 'review', 'done']);

    // Attempt 1 was approved by orch's reviewer, then judged again by the person on the forge.
    expect(rec.attempts.map((a) => [a.n, a.verdict, a.reason])).toEqual([
      [1, 'rejected', 'changes_requested'],
      [2, 'approved', null],
    ]);
    expect(rec.attempts[0]!.feedback).toContain(REVIEW_BODY);

    // The second developer prompt holds the reviewer's words and the line comment.
    const developers = rec.runs.filter((r) => r.agent === 'developer');
    expect(developers).toHaveLength(2);
    const prompt = readFileSync(developers[1]!.log_path!.replace(/\.log$/, '.prompt.md'), 'utf8');
    expect(prompt).toContain(REVIEW_BODY);
    expect(prompt).toContain(`changes/T-1.md:1: ${LINE_BODY}`);

    // One pull request, opened once, carried both pushes; it merged the rework into origin's main.
    const merged = onlyPull(forge);
    expect(merged).toMatchObject({ number: pr.number, merged: true });
    expect(forge.service.served(forge.opens.method, forge.opens.path)).toHaveLength(1);
    expectLanded(project, origin, merged.mergeCommitSha);
    expect(origin.show('main', 'changes/T-1.md')).toContain('attempt 2: scripted change for T-1');

    forge.expectAnswered(pr.number, review, head2);
  });
});

describe.each([
  ['GitHub', 'pull_request_review', (o: OriginRepo) => forges.github(o)],
  ['Forgejo', 'pull_request_approved', (o: OriginRepo) => forges.gitea(o, 'forgejo')],
  ['GitLab', 'Merge Request Hook', (o: OriginRepo) => forges.gitlab(o)],
])('a review webhook on %s', (_name, event, start) => {
  it(`${event} makes the landing read the reviews before its poll is due`, async () => {
    const origin = own(makeOriginRepo());
    const forge = await start(origin);
    // An hour between polls: only the webhook can make the landing look again within the test.
    const project: TempProject = own(
      makeForgeProject(origin, {
        ...forge.config({ require_ci: false, require_review: true, review_poll_s: 3600 }),
        pipeline: DEVELOP_AND_REVIEW,
      }),
    );
    forge.fake.createIssue({ title: 'Add a greeting', labels: ['orch'] });
    const server = own(await serve(project, forge.env), (s) => s.stop());
    const ctx = own(await project.context());

    await waitForTask(
      ctx,
      'T-1',
      (t) => /^waiting for review on /.test(t.status_detail ?? ''),
      'waiting for review',
    );
    const pr = onlyPull(forge);
    const reads = reviewReads(forge);
    forge.fake.review(pr.number, { author: 'alice', state: 'approved', body: 'Ship it.' });
    const hook = forge.fake.reviewWebhook(pr.number);
    expect(hook.event).toBe(event);
    const sent = await sendWebhook(`${server.url}/api/webhooks/sample`, {
      kind: forge.kind,
      secret: SECRET,
      event: hook.event,
      payload: hook.payload,
    });
    expect(sent.status, sent.body).toBe(202);
    expect(JSON.parse(sent.body)).toEqual({ reviews: [{ pull_request: pr.number, head: 'orch/T-1' }] });

    await waitForTask(
      ctx,
      'T-1',
      (t) => t.status === 'done',
      'done after the webhook',
      () => {},
      30_000,
    );
    // It read the reviews once more (not on a poll, an hour away) and merged.
    expect(reviewReads(forge)).toBe(reads + 1);
    const merged = onlyPull(forge);
    expect(merged.merged).toBe(true);
    expectLanded(project, origin, merged.mergeCommitSha);
  });
});
