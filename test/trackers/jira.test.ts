/**
 * The Jira adapter against a fake Jira Cloud REST API (v3) on loopback.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  adfToText,
  buildJql,
  createJiraTracker,
  createJiraWebhooks,
  jqlString,
  textToAdf,
} from '../../src/trackers/jira/index.ts';
import { TrackerError, type Tracker } from '../../src/trackers/types.ts';
import { startJiraFake, type JiraFake } from '../fakes/trackers/jira-server.ts';

const EMAIL = 'bot@example.com';
const TOKEN = 'jira_test_token';

let fake: JiraFake;
let tracker: Tracker;

beforeAll(async () => {
  fake = await startJiraFake({ email: EMAIL, token: TOKEN, pageSize: 2 });
  fake.addUser({ displayName: 'Alice Doe', emailAddress: 'alice@example.com' });
  fake.addUser({ displayName: 'Bob Roe', emailAddress: 'bob@example.com' });
  tracker = createJiraTracker({ baseUrl: fake.url, email: EMAIL, token: TOKEN, project: fake.project });
});
afterAll(() => fake.close());

async function failure(p: Promise<unknown>): Promise<TrackerError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TrackerError);
  return err as TrackerError;
}

const DESCRIPTION = {
  type: 'doc',
  version: 1,
  content: [
    {
      type: 'paragraph',
      content: [
        { type: 'text', text: 'Add ' },
        { type: 'text', text: '--verbose', marks: [{ type: 'code' }] },
        { type: 'text', text: '.' },
      ],
    },
    {
      type: 'bulletList',
      content: [
        { type: 'listItem', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'parse it' }] }] },
        {
          type: 'listItem',
          content: [
            {
              type: 'paragraph',
              content: [
                { type: 'text', text: 'ask ' },
                { type: 'mention', attrs: { id: 'x', text: '@Alice' } },
              ],
            },
          ],
        },
      ],
    },
    { type: 'codeBlock', attrs: { language: 'sh' }, content: [{ type: 'text', text: 'orch run -v' }] },
  ],
};

describe('reads', () => {
  let keys: string[];
  beforeAll(() => {
    keys = [
      fake.createIssue({
        summary: 'Add a flag',
        description: DESCRIPTION,
        status: 'To Do',
        labels: ['orch', 'cli'],
        assignee: 'alice@example.com',
      }),
      fake.createIssue({
        summary: 'Fix crash',
        status: 'To Do',
        labels: ['orch', 'bug'],
        assignee: 'bob@example.com',
      }),
      fake.createIssue({ summary: 'Docs', status: 'Done', labels: ['orch'] }),
      fake.createIssue({
        summary: 'Refactor',
        status: 'In Progress',
        labels: ['cli'],
        assignee: 'alice@example.com',
      }),
      fake.createIssue({ summary: 'Release', status: 'To Do', assignee: EMAIL }),
    ].map((i) => i.key);
  });

  test('list follows nextPageToken over every page', async () => {
    const before = fake.service.served('POST', /\/search\/jql$/).length;
    const tasks = await tracker.list({});
    expect(tasks.map((t) => t.key)).toEqual(keys);
    const calls = fake.service.served('POST', /\/search\/jql$/).slice(before);
    expect(calls.length).toBe(3);
    expect(JSON.parse(calls[1]!.body).nextPageToken).toEqual(expect.any(String));
    expect(tasks[0]).toEqual({
      id: keys[0],
      key: keys[0],
      title: 'Add a flag',
      description: 'Add --verbose.\n\n- parse it\n- ask @Alice\n\n```\norch run -v\n```',
      url: `${fake.url}/browse/${keys[0]}`,
      state: 'To Do',
      labels: ['orch', 'cli'],
      assignees: ['Alice Doe'],
      updatedAt: '2025-01-01T00:00:01.000Z',
    });
  });

  test('list filters by statuses, all labels and assignee, in JQL', async () => {
    const titles = async (q: Parameters<Tracker['list']>[0]) =>
      (await tracker.list(q)).map((t) => t.title).sort();
    expect(await titles({ states: ['To Do'] })).toEqual(['Add a flag', 'Fix crash', 'Release']);
    expect(await titles({ states: ['To Do', 'In Progress'], labels: ['cli'] })).toEqual([
      'Add a flag',
      'Refactor',
    ]);
    expect(await titles({ labels: ['orch', 'bug'] })).toEqual(['Fix crash']);
    expect(await titles({ assignee: 'alice@example.com' })).toEqual(['Add a flag', 'Refactor']);
    expect(await titles({ assignee: 'me' })).toEqual(['Release']);
    expect(fake.searches.at(-1)).toBe(
      `project = "${fake.project}" AND assignee = currentUser() ORDER BY created ASC`,
    );
  });

  test('a value with quotes stays a value', async () => {
    expect(await tracker.list({ labels: ['x" OR project = "OTHER'] })).toEqual([]);
    expect(fake.searches.at(-1)).toContain('labels = "x\\" OR project = \\"OTHER"');
  });

  test('get reads one issue by key, and null when Jira has none', async () => {
    expect(await tracker.get(keys[1]!)).toMatchObject({
      key: keys[1],
      title: 'Fix crash',
      state: 'To Do',
      assignees: ['Bob Roe'],
    });
    expect(await tracker.get(`${fake.project}-999`)).toBeNull();
  });
});

describe('writes', () => {
  test('update reaches a status through the transition that leads there, and edits labels in place', async () => {
    const { key } = fake.createIssue({ summary: 'Write back', status: 'To Do', labels: ['orch', 'stale'] });
    await tracker.update(key, {
      state: 'in progress',
      addLabels: ['orch:dev', 'orch'],
      removeLabels: ['stale', 'absent'],
    });
    expect(fake.issue(key)).toMatchObject({ status: 'In Progress', labels: ['orch', 'orch:dev'] });
    const put = fake.service.served('PUT', new RegExp(`/issue/${key}$`)).at(-1)!;
    expect(JSON.parse(put.body)).toEqual({
      update: { labels: [{ add: 'orch:dev' }, { add: 'orch' }, { remove: 'stale' }, { remove: 'absent' }] },
    });
    // Already there: nothing to do, no error.
    await tracker.update(key, { state: 'In Progress' });
    expect(fake.issue(key).status).toBe('In Progress');
  });

  test('a status no transition leads to is refused, naming the transitions there are, and nothing changes', async () => {
    const { key } = fake.createIssue({ summary: 'Stay', status: 'To Do' });
    const err = await failure(tracker.update(key, { state: 'In Review', addLabels: ['x'] }));
    expect(err.kind).toBe('invalid');
    expect(err.message).toContain('"In Review"');
    expect(err.message).toContain('"Start work" → In Progress');
    expect(fake.issue(key)).toMatchObject({ status: 'To Do', labels: [] });
  });

  test('comment posts ADF and returns the comment id', async () => {
    const { key } = fake.createIssue({ summary: 'Talk' });
    const { id } = await tracker.comment(key, '**developer** · 2m\nnext line\n\n```ts\nconst a = 1;\n```');
    expect(id).toMatch(/^\d+$/);
    expect(fake.issue(key).comments).toEqual([
      {
        type: 'doc',
        version: 1,
        content: [
          {
            type: 'paragraph',
            content: [
              { type: 'text', text: '**developer** · 2m' },
              { type: 'hardBreak' },
              { type: 'text', text: 'next line' },
            ],
          },
          { type: 'codeBlock', attrs: { language: 'ts' }, content: [{ type: 'text', text: 'const a = 1;' }] },
        ],
      },
    ]);
  });

  test("Jira's own refusals come back invalid with its message", async () => {
    const { key } = fake.createIssue({ summary: 'Spaces' });
    const err = await failure(tracker.update(key, { addLabels: ['has space'] }));
    expect(err).toMatchObject({ kind: 'invalid', status: 400 });
    expect(err.message).toContain('contains spaces');
  });

  test('writes to an issue Jira does not have are not_found', async () => {
    expect((await failure(tracker.comment(`${fake.project}-999`, 'x'))).kind).toBe('not_found');
    expect((await failure(tracker.update(`${fake.project}-999`, { state: 'Done' }))).kind).toBe('not_found');
  });
});

describe('failures', () => {
  test('a wrong token is auth, and is never in the message', async () => {
    const bad = createJiraTracker({
      baseUrl: fake.url,
      email: EMAIL,
      token: 'jira_wrong',
      project: fake.project,
    });
    const err = await failure(bad.list({}));
    expect(err).toMatchObject({ kind: 'auth', status: 401 });
    expect(err.message).not.toContain('jira_wrong');
    expect(err.message).not.toContain(Buffer.from(`${EMAIL}:jira_wrong`).toString('base64'));
  });

  test('429 with Retry-After is rate_limited with that wait', async () => {
    fake.service.fail({
      status: 429,
      times: 1,
      headers: { 'retry-after': '12' },
      body: { errorMessages: ['Rate limit exceeded.'] },
    });
    expect(await failure(tracker.list({}))).toMatchObject({
      kind: 'rate_limited',
      status: 429,
      retryAfterMs: 12_000,
    });
  });

  test('5xx is unavailable, on a later page too', async () => {
    fake.service.fail({ status: 500, times: 1 });
    expect(await failure(tracker.get(`${fake.project}-1`))).toMatchObject({
      kind: 'unavailable',
      status: 500,
    });
    // The first page is served, the second fails: the list fails rather than coming back short.
    const before = fake.service.requests.length;
    fake.service.fail({ status: 503, times: 1, skip: 1, path: /\/search\/jql$/ });
    expect(await failure(tracker.list({}))).toMatchObject({ kind: 'unavailable', status: 503 });
    const calls = fake.service.requests.slice(before);
    expect(calls.map((r) => r.status)).toEqual([200, 503]); // and no retries inside the adapter
    expect(JSON.parse(calls[1]!.body).nextPageToken).toEqual(expect.any(String));
  });
});

describe('webhooks', () => {
  const secret = 'jira_whsec';
  const hooks = createJiraWebhooks(secret);

  test('a signed issue_updated or issue_created names the issue key', async () => {
    const { key } = fake.createIssue({ summary: 'Hooked' });
    for (const event of ['jira:issue_updated', 'jira:issue_created']) {
      const { headers, body } = fake.webhook(secret, key, event);
      expect(await hooks.verify(headers, body)).toBe(true);
      expect(hooks.parse(headers, body)).toEqual({
        deliveryId: headers.get('x-atlassian-webhook-identifier'),
        taskIds: [key],
      });
    }
  });

  test('an unsigned, wrongly signed or altered delivery is refused', async () => {
    const { key } = fake.createIssue({ summary: 'Forged' });
    const unsigned = fake.webhook(null, key);
    expect(await hooks.verify(unsigned.headers, unsigned.body)).toBe(false);
    const other = fake.webhook('another secret', key);
    expect(await hooks.verify(other.headers, other.body)).toBe(false);
    const good = fake.webhook(secret, key);
    expect(await hooks.verify(good.headers, good.body.replace('Forged', 'Forgex'))).toBe(false);
    const bare = new Headers({
      'x-hub-signature': createHmac('sha256', secret).update(good.body).digest('hex'),
    });
    expect(await hooks.verify(bare, good.body)).toBe(false); // the sha256= prefix is part of the format
  });

  test('other events are ignored; malformed bodies throw invalid', () => {
    const comment = JSON.stringify({
      webhookEvent: 'comment_created',
      comment: { id: '1' },
      issue: { key: 'PROJ-1' },
    });
    expect(hooks.parse(new Headers(), comment)).toBeNull();
    for (const bad of [
      '<xml/>',
      '7',
      '{"issue":{"key":"PROJ-1"}}',
      '{"webhookEvent":"jira:issue_updated","issue":{}}',
    ]) {
      expect(() => hooks.parse(new Headers(), bad)).toThrow(TrackerError);
    }
  });
});

describe('JQL and ADF', () => {
  test('values are quoted and escaped', () => {
    expect(jqlString('In "Review" \\ now')).toBe('"In \\"Review\\" \\\\ now"');
    expect(jqlString('a\nb')).toBe('"a b"');
    expect(buildJql('PROJ', { states: ['To Do'], labels: ['a', 'b'], assignee: 'x@y.z' })).toBe(
      'project = "PROJ" AND status in ("To Do") AND labels = "a" AND labels = "b" AND assignee = "x@y.z" ORDER BY created ASC',
    );
  });

  test('text to ADF and back', () => {
    expect(textToAdf('')).toEqual({ type: 'doc', version: 1, content: [{ type: 'paragraph', content: [] }] });
    const text = 'one\ntwo\n\nthree\n\n```\ncode\n```';
    expect(adfToText(textToAdf(text))).toBe(text);
    expect(adfToText('plain v2 text')).toBe('plain v2 text');
    expect(adfToText(null)).toBe('');
  });
});
