/**
 * A fake Jira Cloud REST API (v3) on loopback: one project's issues with a
 * small workflow, labels, users and comments, in memory. Shapes follow
 * Atlassian's published API: Basic auth (`email:token`), the enhanced search
 * `POST /rest/api/3/search/jql` (`nextPageToken`, absent on the last page,
 * with `isLast`; `maxResults` capped at `pageSize`), issues with ADF
 * descriptions, transitions listed per issue and applied by id, label
 * add/remove through `update.labels`, ADF comment bodies, and
 * `{"errorMessages": [...], "errors": {}}` error bodies.
 *
 * The search understands the JQL the adapter writes and refuses anything
 * else with Jira's 400: `field = "v"`, `field in ("a", "b")` joined by AND,
 * `currentUser()`, and a trailing `ORDER BY`. Quoted strings honour `\"` and
 * `\\` escapes, so a value can never break out of its quotes.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import { startFakeService, type FakeService } from './kit.ts';

interface UserRec {
  accountId: string;
  displayName: string;
  emailAddress: string;
}
interface CommentRec {
  id: string;
  body: unknown;
  created: string;
}
interface IssueRec {
  id: string;
  key: string;
  summary: string;
  description: unknown;
  status: string;
  labels: string[];
  assignee: string | null;
  created: string;
  updated: string;
  comments: CommentRec[];
  /** Keys of the issues that block this one (a "Blocks" link with them on the inward side). */
  blockedBy: string[];
}

/** An issue as a test reads it back. */
export interface JiraIssueView {
  key: string;
  summary: string;
  status: string;
  labels: string[];
  assignee: string | null;
  /** Comment bodies as ADF documents. */
  comments: unknown[];
}

export interface JiraFake {
  url: string;
  service: FakeService;
  project: string;
  /** The token-holder's account, for `currentUser()`. */
  me: UserRec;
  addUser(u: { displayName: string; emailAddress: string }): UserRec;
  createIssue(i: {
    summary: string;
    description?: unknown;
    status?: string;
    labels?: string[];
    assignee?: string;
  }): JiraIssueView;
  issue(key: string): JiraIssueView;
  /** Links `blocker` as blocking `blocked` (a "Blocks" issue link), as a person would. */
  block(blocker: string, blocked: string): void;
  /** Moves an issue to a status directly, as an admin would. */
  setStatus(key: string, status: string): void;
  /** JQL strings the search was asked, in order. */
  searches: string[];
  /** A delivery as Jira sends it, signed with `secret` (unsigned when null). */
  webhook(secret: string | null, key: string, event?: string): { headers: Headers; body: string };
  close(): Promise<void>;
}

/** The workflow: from each status, the transitions it offers (name → target status). */
const WORKFLOW: Record<string, [string, string][]> = {
  'To Do': [
    ['Start work', 'In Progress'],
    ['Close', 'Done'],
  ],
  'In Progress': [
    ['Request review', 'In Review'],
    ['Stop work', 'To Do'],
  ],
  'In Review': [
    ['Back to work', 'In Progress'],
    ['Approve', 'Done'],
  ],
  Done: [['Reopen', 'To Do']],
};
const STATUS_IDS: Record<string, string> = {
  'To Do': '10000',
  'In Progress': '3',
  'In Review': '10001',
  Done: '10002',
};
const CATEGORY: Record<string, [number, string, string]> = {
  'To Do': [2, 'new', 'To Do'],
  'In Progress': [4, 'indeterminate', 'In Progress'],
  'In Review': [4, 'indeterminate', 'In Progress'],
  Done: [3, 'done', 'Done'],
};

