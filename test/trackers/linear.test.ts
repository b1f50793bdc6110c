/**
 * The Linear adapter over the real `@linear/sdk`, against a fake Linear
 * GraphQL endpoint on loopback that answers the documents the SDK sends.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createLinearTracker,
  createLinearWebhooks,
  rateLimitWaitMs,
} from '../../src/trackers/linear/index.ts';
import { TrackerError, type Tracker } from '../../src/trackers/types.ts';
import { startLinearFake, type LinearFake } from '../fakes/trackers/linear-server.ts';
import {
  expectAuthFailure,
  expectOutage,
  expectRetryAfter,
  expectSeedFilters,
  expectUnreachable,
  expectWritesNotFound,
  failure,
  SEED_ISSUES,
  titlesOf,
} from './adapter-kit.ts';

const API_KEY = 'lin_api_test_key';

let fake: LinearFake;
let tracker: Tracker;

beforeAll(async () => {
  fake = await startLinearFake({ apiKey: API_KEY, pageSize: 2 });
  fake.addUser({ name: 'Alice Doe', displayName: 'alice', email: 'alice@example.com' });
  fake.addUser({ name: 'Bob Roe', displayName: 'bob', email: 'bob@example.com' });
  fake.addLabel('orch', null); // a workspace label
  tracker = createLinearTracker({ apiKey: API_KEY, team: 'ENG', apiUrl: fake.apiUrl });
});
afterAll(() => fake.close());

/** Linear's names of the seed issues' states. */
const STATES = { todo: 'Todo', doing: 'In Progress', other: 'Backlog' };

describe('reads', () => {
  let keys: string[];
  beforeAll(() => {
    keys = SEED_ISSUES.map(
      (s, i) =>
        fake.createIssue({
          ...s,
          state: STATES[s.state],
          description: i === 0 ? 'Add `--verbose`.' : undefined,
        }).identifier,
    );
    fake.createIssue({ title: 'Another team', team: 'OPS', state: 'Todo', labels: ['orch'] });
  });

  test('list follows every page and keeps to the team', async () => {
    const before = fake.operations.filter((o) => o === 'issues').length;
    const tasks = await tracker.list({});
    const all = tasks.map((t) => t.key);
    expect(all).toEqual(expect.arrayContaining(keys));
    expect(all.every((k) => k.startsWith('ENG-'))).toBe(true);
    // Five or more issues in pages of two: the SDK's pagination was followed.
    expect(fake.operations.filter((o) => o === 'issues').length - before).toBeGreaterThanOrEqual(3);
    const flag = tasks.find((t) => t.title === 'Add a flag')!;
    expect(flag).toMatchObject({
      key: keys[0],
      description: 'Add `--verbose`.',
      state: 'Todo',
      assignees: ['alice'],
      url: `https://linear.app/acme/issue/${keys[0]}`,
    });
    expect(flag.labels.sort()).toEqual(['cli', 'orch']);
    expect(Number.isNaN(Date.parse(flag.updatedAt))).toBe(false);
  });

  test('list filters by states, all labels and assignee', async () => {
    await expectSeedFilters(tracker, STATES);
    const titles = titlesOf(tracker);
    expect(await titles({ assignee: 'bob', states: ['Todo'] })).toEqual(['Fix crash']);
    expect(await titles({ labels: ['no-such-label'] })).toEqual([]);
  });

  test('get reads one issue by id, and null when Linear has none', async () => {
    const created = fake.issue(keys[1]!);
    const task = await tracker.get(created.id);
    expect(task).toMatchObject({
      id: created.id,
      key: keys[1],
      title: 'Fix crash',
      state: 'Todo',
      assignees: ['bob'],
    });
    expect(await tracker.get(randomUUID())).toBeNull();
  });
});

describe('blockers', () => {
  test("an issue's blockers are the unfinished issues with a blocks relation to it", async () => {
    const blocked = fake.createIssue({ title: 'Blocked', state: 'Todo', labels: ['orch'] });
    const blocker = fake.createIssue({ title: 'Blocker', state: 'In Progress' });
    const finished = fake.createIssue({ title: 'Finished', state: 'Done' });
    fake.block(blocker.identifier, blocked.identifier);
    fake.block(finished.identifier, blocked.identifier);
    expect((await tracker.get(blocked.id))?.blockedBy).toEqual([{ id: blocker.id, key: blocker.identifier }]);
    const listed = await tracker.list({ states: ['Todo'], labels: ['orch'] });
    expect(listed.find((t) => t.id === blocked.id)?.blockedBy).toEqual([
      { id: blocker.id, key: blocker.identifier },
    ]);
    // Once the blocker is done, nothing blocks.
    fake.setState(blocker.id, 'Done');
    expect((await tracker.get(blocked.id))?.blockedBy).toEqual([]);
  });
});

