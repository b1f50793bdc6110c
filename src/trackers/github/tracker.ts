/**
 * GitHub Issues as a tracker. GitHub issues are only open or closed, so a
 * project maps its stages to labels; `state` moves between the two.
 * The issues API also returns pull requests (they are issues with a
 * `pull_request` field): they are never tasks and are dropped everywhere.
 */
import type { ExternalTask, StatusUpdate, TaskQuery, Tracker } from '../types.ts';
import { TrackerError } from '../types.ts';
import { openClosedQuery, openClosedTask, type OpenClosedIssue } from '../open-closed.ts';
import {
  call,
  createGitHubClient,
  issueNumber,
  statusOf,
  toTrackerError,
  type GitHubClient,
  type GitHubOptions,
} from './client.ts';

/** The fields of GitHub's `issue` schema that a task is made of. */
interface Issue extends OpenClosedIssue {
  labels: (string | { name?: string })[];
  pull_request?: unknown;
}

export function toTask(client: GitHubClient, issue: Issue): ExternalTask {
  // GitHub sends a label as its name or as an object.
  const labels = issue.labels
    .map((l) => (typeof l === 'string' ? l : (l.name ?? '')))
    .filter((name) => name !== '');
  return openClosedTask(client.slug, issue, labels);
}

export function createGitHubTracker(opts: GitHubOptions): Tracker {
  const client = createGitHubClient(opts);
  const { octokit, owner, repo } = client;
  const where = (n: number) => `issue ${client.slug}#${n}`;

  return {
    kind: 'github',

    async list(query: TaskQuery): Promise<ExternalTask[]> {
      const state = openClosedQuery('github', query.states);
      const issues = await call(`GET issues of ${client.slug}`, () =>
        octokit.paginate(octokit.rest.issues.listForRepo, {
          owner,
          repo,
          state,
          per_page: 100,
          // Oldest first, so tasks are imported (and worked) in the order they were filed.
          sort: 'created',
          direction: 'asc',
          // GitHub keeps issues carrying every listed label (and), as TaskQuery wants.
          ...(query.labels && query.labels.length > 0 ? { labels: query.labels.join(',') } : {}),
          ...(query.assignee ? { assignee: query.assignee } : {}),
        }),
      );
      return issues.filter((i) => !i.pull_request).map((i) => toTask(client, i));
    },

    async get(id: string): Promise<ExternalTask | null> {
      const n = issueNumber(id);
      try {
        const { data } = await octokit.rest.issues.get({ owner, repo, issue_number: n });
        return data.pull_request ? null : toTask(client, data);
      } catch (err) {
        // 410: the issue was deleted.
        const status = statusOf(err);
        if (status === 404 || status === 410) return null;
        throw toTrackerError(err, `GET ${where(n)}`);
      }
    },

    async update(id: string, update: StatusUpdate): Promise<void> {
      const n = issueNumber(id);
      if (update.state !== undefined) {
        const state = update.state;
        if (state !== 'open' && state !== 'closed') {
          throw new TrackerError(
            `github: cannot move ${where(n)} to '${state}': issues are only open or closed`,
            'invalid',
          );
        }
        await call(`PATCH ${where(n)}`, () =>
          octokit.rest.issues.update({
            owner,
            repo,
            issue_number: n,
            state,
            ...(state === 'closed' ? { state_reason: 'completed' as const } : {}),
          }),
        );
      }
      const add = update.addLabels ?? [];
      if (add.length > 0) {
        // GitHub creates a label the repository does not have yet.
        await call(`POST labels of ${where(n)}`, () =>
          octokit.rest.issues.addLabels({ owner, repo, issue_number: n, labels: add }),
        );
      }
      for (const name of update.removeLabels ?? []) {
        try {
          await octokit.rest.issues.removeLabel({ owner, repo, issue_number: n, name });
        } catch (err) {
          // 404: the issue does not carry the label, which is what removing it wants. (A missing
          // issue is a 404 here too; an update that also sets a state or adds labels reports it.)
          if (statusOf(err) !== 404) throw toTrackerError(err, `DELETE label '${name}' of ${where(n)}`);
        }
      }
    },

    async comment(id: string, body: string): Promise<{ id: string }> {
      const n = issueNumber(id);
      const { data } = await call(`POST comment on ${where(n)}`, () =>
        octokit.rest.issues.createComment({ owner, repo, issue_number: n, body }),
      );
      return { id: String(data.id) };
    },
  };
}
