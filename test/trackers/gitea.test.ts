/**
 * The Gitea/Forgejo adapters (tracker, forge, webhooks) against the fake
 * Gitea API on loopback, for both kinds, with merges checked with git in a
 * real bare repository.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGiteaForge, createGiteaTracker, createGiteaWebhooks } from '../../src/trackers/gitea/index.ts';
import type { Forge, Tracker } from '../../src/trackers/types.ts';
import { makeOriginRepo, type OriginRepo } from '../fakes/trackers/git-merge.ts';
import { startGiteaFake, type GiteaFake } from '../fakes/trackers/gitea-server.ts';
import { webhookRequest } from '../fakes/trackers/webhook-sender.ts';
import { forgeContract } from './forge-contract.ts';
import {
  expectAuthFailure,
  expectOutage,
  expectRetryAfter,
  expectUnreachable,
  failure,
} from './adapter-kit.ts';

const TOKEN = 'gitea_test_token';
const REPO = 'acme/app';

describe.each(['gitea', 'forgejo'] as const)('%s', (kind) => {
  let origin: OriginRepo;
  let fake: GiteaFake;
  let tracker: Tracker;
  let forge: Forge;
  const branch = (name: string) => `orch/${kind}-${name}`;

  beforeAll(() => {
    origin = makeOriginRepo();
  });
  afterAll(() => origin.cleanup());

  beforeEach(async () => {
    // Pages of at most 3 whatever `limit` asks (Gitea caps at MAX_RESPONSE_ITEMS), while the adapter asks 50.
    fake = await startGiteaFake({ kind, token: TOKEN, repo: REPO, repoPath: origin.bare, maxPageSize: 3 });
    tracker = createGiteaTracker({ url: fake.url, token: TOKEN, repo: REPO, kind });
    forge = createGiteaForge({ url: fake.url, token: TOKEN, repo: REPO, kind });
  });
  afterEach(() => fake.close());

  describe('tracker', () => {
    it('lists every page of issues only, keeping issues with all the labels asked for', async () => {
      for (let n = 1; n <= 7; n++) {
        fake.createIssue({
          title: `issue ${n}`,
          labels: n % 2 === 0 ? ['orch', 'ready'] : ['orch'],
          assignees: n === 4 ? ['alice'] : [],
          state: n === 7 ? 'closed' : 'open',
        });
      }
      origin.commit(branch('listed'), { 'listed.txt': 'x\n' });
      await fake.createPull({ head: branch('listed'), base: 'main', title: 'a pull request' });

      const all = await tracker.list({});
      expect(all.map((t) => t.title).sort()).toEqual([1, 2, 3, 4, 5, 6, 7].map((n) => `issue ${n}`));
      // Short pages (3 of the 50 asked) do not end the list: X-Total-Count does.
      const pages = fake.service.served('GET', /\/issues$/);
      expect(pages).toHaveLength(3);
      expect(pages[0]!.query).toContain('type=issues');
      expect(pages[0]!.query).toContain('limit=50');

      expect(await tracker.list({ states: ['open'] })).toHaveLength(6);
      // Gitea's own label filter is "any of": the adapter keeps issues with both.
      const ready = await tracker.list({ states: ['open'], labels: ['orch', 'ready'] });
      expect(ready.map((t) => t.id).sort()).toEqual(['2', '4', '6']);
      // A label the repository lacks is dropped by Gitea's filter; the adapter still matches nothing.
      expect(await tracker.list({ labels: ['no-such-label'] })).toEqual([]);
      expect((await tracker.list({ assignee: 'alice' })).map((t) => t.id)).toEqual(['4']);
      expect(await tracker.list({ states: ['closed'] })).toEqual([
        expect.objectContaining({ id: '7', state: 'closed' }),
      ]);
      await expect(tracker.list({ states: ['Doing'] })).rejects.toMatchObject({ kind: 'invalid' });
    });

    it('follows the Link header when the server sends no X-Total-Count', async () => {
      const bare = await startGiteaFake({
        kind,
        token: TOKEN,
        repo: REPO,
        maxPageSize: 2,
        totalCount: false,
      });
      try {
        for (let n = 1; n <= 5; n++) bare.createIssue({ title: `issue ${n}` });
        // The API root given as the url works too.
        const viaApi = createGiteaTracker({ url: `${bare.url}/api/v1/`, token: TOKEN, repo: REPO, kind });
        expect((await viaApi.list({})).map((t) => t.id).sort()).toEqual(['1', '2', '3', '4', '5']);
        expect(bare.service.served('GET', /\/issues$/)).toHaveLength(3);
      } finally {
        await bare.close();
      }
    });

    it('gets one issue as a task, and null for a missing number or a pull request', async () => {
      const n = fake.createIssue({
        title: 'Add a flag',
        body: 'Details',
        labels: ['orch'],
        assignees: ['bob'],
      });
      expect(await tracker.get(String(n))).toEqual({
        id: String(n),
        key: `${REPO}#${n}`,
        title: 'Add a flag',
        description: 'Details',
        url: `${fake.url}/${REPO}/issues/${n}`,
        state: 'open',
        labels: ['orch'],
        assignees: ['bob'],
        updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        blockedBy: [],
      });
      expect(await tracker.get('999')).toBeNull();
      origin.commit(branch('get'), { 'get.txt': 'x\n' });
      const pr = await fake.createPull({ head: branch('get'), base: 'main', title: 'pr' });
      expect(await tracker.get(String(pr))).toBeNull();
    });

    it('closes and reopens; adds labels by id, creating missing ones; removing a missing one is no error', async () => {
      fake.addLabel('stage:review');
      const n = fake.createIssue({ title: 't', labels: ['orch'] });
      const id = String(n);
      await tracker.update(id, { state: 'closed', addLabels: ['stage:review', 'stage:new'] });
      expect(fake.issue(n)).toMatchObject({ state: 'closed', labels: ['orch', 'stage:review', 'stage:new'] });
      expect(fake.labels().filter((l) => l === 'stage:new')).toHaveLength(1);
      // The label endpoints were given ids.
      const added = fake.service.served('POST', new RegExp(`/issues/${n}/labels$`));
      expect(JSON.parse(added[0]!.body)).toEqual({ labels: [expect.any(Number), expect.any(Number)] });

      await tracker.update(id, { state: 'open', removeLabels: ['stage:review', 'never-there'] });
      expect(fake.issue(n)).toMatchObject({ state: 'open', labels: ['orch', 'stage:new'] });

      // Adding what is there makes no label call.
      const before = fake.service.served('POST', /\/labels$/).length;
      await tracker.update(id, { addLabels: ['orch', 'STAGE:NEW'] });
      expect(fake.service.served('POST', /\/labels$/)).toHaveLength(before);

      await expect(tracker.update(id, { state: 'review' })).rejects.toMatchObject({ kind: 'invalid' });
      expect(await failure(tracker.update('999', { state: 'closed' }))).toMatchObject({
        kind: 'not_found',
        status: 404,
      });
      expect(await failure(tracker.update('999', { addLabels: ['x'] }))).toMatchObject({ kind: 'not_found' });
    });

    it('a state the issue is in and labels it has cost one read and nothing sent', async () => {
      const n = fake.createIssue({ title: 't', labels: ['orch', 'orch:review'] });
      const before = fake.service.requests.length;
      await tracker.update(String(n), {
        state: 'open',
        addLabels: ['orch:review'],
        removeLabels: ['orch:development', 'orch:testing'],
      });
      expect(fake.service.requests.slice(before).map((r) => r.method)).toEqual(['GET']);
    });

    it("an issue's blockers are its open dependencies", async () => {
      const blocked = fake.createIssue({ title: 'blocked', labels: ['orch'] });
      const blocker = fake.createIssue({ title: 'blocker', labels: ['orch'] });
      const closed = fake.createIssue({ title: 'closed', state: 'closed' });
      fake.block(blocker, blocked);
      fake.block(closed, blocked);
      expect((await tracker.get(String(blocked)))?.blockedBy).toEqual([
        { id: String(blocker), key: `${REPO}#${blocker}` },
      ]);
      const listed = await tracker.list({ labels: ['orch'] });
      expect(listed.map((t) => [t.id, t.blockedBy?.length])).toEqual([
        [String(blocked), 1],
        [String(blocker), 0],
      ]);
    });

    it('comments and returns the comment id', async () => {
      const n = fake.createIssue({ title: 't' });
      const { id } = await tracker.comment(String(n), 'usage: developer · $0.42');
      expect(id).toMatch(/^\d+$/);
      expect(fake.issue(n).comments).toEqual(['usage: developer · $0.42']);
    });
  });

  describe('errors', () => {
    it('a wrong token is auth', async () => {
      const wrong = createGiteaTracker({ url: fake.url, token: 'nope', repo: REPO, kind });
      const err = await expectAuthFailure(wrong.list({}), ['nope']);
      expect(err.message).toContain(kind);
    });

    it('404 on a missing repository is not_found', async () => {
      const other = createGiteaTracker({ url: fake.url, token: TOKEN, repo: 'acme/other', kind });
      expect(await failure(other.list({}))).toMatchObject({ kind: 'not_found', retryable: false });
    });

    it('429 with Retry-After: 7 is rate_limited with 7000 ms', async () => {
      await expectRetryAfter(fake.service, () => tracker.comment('1', 'x'), 7);
    });

    it('a 5xx storm is unavailable on every call, then the service answers again', async () => {
      fake.createIssue({ title: 't' });
      await expectOutage(fake.service, () => tracker.get('1'), { status: 503, times: 3 });
      expect(fake.service.requests).toHaveLength(3);
      expect(await tracker.get('1')).toMatchObject({ id: '1' });
    });

    it('a server that cannot be reached is unavailable', async () => {
      await fake.close();
      await expectUnreachable(tracker.list({}));
    });
  });

  describe('forge', () => {
    it('opening a pull request twice gives the same one', async () => {
      origin.commit(branch('T-1'), { 'one.txt': '1\n' });
      const first = await forge.openPullRequest({
        head: branch('T-1'),
        base: 'main',
        title: 'T-1',
        body: '',
      });
      const again = await forge.openPullRequest({
        head: branch('T-1'),
        base: 'main',
        title: 'T-1',
        body: '',
      });
      expect(again).toEqual(first);
      expect(first).toMatchObject({ head: branch('T-1'), base: 'main', state: 'open' });
      expect(fake.service.served('POST', /\/pulls$/)).toHaveLength(1);
    });

    it('reads the combined commit status', async () => {
      const sha = origin.commit(branch('ci'), { 'ci.txt': 'x\n' });
      expect(await forge.ciStatus(sha)).toEqual({ state: 'none', summary: 'no checks or statuses' });
      await fake.setStatus(sha, { context: 'ci/build', state: 'pending' });
      await fake.setStatus(sha, { context: 'ci/lint', state: 'success' });
      expect(await forge.ciStatus(sha)).toEqual({ state: 'pending', summary: 'pending: ci/build' });
      await fake.setStatus(sha, { context: 'ci/build', state: 'failure' });
      expect(await forge.ciStatus(branch('ci'))).toMatchObject({
        state: 'failure',
        summary: 'failing: ci/build',
      });
      await fake.setStatus(sha, { context: 'ci/build', state: 'success' });
      expect(await forge.ciStatus(sha)).toEqual({ state: 'success', summary: '2 passed: ci/build, ci/lint' });
    });

    it('reads the combined state when the statuses span more than one page', async () => {
      const sha = origin.commit(branch('many'), { 'many.txt': 'x\n' });
      for (const ctx of ['a', 'b', 'c']) await fake.setStatus(sha, { context: ctx, state: 'success' });
      await fake.setStatus(sha, { context: 'z-failing', state: 'error' });
      // The fake serves 3 of the 4 latest statuses; its combined state is the worst of all.
      const status = await forge.ciStatus(sha);
      expect(status.state).toBe('failure');
      expect(status.summary).toContain('3 of 4 statuses read');
    });

    it('merging puts the change on the base in the bare repository', async () => {
      const head = origin.commit(branch('merge'), { [`${kind}-feature.txt`]: 'merged\n' });
      const pr = await forge.openPullRequest({
        head: branch('merge'),
        base: 'main',
        title: 'merge',
        body: '',
      });
      const result = await forge.mergePullRequest(pr.number, 'merge');
      expect(result).toEqual({ merged: true, sha: origin.rev('main') });
      expect(origin.contains('main', head)).toBe(true);
      expect(JSON.parse(fake.service.served('POST', /\/merge$/)[0]!.body)).toEqual({ Do: 'merge' });
      expect(fake.pulls()[0]).toMatchObject({ state: 'closed', merged: true });
      // Gitea answers 405 for a merged pull request: refused, not thrown.
      expect(await forge.mergePullRequest(pr.number, 'merge')).toMatchObject({ merged: false });
    });

    it('squash and rebase also land the change', async () => {
      origin.commit(branch('squash'), { [`${kind}-squash.txt`]: 'squashed\n' });
      const sq = await forge.openPullRequest({ head: branch('squash'), base: 'main', title: 'sq', body: '' });
      expect(await forge.mergePullRequest(sq.number, 'squash')).toMatchObject({ merged: true });
      expect(origin.show('main', `${kind}-squash.txt`)).toBe('squashed');
      origin.commit(branch('rebase'), { [`${kind}-rebase.txt`]: 'rebased\n' });
      const rb = await forge.openPullRequest({ head: branch('rebase'), base: 'main', title: 'rb', body: '' });
      expect(await forge.mergePullRequest(rb.number, 'rebase')).toMatchObject({ merged: true });
      expect(origin.show('main', `${kind}-rebase.txt`)).toBe('rebased');
    });

    it('a conflicting merge answers merged: false and leaves the base alone', async () => {
      origin.commit(branch('left'), { [`${kind}-shared.txt`]: 'left\n' });
      origin.commit(branch('right'), { [`${kind}-shared.txt`]: 'right\n' });
      const left = await forge.openPullRequest({ head: branch('left'), base: 'main', title: 'l', body: '' });
      const right = await forge.openPullRequest({
        head: branch('right'),
        base: 'main',
        title: 'r',
        body: '',
      });
      expect(await forge.mergePullRequest(left.number, 'merge')).toMatchObject({ merged: true });
      const before = origin.rev('main');
      const refused = await forge.mergePullRequest(right.number, 'rebase');
      expect(refused.merged).toBe(false);
      expect(refused.message).toMatch(/does not rebase cleanly/);
      expect(origin.rev('main')).toBe(before);
      expect(origin.show('main', `${kind}-shared.txt`)).toBe('left');
    });
  });

  describe('webhooks', () => {
    const SECRET = 'hook-secret';
    const hooks = createGiteaWebhooks(SECRET, kind);
    const delivery = (
      event: string,
      payload: unknown,
      extra: { signWith?: string; secret?: string | null; eventType?: string } = {},
    ) => {
      const req = webhookRequest({ kind, secret: SECRET, event, payload, ...extra });
      return { headers: new Headers(req.headers), body: req.body, id: req.deliveryId };
    };

    it('verifies a good signature and parses the issue it is about', async () => {
      const n = fake.createIssue({ title: 'hooked' });
      const d = delivery('issues', fake.webhookPayload('issues', n, 'label_updated'), {
        eventType: 'issue_label',
      });
      expect(await hooks.verify(d.headers, d.body)).toBe(true);
      expect(hooks.parse(d.headers, d.body)).toEqual({ deliveryId: d.id, taskIds: [String(n)], reviews: [] });
      await tracker.comment(String(n), 'hello');
      const c = delivery('issue_comment', fake.webhookPayload('issue_comment', n));
      expect(hooks.parse(c.headers, c.body)).toEqual({ deliveryId: c.id, taskIds: [String(n)], reviews: [] });
    });

    it(`reads ${kind}'s own header names`, async () => {
      const n = fake.createIssue({ title: 'hooked' });
      const d = delivery('issues', fake.webhookPayload('issues', n));
      // Only the headers of this kind (Forgejo's own names, or Gitea's).
      const own = new Headers();
      for (const [k, v] of d.headers) if (k.startsWith(`x-${kind}-`)) own.set(k, v);
      expect(await hooks.verify(own, d.body)).toBe(true);
      expect(hooks.parse(own, d.body)).toEqual({ deliveryId: d.id, taskIds: [String(n)], reviews: [] });
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
      const short = new Headers(good.headers);
      short.set(`x-${kind}-signature`, 'abc');
      short.set('x-gitea-signature', 'abc');
      expect(await hooks.verify(short, good.body)).toBe(false);
    });

    it('ignores other events and comments on pull requests', async () => {
      const push = delivery('push', { ref: 'refs/heads/main', commits: [] });
      expect(await hooks.verify(push.headers, push.body)).toBe(true);
      expect(hooks.parse(push.headers, push.body)).toBeNull();
      origin.commit(branch('hook'), { 'hook.txt': 'x\n' });
      const pr = await fake.createPull({ head: branch('hook'), base: 'main', title: 'pr' });
      const onPull = delivery('issue_comment', fake.webhookPayload('issue_comment', pr));
      expect(hooks.parse(onPull.headers, onPull.body)).toBeNull();
    });

    it('a malformed body is an invalid TrackerError', () => {
      const bad = delivery('issues', 'not json at all');
      expect(() => hooks.parse(bad.headers, bad.body)).toThrow(expect.objectContaining({ kind: 'invalid' }));
      const noIssue = delivery('issues', { action: 'opened' });
      expect(() => hooks.parse(noIssue.headers, noIssue.body)).toThrow(
        expect.objectContaining({ kind: 'invalid' }),
      );
    });
  });
});

for (const kind of ['gitea', 'forgejo'] as const) {
  forgeContract(kind, async (origin) => {
    const fake = await startGiteaFake({
      kind,
      token: TOKEN,
      repo: REPO,
      repoPath: origin.bare,
      maxPageSize: 2,
    });
    const secret = 'contract-secret';
    return {
      fake,
      forge: createGiteaForge({ url: fake.url, token: TOKEN, repo: REPO, kind }),
      hooks: createGiteaWebhooks(secret, kind),
      delivery: (event, payload) => {
        const req = webhookRequest({ kind, secret, event, payload });
        return { headers: new Headers(req.headers), body: req.body };
      },
    };
  });
}