describe('writes', () => {
  test('update moves the issue to a workflow state by name and adds and removes labels', async () => {
    const issue = fake.createIssue({ title: 'Write back', state: 'Todo', labels: ['orch', 'stale'] });
    await tracker.update(issue.id, {
      state: 'in review',
      addLabels: ['orch', 'orch:review'],
      removeLabels: ['stale', 'absent'],
    });
    const after = fake.issue(issue.id);
    expect(after.state).toBe('In Review');
    // 'orch' was there already; 'orch:review' did not exist and was created; 'absent' was never there.
    expect(after.labels.sort()).toEqual(['orch', 'orch:review']);
    // Label names match without regard to case: no second label is created.
    await tracker.update(issue.id, { addLabels: ['orch:review', 'ORCH:Review'] });
    expect(fake.issue(issue.id).labels.sort()).toEqual(['orch', 'orch:review']);
  });

  test('an unknown state is refused, naming the states the team has, and nothing changes', async () => {
    const issue = fake.createIssue({ title: 'Stay', state: 'Todo' });
    const err = await failure(tracker.update(issue.id, { state: 'Shipped', addLabels: ['x'] }));
    expect(err.kind).toBe('invalid');
    expect(err.message).toContain('"Shipped"');
    expect(err.message).toContain('In Progress');
    expect(fake.issue(issue.id)).toMatchObject({ state: 'Todo', labels: [] });
  });

  test('comment posts Markdown and returns the comment id', async () => {
    const issue = fake.createIssue({ title: 'Talk' });
    const body = '**developer** · sonnet · 2m 3s\n\n- tokens: 1200';
    const { id } = await tracker.comment(issue.id, body);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(fake.issue(issue.id).comments).toEqual([body]);
  });

  test('an update whose state and labels the issue has already sends no mutation', async () => {
    const issue = fake.createIssue({ title: 'Settled', state: 'In Review', labels: ['orch'] });
    const mutations = () => fake.operations.filter((o) => o === 'updateIssue').length;
    const before = mutations();
    await tracker.update(issue.id, { state: 'In Review', addLabels: ['orch'], removeLabels: ['absent'] });
    expect(mutations()).toBe(before);
    await tracker.update(issue.id, { state: 'Done' });
    expect(mutations()).toBe(before + 1);
  });

  test('writes to an issue Linear does not have are not_found', async () => {
    await expectWritesNotFound(tracker, randomUUID(), { state: 'Done' });
  });
});

