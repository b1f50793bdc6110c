/**
 * The Jira tracker, over Jira Cloud's REST API v3. One Jira project is one
 * orch project; a task's `id` and `key` are both the issue key (`PROJ-7`),
 * which every endpoint accepts. Issues are listed with the enhanced JQL
 * search (`POST /search/jql`, pages chained by `nextPageToken`). A state is
 * reached through a workflow transition: the one whose target status has the
 * wanted name. Labels change in place (`update.labels` add/remove), and
 * comments and descriptions are ADF. An issue's blockers are the issues
 * linked to it as "is blocked by" whose status is not in the done category,
 * read from its `issuelinks` field (no extra request).
 */
import { z } from 'zod';
import { HttpClient, Ignored } from '../http.ts';
import { labelChanges } from '../labels.ts';
import {
  TrackerError,
  type ExternalBlocker,
  type ExternalTask,
  type StatusUpdate,
  type TaskQuery,
  type Tracker,
} from '../types.ts';
import { adfToText, textToAdf } from './adf.ts';
import { buildJql } from './jql.ts';

export interface JiraTrackerOptions {
  /** The site, e.g. `https://acme.atlassian.net` (a trailing `/rest/api/3` is dropped). */
  baseUrl: string;
  /** The Atlassian account the API token belongs to. */
  email: string;
  /** An Atlassian API token, from ORCH_JIRA_TOKEN. */
  token: string;
  /** The project key, e.g. `PROJ`. */
  project: string;
  timeoutMs?: number;
}

const LinkedIssue = z.object({
  key: z.string(),
  fields: z
    .object({ status: z.object({ statusCategory: z.object({ key: z.string() }).optional() }).optional() })
    .optional(),
});

const JiraIssue = z.object({
  id: z.string(),
  key: z.string(),
  fields: z
    .object({
      summary: z.string().optional(),
      description: z.unknown().optional(),
      status: z.object({ name: z.string().optional() }).nullable().optional(),
      labels: z.array(z.string()).optional(),
      assignee: z
        .object({
          accountId: z.string().optional(),
          displayName: z.string().optional(),
          emailAddress: z.string().optional(),
        })
        .nullable()
        .optional(),
      updated: z.string().optional(),
      issuelinks: z
        .array(
          z.object({
            type: z.object({ name: z.string().optional(), inward: z.string().optional() }),
            inwardIssue: LinkedIssue.optional(),
            outwardIssue: LinkedIssue.optional(),
          }),
        )
        .optional(),
    })
    .default({}),
});
type JiraIssue = z.infer<typeof JiraIssue>;

const Transitions = z.object({
  transitions: z
    .array(
      z.object({
        id: z.string(),
        name: z.string(),
        to: z.object({ name: z.string().optional() }).optional(),
      }),
    )
    .default([]),
});

const SearchPage = z.object({
  issues: z.array(JiraIssue),
  nextPageToken: z.string().nullable().optional(),
  isLast: z.boolean().optional(),
});

/**
 * The issues blocking this one: links of a "blocks" type (its inward
 * description is "is blocked by") whose other end is on the inward side,
 * unless that issue is done.
 */
export function blockersOf(issue: JiraIssue): ExternalBlocker[] {
  return (issue.fields.issuelinks ?? [])
    .filter((l) => (l.type.inward ?? '').toLowerCase() === 'is blocked by' || l.type.name === 'Blocks')
    .flatMap((l) => (l.inwardIssue ? [l.inwardIssue] : []))
    .filter((b) => b.fields?.status?.statusCategory?.key !== 'done')
    .map((b) => ({ id: b.key, key: b.key }));
}

const FIELDS = ['summary', 'description', 'status', 'labels', 'assignee', 'updated', 'issuelinks'];
/** The enhanced search's largest page when fields are named. */
const PAGE = 100;

