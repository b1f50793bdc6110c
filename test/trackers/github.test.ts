/**
 * The GitHub adapters (tracker, forge, webhooks) against the fake GitHub API
 * on loopback, and merges checked with git in a real bare repository.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createGitHubForge,
  createGitHubTracker,
  createGitHubWebhooks,
} from '../../src/trackers/github/index.ts';
import { TrackerError, type Forge, type Tracker } from '../../src/trackers/types.ts';
import { makeOriginRepo, type OriginRepo } from '../fakes/trackers/git-merge.ts';
import { startGitHubFake, type GitHubFake } from '../fakes/trackers/github-server.ts';
import { webhookRequest } from '../fakes/trackers/webhook-sender.ts';
import { forgeContract } from './forge-contract.ts';
import {
  expectAuthFailure,
  expectOutage,
  expectRetryAfter,
  expectUnreachable,
  failure,
} from './adapter-kit.ts';

const TOKEN = 'ghp_test_token';
const REPO = 'acme/app';

let origin: OriginRepo;
let fake: GitHubFake;
let tracker: Tracker;
let forge: Forge;

beforeAll(() => {
  origin = makeOriginRepo();
});
afterAll(() => origin.cleanup());

beforeEach(async () => {
  // Pages of 3 (GitHub's cap is 100) so a handful of issues spans several pages.
  fake = await startGitHubFake({ token: TOKEN, repo: REPO, repoPath: origin.bare, maxPerPage: 3 });
  tracker = createGitHubTracker({ baseUrl: fake.url, token: TOKEN, repo: REPO });
  forge = createGitHubForge({ baseUrl: fake.url, token: TOKEN, repo: REPO });
});
afterEach(() => fake.close());

describe('GitHub tracker', () => {
  it('lists every page, drops pull requests, and applies the filters', async () => {
    for (let n = 1; n <= 7; n++) {
      fake.createIssue({
        title: `issue ${n}`,
        labels: n % 2 === 0 ? ['orch', 'ready'] : ['orch'],
        assignees: n === 4 ? ['alice'] : [],
        state: n === 7 ? 'closed' : 'open',
      });
    }
    origin.commit('feature/listed', { 'listed.txt': 'x\n' });
    await fake.createPull({ head: 'feature/listed', base: 'main', title: 'a pull request' });

    const all = await tracker.list({});
    expect(all.map((t) => t.title).sort()).toEqual([1, 2, 3, 4, 5, 6, 7].map((n) => `issue ${n}`));
    // 8 items (7 issues and the pull request) in pages of 3.
    expect(fake.service.served('GET', /\/issues$/).length).toBe(3);

    const open = await tracker.list({ states: ['open'] });
    expect(open).toHaveLength(6);
    const ready = await tracker.list({ states: ['open'], labels: ['orch', 'ready'] });
    expect(ready.map((t) => t.id).sort()).toEqual(['2', '4', '6']);
    const alices = await tracker.list({ labels: ['ready'], assignee: 'alice' });
    expect(alices.map((t) => t.id)).toEqual(['4']);
    expect(await tracker.list({ states: ['closed'] })).toEqual([
      expect.objectContaining({ id: '7', state: 'closed' }),
    ]);
    await expect(tracker.list({ states: ['In Progress'] })).rejects.toMatchObject({ kind: 'invalid' });
  });

  it('gets one issue as a task, and null for a missing number or a pull request', async () => {
    const n = fake.createIssue({
      title: 'Add a flag',
      body: 'Details',
      labels: ['orch'],
      assignees: ['bob'],
    });
    const task = await tracker.get(String(n));
    expect(task).toEqual({
      id: String(n),
      key: `${REPO}#${n}`,
      title: 'Add a flag',
      description: 'Details',
      url: `https://github.com/${REPO}/issues/${n}`,
      state: 'open',
      labels: ['orch'],
      assignees: ['bob'],
      updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      blockedBy: [],
    });
    expect(await tracker.get('999')).toBeNull();
    origin.commit('feature/get', { 'get.txt': 'x\n' });
    const pr = await fake.createPull({ head: 'feature/get', base: 'main', title: 'pr' });
    expect(await tracker.get(String(pr))).toBeNull();
    await expect(tracker.get('not-a-number')).rejects.toMatchObject({ kind: 'invalid' });
  });

  it('closes and reopens, adds and removes labels (removing a missing one is no error)', async () => {
    const n = fake.createIssue({ title: 't', labels: ['orch'] });
    const id = String(n);
    await tracker.update(id, { state: 'closed', addLabels: ['stage:done'] });
    expect(fake.issue(n)).toMatchObject({
      state: 'closed',
      stateReason: 'completed',
      labels: ['orch', 'stage:done'],
    });

    await tracker.update(id, { state: 'open', removeLabels: ['stage:done', 'never-there'] });
    expect(fake.issue(n)).toMatchObject({ state: 'open', stateReason: 'reopened', labels: ['orch'] });

    // Adding a label it already has changes nothing.
    await tracker.update(id, { addLabels: ['orch'] });
    expect(fake.issue(n).labels).toEqual(['orch']);

    await expect(tracker.update(id, { state: 'review' })).rejects.toMatchObject({ kind: 'invalid' });
    const missing = await failure(tracker.update('999', { state: 'closed' }));
    expect(missing).toMatchObject({ kind: 'not_found', status: 404, retryable: false });
  });

  it('writes back only what changed: one read, then only the labels and state that differ', async () => {
    const n = fake.createIssue({ title: 't', labels: ['orch', 'orch:development'] });
    const stages = ['analysis', 'architecture', 'development', 'testing', 'deploy-staging', 'deploy'];
    const toReview = { addLabels: ['orch:review'], removeLabels: stages.map((s) => `orch:${s}`) };
    const before = fake.service.requests.length;
    await tracker.update(String(n), toReview);
    const sent = fake.service.requests
      .slice(before)
      .map((r) => `${r.method} ${r.path.replace(/^.*\/issues/, '')}`);
    expect(sent).toEqual([`GET /${n}`, `POST /${n}/labels`, `DELETE /${n}/labels/orch%3Adevelopment`]);
    expect(fake.issue(n).labels).toEqual(['orch', 'orch:review']);

    // The same change again, and a state the issue is in: one read, nothing sent.
    const again = fake.service.requests.length;
    await tracker.update(String(n), { ...toReview, state: 'open' });
    expect(fake.service.requests.slice(again).map((r) => r.method)).toEqual(['GET']);
  });

  it("an issue's blockers: its open blocked-by issues and open sub-issues, read only when it has some", async () => {
    const parent = fake.createIssue({ title: 'parent', labels: ['orch'] });
    const blocker = fake.createIssue({ title: 'blocker', labels: ['orch'] });
    const done = fake.createIssue({ title: 'done blocker', state: 'closed' });
    const sub = fake.createIssue({ title: 'sub-issue' });
    const closedSub = fake.createIssue({ title: 'closed sub-issue', state: 'closed' });
    fake.block(blocker, parent);
    fake.block(done, parent);
    fake.addSubIssue(parent, sub);
    fake.addSubIssue(parent, closedSub);
    const plain = fake.createIssue({ title: 'plain' });

    expect((await tracker.get(String(parent)))?.blockedBy).toEqual([
      { id: String(blocker), key: `${REPO}#${blocker}` },
      { id: String(sub), key: `${REPO}#${sub}` },
    ]);
    expect((await tracker.get(String(plain)))?.blockedBy).toEqual([]);

    const before = fake.service.requests.length;
    const listed = await tracker.list({ states: ['open'] });
    expect(listed.find((t) => t.id === String(parent))?.blockedBy).toHaveLength(2);
    // Only the parent's summary says it has blockers: one read of each list, none for the others.
    const reads = fake.service.requests.slice(before).map((r) => r.path);
    expect(reads.filter((p) => p.endsWith('/dependencies/blocked_by'))).toEqual([
      `/repos/${REPO}/issues/${parent}/dependencies/blocked_by`,
    ]);
    expect(reads.filter((p) => p.endsWith('/sub_issues'))).toHaveLength(1);
  });

  it('comments and returns the comment id', async () => {
    const n = fake.createIssue({ title: 't' });
    const { id } = await tracker.comment(String(n), '**developer** · 3 min · $0.42');
    expect(id).toMatch(/^\d+$/);
    expect(fake.issue(n).comments).toEqual(['**developer** · 3 min · $0.42']);
  });
});

describe('GitHub errors become TrackerErrors with the retry hint', () => {
  it('a wrong token is auth (worth retrying once the token is fixed)', async () => {
    const wrong = createGitHubTracker({ baseUrl: fake.url, token: 'ghp_wrong', repo: REPO });
    const err = await expectAuthFailure(wrong.list({}), ['ghp_wrong']);
    expect(err.message).toContain('401');
  });

  it('429 with Retry-After: 7 is rate_limited with 7000 ms', async () => {
    await expectRetryAfter(fake.service, () => tracker.get('1'), 7);
  });

  it("GitHub's 403 with x-ratelimit-remaining: 0 is rate_limited until the reset", async () => {
    // Epoch seconds, as GitHub sends it; the wait is counted from now.
    const reset = Math.floor(Date.now() / 1000) + 60;
    fake.service.fail({
      status: 403,
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
      body: { message: 'API rate limit exceeded' },
      times: 1,
    });
    const err = await failure(tracker.comment('1', 'x'));
    expect(err.kind).toBe('rate_limited');
    expect(err.retryAfterMs).toBeGreaterThan(30_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(61_000);
  });

  it('a 403 without the rate-limit headers is auth', async () => {
    fake.service.fail({ status: 403, body: { message: 'Resource not accessible by integration' }, times: 1 });
    expect(await failure(tracker.get('1'))).toMatchObject({ kind: 'auth', status: 403 });
  });

  it('5xx is unavailable, and the adapter does not retry by itself', async () => {
    fake.createIssue({ title: 't' });
    // One request per call: the storm's three faults were spent by three calls.
    await expectOutage(fake.service, () => tracker.get('1'), { status: 502, times: 3 });
    expect(fake.service.requests.filter((r) => r.path.endsWith('/issues/1'))).toHaveLength(3);
    expect(await tracker.get('1')).toMatchObject({ id: '1' });
  });

  it('a server that cannot be reached is unavailable', async () => {
    await fake.close();
    await expectUnreachable(tracker.get('1'));
  });
});

describe('GitHub forge', () => {
  it('opening a pull request twice gives the same one', async () => {
    origin.commit('orch/T-1', { 'one.txt': '1\n' });
    const first = await forge.openPullRequest({ head: 'orch/T-1', base: 'main', title: 'T-1', body: 'body' });
    const again = await forge.openPullRequest({ head: 'orch/T-1', base: 'main', title: 'T-1', body: 'body' });
    expect(again).toEqual(first);
    expect(first).toMatchObject({
      head: 'orch/T-1',
      base: 'main',
      state: 'open',
      url: expect.stringContaining('/pull/'),
    });
    expect(fake.service.served('POST', /\/pulls$/)).toHaveLength(1);
    expect(fake.pulls()).toHaveLength(1);
  });

  it('reads CI from check runs and commit statuses together', async () => {
    const sha = origin.commit('orch/T-ci', { 'ci.txt': 'x\n' });
    expect(await forge.ciStatus(sha)).toEqual({ state: 'none', summary: 'no checks or statuses' });

    await fake.addCheckRun(sha, { name: 'build', status: 'in_progress' });
    await fake.setStatus(sha, { context: 'ci/lint', state: 'success' });
    expect(await forge.ciStatus(sha)).toEqual({ state: 'pending', summary: 'pending: build' });

    await fake.addCheckRun(sha, { name: 'test', status: 'completed', conclusion: 'failure' });
    await fake.setStatus(sha, { context: 'ci/e2e', state: 'error' });
    const failed = await forge.ciStatus(sha);
    expect(failed.state).toBe('failure');
    expect(failed.summary).toContain('failing: test, ci/e2e');

    // Green once every run completed well and each context's latest status passed.
    const green = origin.commit('orch/T-ci', { 'ci.txt': 'y\n' });
    await fake.addCheckRun(green, { name: 'build', status: 'completed', conclusion: 'success' });
    await fake.addCheckRun(green, { name: 'docs', status: 'completed', conclusion: 'skipped' });
    await fake.setStatus(green, { context: 'ci/lint', state: 'pending' });
    await fake.setStatus(green, { context: 'ci/lint', state: 'success' });
    // By branch name too: the fake resolves it to the same commit.
    expect(await forge.ciStatus('orch/T-ci')).toEqual({
      state: 'success',
      summary: '3 passed: build, docs, ci/lint',
    });
  });

  it('merging puts the change on the base in the bare repository', async () => {
    const head = origin.commit('orch/T-merge', { 'feature.txt': 'merged feature\n' });
    const pr = await forge.openPullRequest({
      head: 'orch/T-merge',
      base: 'main',
      title: 'T-merge',
      body: '',
    });
    const result = await forge.mergePullRequest(pr.number, 'merge');
    expect(result).toMatchObject({ merged: true, sha: origin.rev('main') });
    expect(origin.contains('main', head)).toBe(true);
    expect(origin.show('main', 'feature.txt')).toBe('merged feature');
    expect(fake.pulls()[0]).toMatchObject({ state: 'closed', merged: true });

    // Merging it again is refused, not thrown.
    expect(await forge.mergePullRequest(pr.number, 'merge')).toMatchObject({ merged: false });
  });

  it('squash and rebase also land the change', async () => {
    origin.commit('orch/T-squash', { 'squash.txt': 'squashed\n' });
    const sq = await forge.openPullRequest({
      head: 'orch/T-squash',
      base: 'main',
      title: 'Squash me',
      body: '',
    });
    expect(await forge.mergePullRequest(sq.number, 'squash')).toMatchObject({ merged: true });
    expect(origin.show('main', 'squash.txt')).toBe('squashed');

    origin.commit('orch/T-rebase', { 'rebase.txt': 'rebased\n' });
    const rb = await forge.openPullRequest({
      head: 'orch/T-rebase',
      base: 'main',
      title: 'Rebase me',
      body: '',
    });
    expect(await forge.mergePullRequest(rb.number, 'rebase')).toMatchObject({ merged: true });
    expect(origin.show('main', 'rebase.txt')).toBe('rebased');
    expect(origin.show('main', 'squash.txt')).toBe('squashed');
  });

  it('a conflicting merge answers merged: false and leaves the base alone', async () => {
    origin.commit('orch/T-left', { 'shared.txt': 'left\n' });
    origin.commit('orch/T-right', { 'shared.txt': 'right\n' });
    const left = await forge.openPullRequest({ head: 'orch/T-left', base: 'main', title: 'left', body: '' });
    const right = await forge.openPullRequest({
      head: 'orch/T-right',
      base: 'main',
      title: 'right',
      body: '',
    });
    expect(await forge.mergePullRequest(left.number, 'merge')).toMatchObject({ merged: true });
    const before = origin.rev('main');

    const refused = await forge.mergePullRequest(right.number, 'merge');
    expect(refused).toEqual({ merged: false, message: 'Pull Request is not mergeable' });
    expect(origin.rev('main')).toBe(before);
    expect(origin.show('main', 'shared.txt')).toBe('left');
  });

  it('merging a missing pull request is not_found', async () => {
    expect(await failure(forge.mergePullRequest(999, 'merge'))).toMatchObject({ kind: 'not_found' });
  });
});

describe('GitHub webhooks', () => {
  const SECRET = 'hook-secret';
  const hooks = createGitHubWebhooks(SECRET);
  const delivery = (
    event: string,
    payload: unknown,
    extra: { signWith?: string; secret?: string | null } = {},
  ) => {
    const req = webhookRequest({ kind: 'github', secret: SECRET, event, payload, ...extra });
    return { headers: new Headers(req.headers), body: req.body, id: req.deliveryId };
  };

  it('verifies a good signature and parses the issue it is about', async () => {
    const n = fake.createIssue({ title: 'hooked' });
    const d = delivery('issues', fake.webhookPayload('issues', n, 'labeled'));
    expect(await hooks.verify(d.headers, d.body)).toBe(true);
    expect(hooks.parse(d.headers, d.body)).toEqual({ deliveryId: d.id, taskIds: [String(n)], reviews: [] });

    await tracker.comment(String(n), 'hello');
    const c = delivery('issue_comment', fake.webhookPayload('issue_comment', n));
    expect(await hooks.verify(c.headers, c.body)).toBe(true);
    expect(hooks.parse(c.headers, c.body)).toEqual({ deliveryId: c.id, taskIds: [String(n)], reviews: [] });
  });

  it('refuses a wrong or missing signature, or a changed body', async () => {
    const n = fake.createIssue({ title: 'hooked' });
    const payload = fake.webhookPayload('issues', n);
    const wrong = delivery('issues', payload, { signWith: 'not-the-secret' });
    expect(await hooks.verify(wrong.headers, wrong.body)).toBe(false);
    const unsigned = delivery('issues', payload, { secret: null });
    expect(await hooks.verify(unsigned.headers, unsigned.body)).toBe(false);
    const good = delivery('issues', payload);
    expect(await hooks.verify(good.headers, good.body.replace('hooked', 'h00ked'))).toBe(false);
    const garbage = new Headers(good.headers);
    garbage.set('x-hub-signature-256', 'sha256=zz');
    expect(await hooks.verify(garbage, good.body)).toBe(false);
  });

  it('ignores ping, label and pull request comment deliveries', async () => {
    const ping = delivery('ping', { zen: 'Keep it logically awesome.', hook_id: 1 });
    expect(await hooks.verify(ping.headers, ping.body)).toBe(true);
    expect(hooks.parse(ping.headers, ping.body)).toBeNull();
    const label = delivery('label', { action: 'deleted', label: { name: 'orch' } });
    expect(hooks.parse(label.headers, label.body)).toBeNull();
    origin.commit('orch/T-hook', { 'hook.txt': 'x\n' });
    const pr = await fake.createPull({ head: 'orch/T-hook', base: 'main', title: 'pr' });
    const onPull = delivery('issue_comment', fake.webhookPayload('issue_comment', pr));
    expect(hooks.parse(onPull.headers, onPull.body)).toBeNull();
  });

  it('a malformed body is an invalid TrackerError', async () => {
    const bad = delivery('issues', '{"action": "opened", "issue": ');
    expect(() => hooks.parse(bad.headers, bad.body)).toThrow(TrackerError);
    expect(() => hooks.parse(bad.headers, bad.body)).toThrow(expect.objectContaining({ kind: 'invalid' }));
    const noIssue = delivery('issues', { action: 'opened' });
    expect(() => hooks.parse(noIssue.headers, noIssue.body)).toThrow(
      expect.objectContaining({ kind: 'invalid' }),
    );
  });
});

forgeContract('GitHub', async (origin) => {
  const fake = await startGitHubFake({ token: TOKEN, repo: REPO, repoPath: origin.bare, maxPerPage: 2 });
  const secret = 'contract-secret';
  return {
    fake,
    forge: createGitHubForge({ baseUrl: fake.url, token: TOKEN, repo: REPO }),
    hooks: createGitHubWebhooks(secret),
    delivery: (event, payload) => {
      const req = webhookRequest({ kind: 'github', secret, event, payload });
      return { headers: new Headers(req.headers), body: req.body };
    },
  };
});
