/**
 * GitHub Issues as a tracker. GitHub issues are only open or closed, so a
 * project maps its stages to labels; `state` moves between the two.
 * The issues API also returns pull requests (they are issues with a
 * `pull_request` field): they are never tasks and are dropped everywhere.
 * An issue's blockers are its open "blocked by" issues (the issue
 * dependencies API) and its open sub-issues (a parent waits for them), read
 * only for issues whose summary says they have any.
 */
import type { ExternalBlocker, ExternalTask, StatusUpdate, TaskQuery, Tracker } from '../types.ts';
import { TrackerError } from '../types.ts';
import { openClosedQuery, openClosedTask, type OpenClosedIssue } from '../open-closed.ts';
import { labelChanges } from '../labels.ts';
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
  repository_url?: string;
  issue_dependencies_summary?: { total_blocked_by: number };
  sub_issues_summary?: { total: number; completed: number };
}

const labelNames = (issue: Pick<Issue, 'labels'>): string[] =>
  // GitHub sends a label as its name or as an object.
  issue.labels.map((l) => (typeof l === 'string' ? l : (l.name ?? ''))).filter((name) => name !== '');

export function toTask(client: GitHubClient, issue: Issue): ExternalTask {
  return openClosedTask(client.slug, issue, labelNames(issue));
}

export function createGitHubTracker(opts: GitHubOptions): Tracker {
  const client = createGitHubClient(opts);
  const { octokit, owner, repo } = client;
  const where = (n: number) => `issue ${client.slug}#${n}`;
  const sameRepo = (i: Issue) =>
    !i.repository_url || i.repository_url.toLowerCase().endsWith(`/repos/${client.slug.toLowerCase()}`);

  /** The open issues of this repository that `issue` waits for: what blocks it, and its sub-issues. */
  async function blockersOf(issue: Issue): Promise<ExternalBlocker[]> {
    const n = issue.number;
    const blocking: Issue[] = [];
    if ((issue.issue_dependencies_summary?.total_blocked_by ?? 0) > 0) {
      blocking.push(
        ...(await call(`GET blocked_by of ${where(n)}`, () =>
          octokit.paginate(octokit.rest.issues.listDependenciesBlockedBy, {
            owner,
            repo,
            issue_number: n,
            per_page: 100,
          }),
        )),
      );
    }
    const sub = issue.sub_issues_summary;
    if (sub && sub.total > sub.completed) {
      blocking.push(
        ...(await call(`GET sub_issues of ${where(n)}`, () =>
          octokit.paginate(octokit.rest.issues.listSubIssues, {
            owner,
            repo,
            issue_number: n,
            per_page: 100,
          }),
        )),
      );
    }
    const open = blocking.filter((b) => b.state === 'open' && sameRepo(b));
    return [
      ...new Map(
        open.map((b) => [b.number, { id: String(b.number), key: `${client.slug}#${b.number}` }]),
      ).values(),
    ];
  }

  const withBlockers = async (issue: Issue): Promise<ExternalTask> => ({
    ...toTask(client, issue),
    blockedBy: await blockersOf(issue),
  });

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
      const tasks: ExternalTask[] = [];
      for (const issue of issues) if (!issue.pull_request) tasks.push(await withBlockers(issue));
      return tasks;
    },

    async get(id: string): Promise<ExternalTask | null> {
      const n = issueNumber(id);
      let issue: Issue;
      try {
        issue = (await octokit.rest.issues.get({ owner, repo, issue_number: n })).data;
      } catch (err) {
        // 410: the issue was deleted.
        const status = statusOf(err);
        if (status === 404 || status === 410) return null;
        throw toTrackerError(err, `GET ${where(n)}`);
      }
      return issue.pull_request ? null : withBlockers(issue);
    },

    async update(id: string, update: StatusUpdate): Promise<void> {
      const n = issueNumber(id);
      const state = update.state;
      if (state !== undefined && state !== 'open' && state !== 'closed') {
        throw new TrackerError(
          `github: cannot move ${where(n)} to '${state}': issues are only open or closed`,
          'invalid',
        );
      }
      // One read of the issue decides what is left to send.
      const { data: issue } = await call(`GET ${where(n)}`, () =>
        octokit.rest.issues.get({ owner, repo, issue_number: n }),
      );
      if (state !== undefined && issue.state !== state) {
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
      const { add, remove } = labelChanges(labelNames(issue), update);
      if (add.length > 0) {
        // GitHub creates a label the repository does not have yet.
        await call(`POST labels of ${where(n)}`, () =>
          octokit.rest.issues.addLabels({ owner, repo, issue_number: n, labels: add }),
        );
      }
      for (const name of remove) {
        try {
          await octokit.rest.issues.removeLabel({ owner, repo, issue_number: n, name });
        } catch (err) {
          // 404: someone removed it since the read, which is what removing it wants.
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