describe('failures', () => {
  test('a wrong API key is auth, and is never in the message', async () => {
    const bad = createLinearTracker({ apiKey: 'lin_api_wrong', team: 'ENG', apiUrl: fake.apiUrl });
    const err = await expectAuthFailure(bad.list({}), ['lin_api_wrong']);
    expect(err.message).toContain('list issues');
  });

  test('an authentication error in a 400 answer is auth too', async () => {
    fake.service.fail({
      status: 400,
      times: 1,
      body: {
        errors: [
          {
            message: 'Authentication required, not authenticated',
            extensions: { type: 'authentication error', code: 'AUTHENTICATION_ERROR' },
          },
        ],
      },
    });
    expect(await failure(tracker.list({}))).toMatchObject({ kind: 'auth', status: 400 });
  });

  test("Linear's rate-limit answer (400, RATELIMITED) is rate_limited with the wait until the reset", async () => {
    const resetAt = Date.now() + 60_000;
    fake.service.fail({
      status: 400,
      times: 1,
      path: /^\/graphql$/,
      headers: {
        'x-ratelimit-requests-limit': '1500',
        'x-ratelimit-requests-remaining': '0',
        'x-ratelimit-requests-reset': String(resetAt),
        'x-ratelimit-complexity-remaining': '240000',
        'x-ratelimit-complexity-reset': String(resetAt + 600_000),
      },
      body: { errors: [{ message: 'Rate limit exceeded', extensions: { code: 'RATELIMITED' } }] },
    });
    const err = await failure(tracker.list({}));
    expect(err.kind).toBe('rate_limited');
    expect(err.status).toBe(400);
    // The requests budget is the exhausted one: its reset, not the complexity budget's.
    expect(err.retryAfterMs).toBeGreaterThan(30_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  test('a 429 with Retry-After is rate_limited with that wait', async () => {
    await expectRetryAfter(fake.service, () => tracker.get(randomUUID()), 7, {
      errors: [{ message: 'Too many requests' }],
    });
  });

  test('5xx is unavailable; so is a server that does not answer', async () => {
    await expectOutage(fake.service, () => tracker.list({}), { status: 503, times: 1 });
    await expectOutage(fake.service, () => tracker.list({}), {
      status: 500,
      times: 1,
      body: { errors: [{ message: 'boom', extensions: { type: 'internal error' } }] },
    });
    const gone = await startLinearFake({ apiKey: API_KEY });
    const url = gone.apiUrl;
    await gone.close();
    const offline = createLinearTracker({ apiKey: API_KEY, team: 'ENG', apiUrl: url });
    await expectUnreachable(offline.list({}));
  });

  test('the rate-limit wait: Retry-After first, then the exhausted budget, seconds accepted', () => {
    const now = 1_700_000_000_000;
    const h = (o: Record<string, string>) => new Headers(o);
    expect(rateLimitWaitMs(h({ 'retry-after': '3' }), now)).toBe(3000);
    expect(
      rateLimitWaitMs(
        h({
          'x-ratelimit-requests-remaining': '10',
          'x-ratelimit-requests-reset': String(now + 5000),
          'x-ratelimit-complexity-remaining': '0',
          'x-ratelimit-complexity-reset': String(now + 9000),
        }),
        now,
      ),
    ).toBe(9000);
    expect(rateLimitWaitMs(h({ 'x-ratelimit-requests-reset': String(now / 1000 + 4) }), now)).toBe(4000);
    expect(rateLimitWaitMs(h({}), now)).toBeNull();
  });
});

describe('webhooks', () => {
  const secret = 'whsec_linear';
  const hooks = createLinearWebhooks(secret);
  const sign = (body: string) => createHmac('sha256', secret).update(body).digest('hex');
  const delivery = (over: Record<string, unknown> = {}) =>
    JSON.stringify({
      action: 'update',
      type: 'Issue',
      data: { id: 'issue-uuid-1', identifier: 'ENG-1', title: 'Add a flag' },
      url: 'https://linear.app/acme/issue/ENG-1',
      organizationId: 'org-1',
      webhookTimestamp: Date.now(),
      webhookId: 'hook-1',
      ...over,
    });

  test('a good signature verifies and an Issue event names the issue id', async () => {
    const body = delivery();
    const headers = new Headers({
      'linear-signature': sign(body),
      'linear-delivery': 'd-1',
      'linear-event': 'Issue',
    });
    expect(await hooks.verify(headers, body)).toBe(true);
    expect(hooks.parse(headers, body)).toEqual({ deliveryId: 'd-1', taskIds: ['issue-uuid-1'], reviews: [] });
  });

  test('a bad, missing or replayed signature is refused', async () => {
    const body = delivery();
    expect(await hooks.verify(new Headers({ 'linear-signature': sign(body + ' ') }), body)).toBe(false);
    expect(await hooks.verify(new Headers({ 'linear-signature': 'zz' }), body)).toBe(false);
    expect(await hooks.verify(new Headers(), body)).toBe(false);
    const stale = delivery({ webhookTimestamp: Date.now() - 120_000 });
    expect(await hooks.verify(new Headers({ 'linear-signature': sign(stale) }), stale)).toBe(false);
    const untimed = JSON.stringify({ type: 'Issue', data: { id: 'x' } });
    expect(await hooks.verify(new Headers({ 'linear-signature': sign(untimed) }), untimed)).toBe(false);
  });

  test('events about other things are ignored; malformed bodies throw invalid', () => {
    const comment = delivery({ type: 'Comment', data: { id: 'c-1', issueId: 'issue-uuid-1' } });
    expect(hooks.parse(new Headers(), comment)).toBeNull();
    for (const bad of ['not json', '[]', '{"data":{}}', JSON.stringify({ type: 'Issue', data: {} })]) {
      let err: unknown;
      try {
        hooks.parse(new Headers(), bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TrackerError);
      expect((err as TrackerError).kind).toBe('invalid');
    }
  });

  test('without a delivery header the id is a hash of the body, the same for a duplicate', () => {
    const body = delivery();
    const a = hooks.parse(new Headers(), body)!;
    expect(a.deliveryId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hooks.parse(new Headers(), body)!.deliveryId).toBe(a.deliveryId);
  });
});