export function createJiraTracker(opts: JiraTrackerOptions): Tracker {
  if (!opts.token) throw new TrackerError('jira: no API token (set ORCH_JIRA_TOKEN)', 'auth');
  if (!opts.email) throw new TrackerError('jira: no account email (tracker.email in orch.yaml)', 'auth');
  for (const key of ['baseUrl', 'project'] as const) {
    if (!opts[key]) throw new TrackerError(`jira: no ${key} configured`, 'invalid');
  }
  // The site; an API root given by mistake is cut back to it.
  const site = opts.baseUrl.replace(/\/+$/, '').replace(/\/rest\/api\/\d+$/, '');
  const http = new HttpClient({
    baseUrl: `${site}/rest/api/3`,
    headers: { authorization: `Basic ${Buffer.from(`${opts.email}:${opts.token}`).toString('base64')}` },
    service: 'jira',
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  });
  const issuePath = (key: string) => `/issue/${encodeURIComponent(key)}`;

  function toTask(issue: JiraIssue): ExternalTask {
    const f = issue.fields;
    const a = f.assignee;
    return {
      id: issue.key,
      key: issue.key,
      title: f.summary ?? '',
      description: adfToText(f.description),
      url: `${site}/browse/${issue.key}`,
      state: f.status?.name ?? '',
      labels: f.labels ?? [],
      assignees: a ? [a.displayName || a.emailAddress || a.accountId || ''] : [],
      updatedAt: isoDate(f.updated),
      blockedBy: blockersOf(issue),
    };
  }

  /** Moves the issue (now in `current`) to the status named `state` through the workflow. */
  async function transitionTo(key: string, current: string | undefined, state: string): Promise<void> {
    const lower = state.toLowerCase();
    if (current?.toLowerCase() === lower) return;
    const { body } = await http.get(`${issuePath(key)}/transitions`, Transitions);
    const transitions = body.transitions;
    const match =
      transitions.find((t) => t.to?.name === state) ??
      transitions.find((t) => t.to?.name?.toLowerCase() === lower);
    if (match) {
      await http.request('POST', `${issuePath(key)}/transitions`, Ignored, { transition: { id: match.id } });
      return;
    }
    const available = transitions.map((t) => `"${t.name}" → ${t.to?.name ?? '?'}`).join(', ') || 'none';
    throw new TrackerError(
      `jira: no transition of ${key} leads to status "${state}" (from "${current ?? '?'}" the workflow offers: ${available})`,
      'invalid',
    );
  }

  return {
    kind: 'jira',

    async list(query: TaskQuery) {
      const jql = buildJql(opts.project, query);
      const out: ExternalTask[] = [];
      const seen = new Set<string>();
      let nextPageToken: string | undefined;
      for (;;) {
        const { body } = await http.request('POST', '/search/jql', SearchPage, {
          jql,
          fields: FIELDS,
          maxResults: PAGE,
          ...(nextPageToken ? { nextPageToken } : {}),
        });
        out.push(...body.issues.map(toTask));
        const next = body.nextPageToken;
        if (!next || body.isLast === true) return out;
        if (seen.has(next))
          throw new TrackerError(`jira: POST /search/jql repeated page token ${next}`, 'invalid');
        seen.add(next);
        nextPageToken = next;
      }
    },

    async get(id: string) {
      try {
        const { body } = await http.get(`${issuePath(id)}?fields=${FIELDS.join(',')}`, JiraIssue);
        return toTask(body);
      } catch (err) {
        if (err instanceof TrackerError && err.kind === 'not_found') return null;
        throw err;
      }
    },

    async update(id: string, update: StatusUpdate) {
      // One read of the issue decides what is left to send.
      const { body: issue } = await http.get(`${issuePath(id)}?fields=status,labels`, JiraIssue);
      if (update.state) await transitionTo(id, issue.fields.status?.name, update.state);
      const { add, remove } = labelChanges(issue.fields.labels ?? [], update);
      const ops = [...add.map((name) => ({ add: name })), ...remove.map((name) => ({ remove: name }))];
      if (ops.length) await http.request('PUT', issuePath(id), Ignored, { update: { labels: ops } });
    },

    async comment(id: string, body: string) {
      const { body: created } = await http.request(
        'POST',
        `${issuePath(id)}/comment`,
        z.object({ id: z.union([z.string().min(1), z.number()]) }),
        { body: textToAdf(body) },
      );
      return { id: String(created.id) };
    },
  };
}

/** Jira's `2025-01-15T10:30:00.000+0000` as ISO-8601 UTC (unchanged when it cannot be read). */
function isoDate(value: string | undefined): string {
  if (!value) return '';
  const t = Date.parse(value.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
  return Number.isNaN(t) ? value : new Date(t).toISOString();
}
