/**
 * The GitLab adapters (tracker, forge, webhooks) over the real
 * `@gitbeaker/rest`, against the fake GitLab API on loopback, with merges
 * and rebases checked with git in a real bare repository.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createGitLabForge,
  createGitLabTracker,
  createGitLabWebhooks,
} from '../../src/trackers/gitlab/index.ts';
import type { Forge, Tracker } from '../../src/trackers/types.ts';
import { makeOriginRepo, type OriginRepo } from '../fakes/trackers/git-merge.ts';
import { startGitLabFake, type GitLabFake } from '../fakes/trackers/gitlab-server.ts';
import { webhookRequest } from '../fakes/trackers/webhook-sender.ts';
import { forgeContract } from './forge-contract.ts';
import {
  expectAuthFailure,
  expectOutage,
  expectRetryAfter,
  expectUnreachable,
  expectWritesNotFound,
  failure,
} from './adapter-kit.ts';

const TOKEN = 'glpat-test-token';
const PROJECT = 'acme/app';

let origin: OriginRepo;
let fake: GitLabFake;
let tracker: Tracker;
let forge: Forge;

beforeAll(() => {
  origin = makeOriginRepo();
});
afterAll(() => origin.cleanup());

beforeEach(async () => {
  // Pages of 2 (GitLab's cap is 100) so a handful of issues spans several pages.
  fake = await startGitLabFake({ token: TOKEN, project: PROJECT, repoPath: origin.bare, maxPerPage: 2 });
  tracker = createGitLabTracker({ url: fake.url, token: TOKEN, project: PROJECT });
  forge = createGitLabForge({ url: fake.url, token: TOKEN, project: PROJECT });
});
afterEach(() => fake.close());

describe('GitLab tracker', () => {
  it('lists every page, oldest first, applying the state, label and assignee filters', async () => {
    for (let n = 1; n <= 5; n++) {
      fake.createIssue({
        title: `issue ${n}`,
        labels: n % 2 === 0 ? ['orch', 'ready'] : ['orch'],
        assignees: n === 4 ? ['alice'] : [],
        state: n === 5 ? 'closed' : 'open',
      });
    }
    const all = await tracker.list({});
    expect(all.map((t) => t.title)).toEqual([1, 2, 3, 4, 5].map((n) => `issue ${n}`));
    expect(fake.service.served('GET', /\/issues$/)).toHaveLength(3);
    expect((await tracker.list({ states: ['open'] })).map((t) => t.id)).toEqual(['1', '2', '3', '4']);
    expect((await tracker.list({ labels: ['orch', 'ready'] })).map((t) => t.id)).toEqual(['2', '4']);
    expect((await tracker.list({ assignee: 'alice' })).map((t) => t.id)).toEqual(['4']);
    expect(await tracker.list({ states: ['closed'] })).toEqual([
      expect.objectContaining({ id: '5', state: 'closed' }),
    ]);
    await expect(tracker.list({ states: ['Doing'] })).rejects.toMatchObject({ kind: 'invalid' });
  });

  it('gets one issue as a task (GitLab’s `opened` read as open), and null for a missing iid', async () => {
    const n = fake.createIssue({
      title: 'Add a flag',
      body: 'Details',
      labels: ['orch'],
      assignees: ['bob'],
    });
    expect(await tracker.get(String(n))).toEqual({
      id: String(n),
      key: `${PROJECT}#${n}`,
      title: 'Add a flag',
      description: 'Details',
      url: `${fake.url}/${PROJECT}/-/issues/${n}`,
      state: 'open',
      labels: ['orch'],
      assignees: ['bob'],
      updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      blockedBy: [],
    });
    expect(await tracker.get('999')).toBeNull();
    await expect(tracker.get('x')).rejects.toMatchObject({ kind: 'invalid' });
  });

  it('writes back in one edit with only what differs, and nothing when nothing does', async () => {
    const n = fake.createIssue({ title: 't', labels: ['orch', 'orch:development'] });
    const before = fake.service.requests.length;
    await tracker.update(String(n), {
      state: 'closed',
      addLabels: ['orch:done'],
      removeLabels: ['orch:development', 'orch:review', 'orch:testing'],
    });
    const sent = fake.service.requests.slice(before);
    expect(sent.map((r) => r.method)).toEqual(['GET', 'PUT']);
    expect(JSON.parse(sent[1]!.body)).toEqual({
      state_event: 'close',
      add_labels: 'orch:done',
      remove_labels: 'orch:development',
    });
    expect(fake.issue(n)).toMatchObject({ state: 'closed', labels: ['orch', 'orch:done'] });

    const again = fake.service.requests.length;
    await tracker.update(String(n), {
      state: 'closed',
      addLabels: ['orch:done'],
      removeLabels: ['orch:review'],
    });
    expect(fake.service.requests.slice(again).map((r) => r.method)).toEqual(['GET']);

    await tracker.update(String(n), { state: 'open' });
    expect(fake.issue(n).state).toBe('open');
    await expect(tracker.update(String(n), { state: 'review' })).rejects.toMatchObject({ kind: 'invalid' });
  });

  it('comments as a note and returns its id', async () => {
    const n = fake.createIssue({ title: 't' });
    const { id } = await tracker.comment(String(n), '**developer** · $0.42');
    expect(id).toMatch(/^\d+$/);
    expect(fake.issue(n).comments).toEqual(['**developer** · $0.42']);
    await expectWritesNotFound(tracker, '999', { state: 'closed' });
  });
});

describe('GitLab errors become TrackerErrors with the retry hint, one request each', () => {
  it('a wrong token is auth, and never in the message', async () => {
    const wrong = createGitLabTracker({ url: fake.url, token: 'glpat-wrong', project: PROJECT });
    await expectAuthFailure(wrong.list({}), ['glpat-wrong']);
  });

  it('429 with Retry-After is rate_limited with that wait (gitbeaker does not retry it)', async () => {
    await expectRetryAfter(fake.service, () => tracker.get('1'), 9);
  });

  it('5xx is unavailable and not retried', async () => {
    fake.createIssue({ title: 't' });
    await expectOutage(fake.service, () => tracker.get('1'), { status: 502, times: 2 });
    expect(await tracker.get('1')).toMatchObject({ id: '1' });
  });

  it('an unknown project is not_found; a server that cannot be reached is unavailable', async () => {
    const other = createGitLabTracker({ url: fake.url, token: TOKEN, project: 'acme/other' });
    expect((await failure(other.list({}))).kind).toBe('not_found');
    await fake.close();
    await expectUnreachable(tracker.get('1'));
  });
});

describe('GitLab forge', () => {
  it('reads CI from the latest pipeline of a commit or branch', async () => {
    const sha = origin.commit('orch/GL-ci', { 'ci.txt': 'x\n' });
    expect(await forge.ciStatus(sha)).toEqual({ state: 'none', summary: 'no checks or statuses' });
    await fake.setPipeline(sha, 'running');
    expect((await forge.ciStatus(sha)).state).toBe('pending');
    await fake.setPipeline(sha, 'failed');
    expect(await forge.ciStatus(sha)).toMatchObject({
      state: 'failure',
      summary: expect.stringContaining('failing'),
    });
    await fake.setPipeline('orch/GL-ci', 'success');
    expect((await forge.ciStatus('orch/GL-ci')).state).toBe('success');
  });

  it('squash merges land the change; a rebase rewrites the branch onto the base first', async () => {
    origin.commit('orch/GL-squash', { 'squash.txt': 'squashed\n' });
    const sq = await forge.openPullRequest({ head: 'orch/GL-squash', base: 'main', title: 's', body: '' });
    const merged = await forge.mergePullRequest(sq.number, 'squash');
    expect(merged).toMatchObject({ merged: true, sha: origin.rev('main') });
    expect(origin.show('main', 'squash.txt')).toBe('squashed');

    const head = origin.commit('orch/GL-rebase', { 'rebase.txt': 'rebased\n' }, { from: 'main' });
    origin.commit('main', { 'moved.txt': 'base moved\n' });
    const rb = await forge.openPullRequest({ head: 'orch/GL-rebase', base: 'main', title: 'r', body: '' });
    expect(await forge.mergePullRequest(rb.number, 'rebase')).toMatchObject({ merged: true });
    expect(origin.show('main', 'rebase.txt')).toBe('rebased');
    // The branch was rebased: its commit is no longer the one pushed.
    expect(origin.rev('orch/GL-rebase')).not.toBe(head);
  });

  it('a conflicting merge answers merged: false and leaves the base alone', async () => {
    origin.commit('orch/GL-left', { 'shared.txt': 'left\n' });
    origin.commit('orch/GL-right', { 'shared.txt': 'right\n' });
    const left = await forge.openPullRequest({ head: 'orch/GL-left', base: 'main', title: 'l', body: '' });
    const right = await forge.openPullRequest({ head: 'orch/GL-right', base: 'main', title: 'r', body: '' });
    expect(await forge.mergePullRequest(left.number, 'merge')).toMatchObject({ merged: true });
    const before = origin.rev('main');
    const refused = await forge.mergePullRequest(right.number, 'merge');
    expect(refused).toMatchObject({ merged: false, message: expect.stringContaining('cannot be merged') });
    expect(origin.rev('main')).toBe(before);
  });

  it('a line comment is answered in its thread, which is then resolved', async () => {
    origin.commit('orch/GL-thread', { 'a.ts': 'x\n' });
    const pr = await forge.openPullRequest({ head: 'orch/GL-thread', base: 'main', title: 't', body: '' });
    const { comments } = fake.review(pr.number, {
      author: 'alice',
      state: 'commented',
      comments: [{ path: 'a.ts', line: 1, body: 'Explain.' }],
    });
    const said = await forge.reviews(pr.number);
    expect(said.comments).toEqual([
      expect.objectContaining({ author: 'alice', path: 'a.ts', line: 1, body: 'Explain.', answered: false }),
    ]);
    await forge.answer(pr.number, said.comments[0]!.id, 'Done.');
    const thread = fake.lineComments(pr.number);
    expect(thread.map((c) => [c.author, c.inReplyTo, c.resolvedBy])).toEqual([
      ['alice', null, 'orch-bot'],
      ['orch-bot', comments[0], 'orch-bot'],
    ]);
    expect((await forge.reviews(pr.number)).comments[0]!.answered).toBe(true);
  });
});

describe('GitLab webhooks', () => {
  const SECRET = 'gitlab-hook-token';
  const hooks = createGitLabWebhooks(SECRET);
  const delivery = (event: string, payload: unknown, secret: string | null = SECRET) => {
    const req = webhookRequest({ kind: 'gitlab', secret, event, payload });
    return { headers: new Headers(req.headers), body: req.body, id: req.deliveryId };
  };

  it('checks the secret token, and parses issue and note events into the issues they name', async () => {
    const n = fake.createIssue({ title: 'hooked' });
    const d = delivery('Issue Hook', fake.webhookPayload('issues', n));
    expect(await hooks.verify(d.headers, d.body)).toBe(true);
    expect(hooks.parse(d.headers, d.body)).toEqual({ deliveryId: d.id, taskIds: [String(n)], reviews: [] });
    await tracker.comment(String(n), 'hello');
    const c = delivery('Note Hook', fake.webhookPayload('issue_comment', n));
    expect(hooks.parse(c.headers, c.body)).toEqual({ deliveryId: c.id, taskIds: [String(n)], reviews: [] });

    for (const bad of [delivery('Issue Hook', {}, 'wrong-token'), delivery('Issue Hook', {}, null)])
      expect(await hooks.verify(bad.headers, bad.body)).toBe(false);
  });

  it('ignores other events; a malformed body is an invalid TrackerError', () => {
    const push = delivery('Push Hook', { object_kind: 'push', ref: 'refs/heads/main' });
    expect(hooks.parse(push.headers, push.body)).toBeNull();
    const opened = delivery('Merge Request Hook', {
      object_attributes: { iid: 1, source_branch: 'x', action: 'open' },
    });
    expect(hooks.parse(opened.headers, opened.body)).toBeNull();
    const bad = delivery('Issue Hook', '{"object_attributes": ');
    expect(() => hooks.parse(bad.headers, bad.body)).toThrow(expect.objectContaining({ kind: 'invalid' }));
    const noIid = delivery('Issue Hook', { object_attributes: {} });
    expect(() => hooks.parse(noIid.headers, noIid.body)).toThrow(
      expect.objectContaining({ kind: 'invalid' }),
    );
  });
});

forgeContract('GitLab', async (repo) => {
  const gl = await startGitLabFake({ token: TOKEN, project: PROJECT, repoPath: repo.bare, maxPerPage: 2 });
  const secret = 'contract-token';
  return {
    fake: gl,
    forge: createGitLabForge({ url: gl.url, token: TOKEN, project: PROJECT }),
    hooks: createGitLabWebhooks(secret),
    delivery: (event, payload) => {
      const req = webhookRequest({ kind: 'gitlab', secret, event, payload });
      return { headers: new Headers(req.headers), body: req.body };
    },
  };
});
