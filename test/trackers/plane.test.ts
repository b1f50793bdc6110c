/**
 * The Plane adapter against a fake Plane REST API (v1) on loopback.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createPlaneTracker,
  createPlaneWebhooks,
  htmlToText,
  markdownToHtml,
} from '../../src/trackers/plane/index.ts';
import { TrackerError, type Tracker } from '../../src/trackers/types.ts';
import { startPlaneFake, type PlaneFake } from '../fakes/trackers/plane-server.ts';
import {
  expectAuthFailure,
  expectOutage,
  expectRetryAfter,
  expectSeedFilters,
  expectWritesNotFound,
  failure,
  SEED_ISSUES,
  titlesOf,
} from './adapter-kit.ts';

const TOKEN = 'plane_api_test_token';

let fake: PlaneFake;
let tracker: Tracker;

beforeAll(async () => {
  fake = await startPlaneFake({ token: TOKEN, pageSize: 2 });
  fake.addUser({ display_name: 'alice', email: 'alice@example.com' });
  fake.addUser({ display_name: 'bob', email: 'bob@example.com' });
  tracker = createPlaneTracker({
    baseUrl: fake.url,
    token: TOKEN,
    workspace: fake.workspace,
    project: fake.projectId,
  });
});
afterAll(() => fake.close());

/** Plane's names of the seed issues' states. */
const STATES = { todo: 'Todo', doing: 'In Progress', other: 'Backlog' };

describe('reads', () => {
  let ids: string[];
  beforeAll(() => {
    ids = SEED_ISSUES.map(
      (s, i) =>
        fake.createItem({
          name: s.title,
          description_html: i === 0 ? '<p>Add <code>--verbose</code> &amp; docs.</p>' : undefined,
          state: STATES[s.state],
          labels: s.labels,
          assignees: s.assignee ? [s.assignee] : [],
        }).id,
    );
  });

  test('list follows next_cursor over every page', async () => {
    const before = fake.service.served('GET', /\/work-items\/$/).length;
    const tasks = await tracker.list({});
    expect(tasks.map((t) => t.title)).toEqual(['Add a flag', 'Fix crash', 'Docs', 'Refactor', 'Release']);
    // Five items in pages of two.
    const pages = fake.service.served('GET', /\/work-items\/$/).slice(before);
    expect(pages.length).toBe(3);
    expect(pages[1]!.query).toContain('cursor=');
    expect(pages[0]!.headers['x-api-key']).toBe(TOKEN);
    // The project (for its identifier) is asked once, not once per item.
    expect(fake.service.served('GET', new RegExp(`/projects/${fake.projectId}/$`)).length).toBe(1);
    expect(tasks[0]).toMatchObject({
      id: ids[0],
      key: `${fake.identifier}-1`,
      description: 'Add --verbose & docs.',
      state: 'Todo',
      labels: ['orch', 'cli'],
      assignees: ['alice'],
      url: `${fake.url}/${fake.workspace}/projects/${fake.projectId}/issues/${ids[0]}`,
    });
  });

  test('list filters by states, all labels and assignee', async () => {
    await expectSeedFilters(tracker, STATES);
    const titles = titlesOf(tracker);
    // State names match without regard to case.
    expect(await titles({ states: ['todo'] })).toEqual(['Add a flag', 'Fix crash', 'Release']);
    expect(await titles({ assignee: 'bob' })).toEqual(['Fix crash']);
  });

  test('get reads one item by id or by key, and null when Plane has none', async () => {
    expect(await tracker.get(ids[1]!)).toMatchObject({
      id: ids[1],
      key: `${fake.identifier}-2`,
      title: 'Fix crash',
      assignees: ['bob'],
    });
    expect(await tracker.get(`${fake.identifier}-2`)).toMatchObject({ id: ids[1] });
    expect(await tracker.get(randomUUID())).toBeNull();
    expect(await tracker.get(`${fake.identifier}-999`)).toBeNull();
  });
});

describe('blockers', () => {
  test("a work item's blockers are its unfinished blocked_by relations", async () => {
    const blocked = fake.createItem({ name: 'Blocked', state: 'Todo', labels: ['orch'] });
    const blocker = fake.createItem({ name: 'Blocker', state: 'In Progress' });
    const finished = fake.createItem({ name: 'Finished', state: 'Done' });
    fake.block(blocker.id, blocked.id);
    fake.block(finished.id, blocked.id);
    expect((await tracker.get(blocked.id))?.blockedBy).toEqual([{ id: blocker.id, key: blocker.key }]);
    const listed = await tracker.list({ labels: ['orch'] });
    expect(listed.find((t) => t.id === blocked.id)?.blockedBy).toEqual([
      { id: blocker.id, key: blocker.key },
    ]);
    fake.setState(blocker.id, 'Done');
    expect((await tracker.get(blocked.id))?.blockedBy).toEqual([]);
  });
});