export async function startJiraFake(
  opts: { email?: string; token?: string; project?: string; pageSize?: number } = {},
): Promise<JiraFake> {
  const email = opts.email ?? 'bot@example.com';
  const token = opts.token ?? 'jira_fake_token';
  const project = opts.project ?? 'PROJ';
  const pageSize = opts.pageSize ?? 2;
  const users: UserRec[] = [];
  const issues: IssueRec[] = [];
  const searches: string[] = [];
  const pages = new Map<string, { jql: string; offset: number }>();
  let nextId = 10001;
  let nextNumber = 1;
  let clock = Date.parse('2025-01-01T00:00:00Z');
  const now = () => jiraDate(new Date((clock += 1000)));
  const me: UserRec = { accountId: '5b10a2844c20165700ede21g', displayName: 'Orch Bot', emailAddress: email };
  users.push(me);

  let url = '';
  const userOut = (u: UserRec) => ({
    self: `${url}/rest/api/3/user?accountId=${u.accountId}`,
    accountId: u.accountId,
    accountType: 'atlassian',
    emailAddress: u.emailAddress,
    displayName: u.displayName,
    active: true,
    timeZone: 'UTC',
  });
  const statusOut = (name: string) => {
    const [id, key, catName] = CATEGORY[name]!;
    return {
      self: `${url}/rest/api/3/status/${STATUS_IDS[name]}`,
      description: '',
      iconUrl: `${url}/images/icons/statuses/generic.png`,
      name,
      id: STATUS_IDS[name],
      statusCategory: {
        self: `${url}/rest/api/3/statuscategory/${id}`,
        id,
        key,
        colorName: 'blue-gray',
        name: catName,
      },
    };
  };
  const link = (key: string, side: 'inwardIssue' | 'outwardIssue') => {
    const other = issues.find((o) => o.key === key)!;
    return {
      id: `${nextId++}`,
      self: `${url}/rest/api/3/issueLink/${nextId}`,
      type: { id: '10000', name: 'Blocks', inward: 'is blocked by', outward: 'blocks' },
      [side]: {
        id: other.id,
        key: other.key,
        self: `${url}/rest/api/3/issue/${other.id}`,
        fields: { summary: other.summary, status: statusOut(other.status) },
      },
    };
  };
  const issueOut = (i: IssueRec, fields: string[] | null) => {
    const all: Record<string, unknown> = {
      summary: i.summary,
      description: i.description,
      status: statusOut(i.status),
      labels: i.labels,
      assignee: i.assignee ? userOut(users.find((u) => u.accountId === i.assignee)!) : null,
      created: i.created,
      updated: i.updated,
      issuetype: { id: '10001', name: 'Task', subtask: false },
      // Both ends of every "Blocks" link, as Jira shows them on each issue.
      issuelinks: [
        ...i.blockedBy.map((key) => link(key, 'inwardIssue')),
        ...issues.filter((o) => o.blockedBy.includes(i.key)).map((o) => link(o.key, 'outwardIssue')),
      ],
      project: { id: '10000', key: project, name: 'Project' },
    };
    const pick = fields && !fields.includes('*all') ? fields : Object.keys(all);
    return {
      expand: 'renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations',
      id: i.id,
      self: `${url}/rest/api/3/issue/${i.id}`,
      key: i.key,
      fields: Object.fromEntries(pick.filter((f) => f in all).map((f) => [f, all[f]])),
    };
  };
  const errorBody = (...errorMessages: string[]) => ({ errorMessages, errors: {} });
  const findIssue = (c: Context) => {
    const k = c.req.param('key');
    return issues.find((i) => i.key === k || i.id === k);
  };
  const noIssue = (c: Context) =>
    c.json(errorBody('Issue does not exist or you do not have permission to see it.'), 404);

  const expected = `Basic ${Buffer.from(`${email}:${token}`).toString('base64')}`;
  const service = await startFakeService(
    {
      token: expected,
      authorized: (c, t) => c.req.header('authorization') === t,
    },
    (app) => {
      const api = '/rest/api/3';
      app.post(`${api}/search/jql`, async (c) => {
        const body = (await c.req.json()) as {
          jql?: string;
          nextPageToken?: string;
          maxResults?: number;
          fields?: string[];
        };
        const jql = body.jql ?? '';
        let offset = 0;
        if (body.nextPageToken) {
          const page = pages.get(body.nextPageToken);
          if (!page || page.jql !== jql)
            return c.json(errorBody('The provided next page token is invalid or expired.'), 400);
          offset = page.offset;
        }
        searches.push(jql);
        let filter: (i: IssueRec) => boolean;
        try {
          filter = compileJql(jql, project, users, me);
        } catch (err) {
          return c.json(errorBody(`Error in the JQL Query: ${(err as Error).message}`), 400);
        }
        const matching = issues.filter(filter);
        const size = Math.min(body.maxResults ?? 50, pageSize);
        const slice = matching.slice(offset, offset + size);
        const more = offset + size < matching.length;
        let nextPageToken: string | undefined;
        if (more) {
          nextPageToken = randomUUID();
          pages.set(nextPageToken, { jql, offset: offset + size });
        }
        return c.json({
          issues: slice.map((i) => issueOut(i, body.fields ?? null)),
          ...(nextPageToken ? { nextPageToken } : {}),
          isLast: !more,
        });
      });
      app.get(`${api}/issue/:key`, (c) => {
        const issue = findIssue(c);
        const fields = c.req.query('fields');
        return issue ? c.json(issueOut(issue, fields ? fields.split(',') : null)) : noIssue(c);
      });
      app.put(`${api}/issue/:key`, async (c) => {
        const issue = findIssue(c);
        if (!issue) return noIssue(c);
        const body = (await c.req.json()) as {
          update?: { labels?: { add?: string; remove?: string; set?: string[] }[] };
        };
        for (const op of body.update?.labels ?? []) {
          for (const label of [op.add, op.remove, ...(op.set ?? [])]) {
            if (label !== undefined && /\s/.test(label)) {
              return c.json(
                {
                  errorMessages: [],
                  errors: { labels: `The label '${label}' contains spaces which is invalid.` },
                },
                400,
              );
            }
          }
        }
        for (const op of body.update?.labels ?? []) {
          if (op.set) issue.labels = [...op.set];
          if (op.add !== undefined && !issue.labels.includes(op.add)) issue.labels.push(op.add);
          if (op.remove !== undefined) issue.labels = issue.labels.filter((l) => l !== op.remove);
        }
        issue.updated = now();
        return c.body(null, 204);
      });
      app.get(`${api}/issue/:key/transitions`, (c) => {
        const issue = findIssue(c);
        if (!issue) return noIssue(c);
        return c.json({
          expand: 'transitions',
          transitions: transitionsOf(issue.status).map((t) => ({
            id: t.id,
            name: t.name,
            to: statusOut(t.to),
            hasScreen: false,
            isGlobal: false,
            isInitial: false,
            isAvailable: true,
            isConditional: false,
            isLooped: false,
          })),
        });
      });
      app.post(`${api}/issue/:key/transitions`, async (c) => {
        const issue = findIssue(c);
        if (!issue) return noIssue(c);
        const body = (await c.req.json()) as { transition?: { id?: string } };
        const t = transitionsOf(issue.status).find((x) => x.id === body.transition?.id);
        if (!t)
          return c.json(
            errorBody(`Transition id '${body.transition?.id}' is not valid for this issue.`),
            400,
          );
        issue.status = t.to;
        issue.updated = now();
        return c.body(null, 204);
      });
      app.post(`${api}/issue/:key/comment`, async (c) => {
        const issue = findIssue(c);
        if (!issue) return noIssue(c);
        const body = (await c.req.json()) as {
          body?: { type?: string; version?: number; content?: unknown[] };
        };
        const doc = body.body;
        if (
          !doc ||
          doc.type !== 'doc' ||
          doc.version !== 1 ||
          !Array.isArray(doc.content) ||
          !validAdf(doc)
        ) {
          return c.json({ errorMessages: [], errors: { comment: 'Comment body is not valid!' } }, 400);
        }
        const comment = {
          id: String(10000 + issue.comments.length + Math.floor(Math.random() * 1e6)),
          body: doc,
          created: now(),
        };
        issue.comments.push(comment);
        return c.json(
          {
            self: `${url}/rest/api/3/issue/${issue.id}/comment/${comment.id}`,
            id: comment.id,
            author: userOut(me),
            body: doc,
            updateAuthor: userOut(me),
            created: comment.created,
            updated: comment.created,
            jsdPublic: true,
          },
          201,
        );
      });
    },
  );
  url = service.url;

  function transitionsOf(status: string) {
    return (WORKFLOW[status] ?? []).map(([name, to], n) => ({
      id: String(11 + n + 10 * Object.keys(WORKFLOW).indexOf(status)),
      name,
      to,
    }));
  }

  function view(i: IssueRec): JiraIssueView {
    return {
      key: i.key,
      summary: i.summary,
      status: i.status,
      labels: [...i.labels],
      assignee: users.find((u) => u.accountId === i.assignee)?.emailAddress ?? null,
      comments: i.comments.map((c) => c.body),
    };
  }

  return {
    url,
    service,
    project,
    me,
    searches,
    addUser(u) {
      const user = { accountId: randomUUID().replace(/-/g, '').slice(0, 24), ...u };
      users.push(user);
      return user;
    },
    createIssue(i) {
      const status = i.status ?? 'To Do';
      if (!WORKFLOW[status]) throw new Error(`jira fake: no status ${status}`);
      const assignee = i.assignee ? users.find((u) => u.emailAddress === i.assignee) : undefined;
      if (i.assignee && !assignee) throw new Error(`jira fake: no user ${i.assignee}`);
      const at = now();
      const rec: IssueRec = {
        id: String(nextId++),
        key: `${project}-${nextNumber++}`,
        summary: i.summary,
        description: i.description ?? null,
        status,
        labels: [...(i.labels ?? [])],
        assignee: assignee?.accountId ?? null,
        created: at,
        updated: at,
        comments: [],
        blockedBy: [],
      };
      issues.push(rec);
      return view(rec);
    },
    issue(key) {
      const rec = issues.find((i) => i.key === key);
      if (!rec) throw new Error(`jira fake: no issue ${key}`);
      return view(rec);
    },
    block(blocker, blocked) {
      const rec = issues.find((i) => i.key === blocked);
      if (!rec || !issues.some((i) => i.key === blocker))
        throw new Error(`jira fake: no ${blocker} or ${blocked}`);
      rec.blockedBy.push(blocker);
      rec.updated = now();
    },
    setStatus(key, status) {
      const rec = issues.find((i) => i.key === key);
      if (!rec || !WORKFLOW[status]) throw new Error(`jira fake: no issue ${key} or status ${status}`);
      rec.status = status;
      rec.updated = now();
    },
    webhook(secret, key, event = 'jira:issue_updated') {
      const rec = issues.find((i) => i.key === key);
      if (!rec) throw new Error(`jira fake: no issue ${key}`);
      const body = JSON.stringify({
        timestamp: Date.now(),
        webhookEvent: event,
        issue_event_type_name: event === 'jira:issue_created' ? 'issue_created' : 'issue_generic',
        user: userOut(me),
        issue: issueOut(rec, null),
        changelog: {
          id: '10100',
          items: [
            {
              field: 'status',
              fieldtype: 'jira',
              from: '10000',
              fromString: 'To Do',
              to: '3',
              toString: 'In Progress',
            },
          ],
        },
      });
      const headers = new Headers({
        'content-type': 'application/json; charset=utf-8',
        'x-atlassian-webhook-identifier': String(Math.floor(Math.random() * 1e9)),
        'x-atlassian-webhook-retry': '0',
      });
      if (secret)
        headers.set('x-hub-signature', `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
      return { headers, body };
    },
    close: () => service.close(),
  };
}

/** Jira's timestamp format: `2025-01-01T00:00:01.000+0000`. */
function jiraDate(d: Date): string {
  return d.toISOString().replace('Z', '+0000');
}

/** ADF the fake accepts: every text node non-empty, every node typed. */
function validAdf(node: { type?: string; text?: string; content?: unknown[] }): boolean {
  if (typeof node.type !== 'string') return false;
  if (node.type === 'text' && !node.text) return false;
  return (node.content ?? []).every((n) => validAdf(n as typeof node));
}

// --- The JQL the adapter writes ---

type Token = { t: 'str' | 'word' | 'op' | 'lp' | 'rp' | 'comma'; v: string };

function tokenize(jql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < jql.length) {
    const ch = jql[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '"') {
      let v = '';
      i++;
      while (i < jql.length && jql[i] !== '"') {
        if (jql[i] === '\\') {
          i++;
          if (i >= jql.length) throw new Error('unterminated escape');
        }
        v += jql[i++];
      }
      if (jql[i] !== '"') throw new Error('unterminated string');
      i++;
      out.push({ t: 'str', v });
    } else if (ch === '(') {
      out.push({ t: 'lp', v: ch });
      i++;
    } else if (ch === ')') {
      out.push({ t: 'rp', v: ch });
      i++;
    } else if (ch === ',') {
      out.push({ t: 'comma', v: ch });
      i++;
    } else if (ch === '=' || ch === '!') {
      const op = jql.startsWith('!=', i) ? '!=' : '=';
      out.push({ t: 'op', v: op });
      i += op.length;
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*(\(\))?/.exec(jql.slice(i));
      if (!m) throw new Error(`unexpected '${ch}' at ${i}`);
      out.push({ t: 'word', v: m[0] });
      i += m[0].length;
    }
  }
  return out;
}

/** A predicate for `project = … AND field = …|in (…) … [ORDER BY …]`; throws on anything else. */
function compileJql(jql: string, project: string, users: UserRec[], me: UserRec): (i: IssueRec) => boolean {
  const tokens = tokenize(jql);
  const preds: ((i: IssueRec) => boolean)[] = [];
  let p = 0;
  const next = () => tokens[p++];
  const value = (): string | { fn: string } => {
    const tok = next();
    if (tok?.t === 'str') return tok.v;
    if (tok?.t === 'word' && tok.v === 'currentUser()') return { fn: 'currentUser' };
    throw new Error(`expected a quoted value, got ${tok ? tok.v : 'the end'}`);
  };
  let boundedByProject = false;
  while (p < tokens.length) {
    const field = next()!;
    if (field.t === 'word' && field.v.toUpperCase() === 'ORDER') break;
    if (field.t !== 'word') throw new Error(`expected a field, got ${field.v}`);
    const op = next();
    const name = field.v.toLowerCase();
    let values: (string | { fn: string })[];
    if (op?.t === 'op' && op.v === '=') values = [value()];
    else if (op?.t === 'word' && op.v.toLowerCase() === 'in') {
      if (next()?.t !== 'lp') throw new Error('expected ( after in');
      values = [value()];
      while (tokens[p]?.t === 'comma') {
        p++;
        values.push(value());
      }
      if (next()?.t !== 'rp') throw new Error('expected )');
    } else throw new Error(`unsupported operator ${op?.v ?? 'at the end'}`);
    preds.push(predicate(name, values, project, users, me));
    if (name === 'project') boundedByProject = true;
    const joiner = tokens[p];
    if (!joiner) break;
    if (joiner.t === 'word' && joiner.v.toUpperCase() === 'AND') p++;
    else if (!(joiner.t === 'word' && joiner.v.toUpperCase() === 'ORDER'))
      throw new Error(`unexpected ${joiner.v}`);
  }
  if (!boundedByProject)
    throw new Error('Unbounded JQL queries are not allowed here. Please add a search restriction.');
  return (i) => preds.every((f) => f(i));
}

function predicate(
  field: string,
  values: (string | { fn: string })[],
  project: string,
  users: UserRec[],
  me: UserRec,
): (i: IssueRec) => boolean {
  const strings = () =>
    values.map((v) => {
      if (typeof v !== 'string') throw new Error(`${v.fn}() is not valid for ${field}`);
      return v;
    });
  switch (field) {
    case 'project': {
      const keys = strings();
      if (!keys.includes(project))
        throw new Error(`The value '${keys[0]}' does not exist for the field 'project'.`);
      return (i) => keys.some((k) => i.key.startsWith(`${k}-`));
    }
    case 'status': {
      const names = strings().map((s) => s.toLowerCase());
      return (i) => names.includes(i.status.toLowerCase());
    }
    case 'labels': {
      const labels = strings();
      return (i) => labels.some((l) => i.labels.includes(l));
    }
    case 'assignee': {
      const ids = values.map((v) => {
        if (typeof v !== 'string') return me.accountId;
        const lower = v.toLowerCase();
        const u = users.find(
          (x) =>
            x.accountId === v ||
            x.emailAddress.toLowerCase() === lower ||
            x.displayName.toLowerCase() === lower,
        );
        return u?.accountId ?? `unknown:${v}`;
      });
      return (i) => i.assignee !== null && ids.includes(i.assignee);
    }
    default:
      throw new Error(`Field '${field}' is not supported by this fake`);
  }
}
