/**
 * GitLab issues as a tracker, over gitbeaker. Issues are opened or closed,
 * so a project maps its stages to labels, as on GitHub; orch names the
 * states `open` and `closed` (GitLab's `opened` is read as `open`). A task's
 * id is the issue's iid; its key is `group/app#12`. A stage change is one
 * read and at most one write: `add_labels`, `remove_labels` and
 * `state_event` go in a single edit, with only what differs (GitLab creates a
 * label the project lacks when it is added).
 */
import { z } from 'zod';
import { labelChanges } from '../labels.ts';
import { openClosedQuery } from '../open-closed.ts';
import {
  TrackerError,
  type ExternalTask,
  type StatusUpdate,
  type TaskQuery,
  type Tracker,
} from '../types.ts';
import {
  createGitLabClient,
  GitLabUser,
  iidOf,
  parse,
  type GitLabClient,
  type GitLabOptions,
} from './client.ts';

const GitLabIssue = z.object({
  iid: z.number(),
  title: z.string(),
  description: z.string().nullable(),
  web_url: z.string(),
  /** `opened` or `closed`. */
  state: z.string(),
  labels: z.array(z.string()),
  assignees: z.array(GitLabUser).default([]),
  updated_at: z.string(),
});
type GitLabIssue = z.infer<typeof GitLabIssue>;

/** orch's state name for GitLab's. */
const stateName = (s: string) => (s === 'opened' ? 'open' : s);

export function toTask(client: GitLabClient, i: GitLabIssue): ExternalTask {
  return {
    id: String(i.iid),
    key: `${client.slug}#${i.iid}`,
    title: i.title,
    description: i.description ?? '',
    url: i.web_url,
    state: stateName(i.state),
    labels: i.labels,
    assignees: i.assignees.map((a) => a.username),
    updatedAt: i.updated_at,
    // Blocking links are a paid feature of GitLab and not read: nothing blocks a GitLab task.
    blockedBy: [],
  };
}

export function createGitLabTracker(opts: GitLabOptions): Tracker {
  const client = createGitLabClient(opts);
  const { api, project } = client;
  const where = (n: number) => `issue ${client.slug}#${n}`;
  const show = async (n: number) =>
    parse(GitLabIssue, await api.Issues.show(n, { projectId: project }), `GET ${where(n)}`);

  return {
    kind: 'gitlab',

    async list(query: TaskQuery): Promise<ExternalTask[]> {
      const state = openClosedQuery('gitlab', query.states);
      const issues = await api.Issues.all({
        projectId: project,
        // GitLab names the open state `opened`.
        ...(state === 'all' ? {} : { state: state === 'open' ? 'opened' : 'closed' }),
        // GitLab keeps issues carrying every listed label (and), as TaskQuery wants.
        ...(query.labels && query.labels.length > 0 ? { labels: query.labels.join(',') } : {}),
        ...(query.assignee ? { assigneeUsername: [query.assignee] } : {}),
        // Oldest first, so tasks are imported (and worked) in the order they were filed.
        orderBy: 'created_at',
        sort: 'asc',
        perPage: 100,
      });
      return parse(z.array(GitLabIssue), issues, `GET issues of ${client.slug}`).map((i) =>
        toTask(client, i),
      );
    },

    async get(id: string): Promise<ExternalTask | null> {
      const n = iidOf(id);
      try {
        return toTask(client, await show(n));
      } catch (err) {
        if (err instanceof TrackerError && err.kind === 'not_found') return null;
        throw err;
      }
    },

    async update(id: string, update: StatusUpdate): Promise<void> {
      const n = iidOf(id);
      const state = update.state === 'opened' ? 'open' : update.state;
      if (state !== undefined && state !== 'open' && state !== 'closed') {
        throw new TrackerError(
          `gitlab: cannot move ${where(n)} to '${state}': issues are only open or closed`,
          'invalid',
        );
      }
      // One read of the issue decides what is left to send.
      const issue = await show(n);
      const { add, remove } = labelChanges(issue.labels, update);
      const edit = {
        ...(state !== undefined && stateName(issue.state) !== state
          ? { stateEvent: state === 'closed' ? ('close' as const) : ('reopen' as const) }
          : {}),
        ...(add.length > 0 ? { addLabels: add.join(',') } : {}),
        ...(remove.length > 0 ? { removeLabels: remove.join(',') } : {}),
      };
      if (Object.keys(edit).length === 0) return;
      await api.Issues.edit(project, n, edit);
    },

    async comment(id: string, body: string): Promise<{ id: string }> {
      const n = iidOf(id);
      const note = parse(
        z.object({ id: z.number() }),
        await api.IssueNotes.create(project, n, body),
        `POST note on ${where(n)}`,
      );
      return { id: String(note.id) };
    },
  };
}
