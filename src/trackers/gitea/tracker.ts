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
 * An issue's blockers are its open dependencies (`…/issues/<n>/dependencies`),
 * read for every open issue listed: Gitea's issue JSON does not count them.
 */
import { z } from 'zod';
import type { ExternalBlocker, ExternalTask, StatusUpdate, TaskQuery, Tracker } from '../types.ts';
import { TrackerError } from '../types.ts';
import { Ignored } from '../http.ts';
import { labelChanges } from '../labels.ts';
import { openClosedQuery, openClosedTask } from '../open-closed.ts';
import {
  createGiteaClient,
  GiteaIssue,
  GiteaLabel,
  issueNumber,
  type GiteaClient,
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

/** A dependency as Gitea lists it: an issue, perhaps of another repository. */
const Dependency = GiteaIssue.extend({
  repository: z.object({ full_name: z.string() }).nullable().optional(),
});

export function createGiteaTracker(opts: GiteaOptions): Tracker {
  const client = createGiteaClient(opts);
  const { http, kind, repoPath } = client;
  const issuePath = (n: number) => `${repoPath}/issues/${n}`;

  /** The repository's label ids by name, creating the missing ones. */
  async function labelIds(names: string[]): Promise<number[]> {
    const existing = await http.getAllPages(`${repoPath}/labels`, GiteaLabel, { pageSize: client.pageSize });
    const ids: number[] = [];
    for (const name of names) {
      const found = existing.find((l) => sameName(l.name, name));
      if (found) {
        ids.push(found.id);
        continue;
      }
      const created = await http.request('POST', `${repoPath}/labels`, GiteaLabel, {
        name,
        color: '#ededed',
      });
      ids.push(created.body.id);
    }
    return ids;
  }

  /** The open issues of this repository that issue `n` depends on; none when dependencies are off. */
  async function blockersOf(issue: GiteaIssue): Promise<ExternalBlocker[]> {
    if (issue.state !== 'open') return [];
    let deps: z.output<typeof Dependency>[];
    try {
      deps = await http.getAllPages(`${issuePath(issue.number)}/dependencies`, Dependency, {
        pageSize: client.pageSize,
      });
    } catch (err) {
      // A repository with dependencies disabled answers 404.
      if (err instanceof TrackerError && err.kind === 'not_found') return [];
      throw err;
    }
    return deps
      .filter((d) => d.state === 'open' && (!d.repository || sameName(d.repository.full_name, client.slug)))
      .map((d) => ({ id: String(d.number), key: `${client.slug}#${d.number}` }));
  }

  const withBlockers = async (issue: GiteaIssue): Promise<ExternalTask> => ({
    ...toTask(client, issue),
    blockedBy: await blockersOf(issue),
  });

  return {
    kind,

    async list(query: TaskQuery): Promise<ExternalTask[]> {
      const params = new URLSearchParams({ type: 'issues', state: openClosedQuery(kind, query.states) });
      // The server's label filter is "any of" and drops unknown names; it only narrows the pages.
      if (query.labels && query.labels.length > 0) params.set('labels', query.labels.join(','));
      if (query.assignee) params.set('assigned_by', query.assignee);
      const issues = await http.getAllPages(`${repoPath}/issues?${params}`, GiteaIssue, {
        pageSize: client.pageSize,
      });
      const wanted = issues
        .filter((i) => !i.pull_request)
        // Oldest first, so tasks are imported (and worked) in the order they were filed.
        .sort((a, b) => a.number - b.number)
        .filter((i) => matches(toTask(client, i), query));
      const tasks: ExternalTask[] = [];
      for (const issue of wanted) tasks.push(await withBlockers(issue));
      return tasks;
    },

    async get(id: string): Promise<ExternalTask | null> {
      const n = issueNumber(kind, id);
      let issue: GiteaIssue;
      try {
        issue = (await http.get(issuePath(n), GiteaIssue)).body;
      } catch (err) {
        if (err instanceof TrackerError && err.kind === 'not_found') return null;
        throw err;
      }
      return issue.pull_request ? null : withBlockers(issue);
    },

    async update(id: string, update: StatusUpdate): Promise<void> {
      const n = issueNumber(kind, id);
      if (update.state !== undefined && update.state !== 'open' && update.state !== 'closed') {
        throw new TrackerError(
          `${kind}: cannot move issue ${client.slug}#${n} to '${update.state}': issues are only open or closed`,
          'invalid',
        );
      }
      // One read of the issue decides what is left to send.
      const { body: issue } = await http.get(issuePath(n), GiteaIssue);
      if (update.state !== undefined && issue.state !== update.state) {
        await http.request('PATCH', issuePath(n), Ignored, { state: update.state });
      }
      const has = issue.labels ?? [];
      const { add, remove } = labelChanges(
        has.map((l) => l.name),
        update,
      );
      if (add.length > 0) {
        await http.request('POST', `${issuePath(n)}/labels`, Ignored, { labels: await labelIds(add) });
      }
      for (const label of has.filter((l) => remove.includes(l.name))) {
        await http.request('DELETE', `${issuePath(n)}/labels/${label.id}`, Ignored);
      }
    },

    async comment(id: string, body: string): Promise<{ id: string }> {
      const n = issueNumber(kind, id);
      const res = await http.request('POST', `${issuePath(n)}/comments`, z.object({ id: z.number() }), {
        body,
      });
      return { id: String(res.body.id) };
    },
  };
}
