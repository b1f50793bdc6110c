/**
 * Gitea and Forgejo issues as a tracker. Like GitHub, issues are only open or
 * closed, so a project maps its stages to labels. Two differences from
 * GitHub shape this adapter:
 * - the `labels` filter keeps issues with ANY of the labels (and ignores
 *   names the repository lacks), so the list is filtered again here to keep
 *   issues carrying ALL of them;
 * - the issue label endpoints take label ids, not names: a label is looked up
 *   by name among the repository's labels and **created** when missing (grey,
 *   like GitHub does when a label is added), so stage labels need no setup.
 */
import type { ExternalTask, StatusUpdate, TaskQuery, Tracker } from '../types.ts';
import { TrackerError } from '../types.ts';
import { openClosedQuery, openClosedTask } from '../open-closed.ts';
import {
  createGiteaClient,
  issueNumber,
  type GiteaClient,
  type GiteaIssue,
  type GiteaLabel,
  type GiteaOptions,
} from './client.ts';

const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export function toTask(client: GiteaClient, issue: GiteaIssue): ExternalTask {
  const labels = (issue.labels ?? []).map((l) => l.name);
  return openClosedTask(client.slug, issue, labels);
}

const matches = (task: ExternalTask, query: TaskQuery): boolean =>
  (query.labels ?? []).every((want) => task.labels.some((have) => sameName(have, want))) &&
  (!query.assignee || task.assignees.some((a) => sameName(a, query.assignee!)));

export function createGiteaTracker(opts: GiteaOptions): Tracker {
  const client = createGiteaClient(opts);
  const { http, kind, repoPath } = client;
  const issuePath = (n: number) => `${repoPath}/issues/${n}`;

  /** The repository's label ids by name, creating the missing ones. */
  async function labelIds(names: string[]): Promise<number[]> {
    const existing = await http.getAllPages<GiteaLabel>(`${repoPath}/labels`, { pageSize: client.pageSize });
    const ids: number[] = [];
    for (const name of names) {
      const found = existing.find((l) => sameName(l.name, name));
      if (found) {
        ids.push(found.id);
        continue;
      }
      const created = await http.request<GiteaLabel>('POST', `${repoPath}/labels`, {
        name,
        color: '#ededed',
      });
      ids.push(created.body.id);
    }
    return ids;
  }

  return {
    kind,

    async list(query: TaskQuery): Promise<ExternalTask[]> {
      const params = new URLSearchParams({ type: 'issues', state: openClosedQuery(kind, query.states) });
      // The server's label filter is "any of" and drops unknown names; it only narrows the pages.
      if (query.labels && query.labels.length > 0) params.set('labels', query.labels.join(','));
      if (query.assignee) params.set('assigned_by', query.assignee);
      const issues = await http.getAllPages<GiteaIssue>(`${repoPath}/issues?${params}`, {
        pageSize: client.pageSize,
      });
      return (
        issues
          .filter((i) => !i.pull_request)
          // Oldest first, so tasks are imported (and worked) in the order they were filed.
          .sort((a, b) => a.number - b.number)
          .map((i) => toTask(client, i))
          .filter((t) => matches(t, query))
      );
    },

    async get(id: string): Promise<ExternalTask | null> {
      const n = issueNumber(kind, id);
      try {
        const { body } = await http.get<GiteaIssue>(issuePath(n));
        return body.pull_request ? null : toTask(client, body);
      } catch (err) {
        if (err instanceof TrackerError && err.kind === 'not_found') return null;
        throw err;
      }
    },

    async update(id: string, update: StatusUpdate): Promise<void> {
      const n = issueNumber(kind, id);
      if (update.state !== undefined && update.state !== 'open' && update.state !== 'closed') {
        throw new TrackerError(
          `${kind}: cannot move issue ${client.slug}#${n} to '${update.state}': issues are only open or closed`,
          'invalid',
        );
      }
      if (update.state !== undefined) await http.request('PATCH', issuePath(n), { state: update.state });
      const add = update.addLabels ?? [];
      const remove = update.removeLabels ?? [];
      if (add.length === 0 && remove.length === 0) return;
      // The issue's labels decide what is left to do: adding one it has, or removing one it lacks, is no call.
      const { body: issue } = await http.get<GiteaIssue>(issuePath(n));
      const has = issue.labels ?? [];
      const toAdd = add.filter((name) => !has.some((l) => sameName(l.name, name)));
      if (toAdd.length > 0) {
        await http.request('POST', `${issuePath(n)}/labels`, { labels: await labelIds(toAdd) });
      }
      for (const label of has.filter((l) => remove.some((name) => sameName(l.name, name)))) {
        await http.request('DELETE', `${issuePath(n)}/labels/${label.id}`);
      }
    },

    async comment(id: string, body: string): Promise<{ id: string }> {
      const n = issueNumber(kind, id);
      const res = await http.request<{ id: number }>('POST', `${issuePath(n)}/comments`, { body });
      return { id: String(res.body.id) };
    },
  };
}
