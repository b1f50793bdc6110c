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

/** Jira's names of the seed issues' statuses. */
const STATES = { todo: 'To Do', doing: 'In Progress', other: 'Done' };

describe('reads', () => {
  let keys: string[];
  beforeAll(() => {
    keys = SEED_ISSUES.map(
      (s, i) =>
        fake.createIssue({
          summary: s.title,
          description: i === 0 ? DESCRIPTION : undefined,
          status: STATES[s.state],
          labels: s.labels,
          // The last is the bot's own, for `assignee: 'me'`.
          assignee: s.title === 'Release' ? EMAIL : s.assignee,
        }).key,
    );
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
      blockedBy: [],
    });
  });

  test('list filters by statuses, all labels and assignee, in JQL', async () => {
    await expectSeedFilters(tracker, STATES);
    const titles = titlesOf(tracker);
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

describe('blockers', () => {
  test('an issue\'s blockers are the issues linked as "is blocked by" that are not done', async () => {
    const blocked = fake.createIssue({ summary: 'Blocked', status: 'To Do' });
    const blocker = fake.createIssue({ summary: 'Blocker', status: 'In Progress' });
    const finished = fake.createIssue({ summary: 'Finished', status: 'Done' });
    fake.block(blocker.key, blocked.key);
    fake.block(finished.key, blocked.key);
    expect((await tracker.get(blocked.key))?.blockedBy).toEqual([{ id: blocker.key, key: blocker.key }]);
    // The blocker's own links say what it blocks, not what blocks it.
    expect((await tracker.get(blocker.key))?.blockedBy).toEqual([]);
    fake.setStatus(blocker.key, 'Done');
    expect((await tracker.get(blocked.key))?.blockedBy).toEqual([]);
  });
});

describe('writes', () => {
  test('update reaches a status through the transition that leads there, and sends only the labels that change', async () => {
    const { key } = fake.createIssue({ summary: 'Write back', status: 'To Do', labels: ['orch', 'stale'] });
    await tracker.update(key, {
      state: 'in progress',
      addLabels: ['orch:dev', 'orch'],
      removeLabels: ['stale', 'absent'],
    });
    expect(fake.issue(key)).toMatchObject({ status: 'In Progress', labels: ['orch', 'orch:dev'] });
    const put = fake.service.served('PUT', new RegExp(`/issue/${key}$`)).at(-1)!;
    // `orch` is there already and `absent` never was: neither is sent.
    expect(JSON.parse(put.body)).toEqual({ update: { labels: [{ add: 'orch:dev' }, { remove: 'stale' }] } });
    // Already there: one read, nothing sent.
    const before = fake.service.requests.length;
    await tracker.update(key, { state: 'In Progress', addLabels: ['orch:dev'], removeLabels: ['stale'] });
    expect(fake.issue(key).status).toBe('In Progress');
    expect(fake.service.requests.slice(before).map((r) => r.method)).toEqual(['GET']);
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
    await expectWritesNotFound(tracker, `${fake.project}-999`, { state: 'Done' });
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
    await expectAuthFailure(bad.list({}), [
      'jira_wrong',
      Buffer.from(`${EMAIL}:jira_wrong`).toString('base64'),
    ]);
  });

  test('429 with Retry-After is rate_limited with that wait', async () => {
    await expectRetryAfter(fake.service, () => tracker.list({}), 12, {
      errorMessages: ['Rate limit exceeded.'],
    });
  });

  test('5xx is unavailable, on a later page too', async () => {
    await expectOutage(fake.service, () => tracker.get(`${fake.project}-1`), { status: 500, times: 1 });
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
        reviews: [],
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