describe('writes', () => {
  test('update sets the state by name and patches the label set, creating a missing label', async () => {
    const item = fake.createItem({ name: 'Write back', state: 'Todo', labels: ['orch', 'stale'] });
    await tracker.update(item.id, {
      state: 'in review',
      addLabels: ['orch', 'orch:review'],
      removeLabels: ['stale', 'absent'],
    });
    const after = fake.item(item.id);
    expect(after.state).toBe('In Review');
    expect(after.labels.sort()).toEqual(['orch', 'orch:review']);
  });

  test('an update that changes nothing sends no PATCH', async () => {
    const item = fake.createItem({ name: 'Idle', state: 'Todo', labels: ['orch'] });
    const before = fake.service.served('PATCH', /./).length;
    await tracker.update(item.id, { state: 'Todo', addLabels: ['orch'], removeLabels: ['absent'] });
    await tracker.update(item.id, {});
    expect(fake.service.served('PATCH', /./).length).toBe(before);
  });

  test('an unknown state is refused, naming the states there are, and nothing changes', async () => {
    const item = fake.createItem({ name: 'Stay', state: 'Todo' });
    const err = await failure(tracker.update(item.id, { state: 'Shipped', addLabels: ['x'] }));
    expect(err.kind).toBe('invalid');
    expect(err.message).toContain('"Shipped"');
    expect(err.message).toContain('In Progress');
    expect(fake.item(item.id)).toMatchObject({ state: 'Todo', labels: [] });
  });

  test('comment posts the Markdown as escaped HTML and returns the comment id', async () => {
    const item = fake.createItem({ name: 'Talk' });
    const { id } = await tracker.comment(
      item.id,
      '**developer** · 2m\n\n<script>x</script>\n```\na < b\n```',
    );
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(fake.item(item.id).comments).toEqual([
      '<p>**developer** · 2m</p><p>&lt;script&gt;x&lt;/script&gt;</p><pre><code>a &lt; b</code></pre>',
    ]);
  });

  test('writes to an item Plane does not have are not_found', async () => {
    await expectWritesNotFound(tracker, randomUUID(), { addLabels: ['x'] });
  });
});

describe('failures', () => {
  test('a wrong token is auth, and is never in the message', async () => {
    const bad = createPlaneTracker({
      baseUrl: fake.url,
      token: 'plane_api_wrong',
      workspace: fake.workspace,
      project: fake.projectId,
    });
    await expectAuthFailure(bad.list({}), ['plane_api_wrong']);
  });

  test('an unknown project is not_found', async () => {
    const other = createPlaneTracker({
      baseUrl: fake.url,
      token: TOKEN,
      workspace: fake.workspace,
      project: randomUUID(),
    });
    expect(await failure(other.list({}))).toMatchObject({ kind: 'not_found', status: 404 });
  });

  test('429 is rate_limited with the wait from Retry-After, else from the rate-limit reset', async () => {
    await expectRetryAfter(fake.service, () => tracker.list({}), 30, {
      detail: 'Request was throttled. Expected available in 30 seconds.',
    });
    const reset = Math.floor(Date.now() / 1000) + 50;
    fake.service.fail({
      status: 429,
      times: 1,
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
    });
    const err = await failure(tracker.get(randomUUID()));
    expect(err.kind).toBe('rate_limited');
    expect(err.retryAfterMs).toBeGreaterThan(20_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(50_000);
  });

  test('5xx is unavailable, on a later page too', async () => {
    await expectOutage(fake.service, () => tracker.list({}), { status: 502, times: 1 });
    // The first page is served, the second fails: the list fails rather than coming back short.
    const before = fake.service.requests.length;
    fake.service.fail({ status: 503, times: 1, skip: 1, path: /\/work-items\/$/, method: 'GET' });
    expect(await failure(tracker.list({}))).toMatchObject({ kind: 'unavailable', status: 503 });
    const pages = fake.service.requests.slice(before).filter((r) => r.path.endsWith('/work-items/'));
    expect(pages.map((r) => r.status)).toEqual([200, 503]);
    expect(pages[1]!.query).toContain('cursor=');
  });
});

describe('webhooks', () => {
  const secret = 'plane_whsec';
  const hooks = createPlaneWebhooks(secret);

  test('a delivery as Plane sends it verifies and names the work item', async () => {
    const item = fake.createItem({ name: 'Hooked' });
    const { headers, body } = fake.webhook(secret, item.id);
    expect(await hooks.verify(headers, body)).toBe(true);
    expect(hooks.parse(headers, body)).toEqual({
      deliveryId: headers.get('x-plane-delivery'),
      taskIds: [item.id],
      reviews: [],
    });
  });

  test('a bad or missing signature is refused', async () => {
    const item = fake.createItem({ name: 'Forged' });
    const { headers, body } = fake.webhook('another secret', item.id);
    expect(await hooks.verify(headers, body)).toBe(false);
    const good = fake.webhook(secret, item.id);
    expect(await hooks.verify(good.headers, good.body.replace('Forged', 'Forgex'))).toBe(false);
    good.headers.delete('x-plane-signature');
    expect(await hooks.verify(good.headers, good.body)).toBe(false);
  });

  test('other events are ignored; malformed bodies throw invalid', () => {
    const body = JSON.stringify({
      event: 'issue_comment',
      action: 'created',
      data: { id: 'c1', issue: 'i1' },
    });
    const sig = createHmac('sha256', secret).update(body).digest('hex');
    expect(hooks.parse(new Headers({ 'x-plane-signature': sig }), body)).toBeNull();
    for (const bad of ['nope', 'null', '{"data":{"id":"x"}}', '{"event":"issue","data":{}}']) {
      expect(() => hooks.parse(new Headers(), bad)).toThrow(TrackerError);
    }
  });
});

test('HTML to text and Markdown to HTML', () => {
  expect(htmlToText('<h1>Title</h1><p>One<br/>two &lt;x&gt;</p><ul><li>a</li><li>b</li></ul>')).toBe(
    'Title\nOne\ntwo <x>\n- a\n- b',
  );
  expect(markdownToHtml('')).toBe('<p></p>');
  expect(markdownToHtml('a\nb\n\n\nc')).toBe('<p>a<br />b</p><p>c</p>');
});
