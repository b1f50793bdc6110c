/**
 * The Jira tracker, over Jira Cloud's REST API v3. One Jira project is one
 * orch project; a task's `id` and `key` are both the issue key (`PROJ-7`),
 * which every endpoint accepts. Issues are listed with the enhanced JQL
 * search (`POST /search/jql`, pages chained by `nextPageToken`). A state is
 * reached through a workflow transition: the one whose target status has the
 * wanted name. Labels change in place (`update.labels` add/remove), and
 * comments and descriptions are ADF.
 */
import { HttpClient } from '../http.ts';
import {
  TrackerError,
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

interface JiraIssue {
  id: string;
  key: string;
  fields: {
    summary?: string;
    description?: unknown;
    status?: { name?: string } | null;
    labels?: string[];
    assignee?: { accountId?: string; displayName?: string; emailAddress?: string } | null;
    updated?: string;
  };
}

interface Transition {
  id: string;
  name: string;
  to?: { name?: string };
}

const FIELDS = ['summary', 'description', 'status', 'labels', 'assignee', 'updated'];
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
    const f = issue.fields ?? {};
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
    };
  }

  async function transitionTo(key: string, state: string): Promise<void> {
    const { body } = await http.get<{ transitions?: Transition[] }>(`${issuePath(key)}/transitions`);
    const transitions = body?.transitions ?? [];
    const lower = state.toLowerCase();
    const match =
      transitions.find((t) => t.to?.name === state) ??
      transitions.find((t) => t.to?.name?.toLowerCase() === lower);
    if (match) {
      await http.request('POST', `${issuePath(key)}/transitions`, { transition: { id: match.id } });
      return;
    }
    // No transition leads there: fine if the issue is there already.
    const { body: issue } = await http.get<JiraIssue>(`${issuePath(key)}?fields=status`);
    if (issue?.fields?.status?.name?.toLowerCase() === lower) return;
    const available = transitions.map((t) => `"${t.name}" → ${t.to?.name ?? '?'}`).join(', ') || 'none';
    throw new TrackerError(
      `jira: no transition of ${key} leads to status "${state}" (from "${issue?.fields?.status?.name ?? '?'}" the workflow offers: ${available})`,
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
        const { body } = await http.request<{
          issues?: JiraIssue[];
          nextPageToken?: string | null;
          isLast?: boolean;
        }>('POST', '/search/jql', {
          jql,
          fields: FIELDS,
          maxResults: PAGE,
          ...(nextPageToken ? { nextPageToken } : {}),
        });
        if (!body || !Array.isArray(body.issues)) {
          throw new TrackerError('jira: POST /search/jql answered without an issues list', 'invalid');
        }
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
        const { body } = await http.get<JiraIssue>(`${issuePath(id)}?fields=${FIELDS.join(',')}`);
        return toTask(body);
      } catch (err) {
        if (err instanceof TrackerError && err.kind === 'not_found') return null;
        throw err;
      }
    },

    async update(id: string, update: StatusUpdate) {
      if (update.state) await transitionTo(id, update.state);
      const ops = [
        ...(update.addLabels ?? []).map((add) => ({ add })),
        ...(update.removeLabels ?? []).map((remove) => ({ remove })),
      ];
      if (ops.length) await http.request('PUT', issuePath(id), { update: { labels: ops } });
    },

    async comment(id: string, body: string) {
      const { body: created } = await http.request<{ id?: string }>('POST', `${issuePath(id)}/comment`, {
        body: textToAdf(body),
      });
      if (!created?.id)
        throw new TrackerError(`jira: the comment on ${id} came back without an id`, 'invalid');
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
