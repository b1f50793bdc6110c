/**
 * What the GitHub and Gitea trackers share: their issues are only open or
 * closed (a project maps its stages to labels), both issue lists filter by
 * one state or by all, and Gitea's issue JSON copies GitHub's.
 */
import { TrackerError, type ExternalTask } from './types.ts';

/** The `state` query for the wanted states; any state but open and closed is refused, naming `vendor`. */
export function openClosedQuery(vendor: string, states: string[] | undefined): 'open' | 'closed' | 'all' {
  if (!states || states.length === 0) return 'all';
  const unknown = states.filter((s) => s !== 'open' && s !== 'closed');
  if (unknown.length > 0) {
    throw new TrackerError(
      `${vendor}: issues are only open or closed; cannot filter by state ${unknown.map((s) => `'${s}'`).join(', ')}`,
      'invalid',
    );
  }
  return states.includes('open') && states.includes('closed') ? 'all' : (states[0] as 'open' | 'closed');
}

/** The fields of an issue that GitHub and Gitea both send and a task is made of (labels apart: their shapes differ). */
export interface OpenClosedIssue {
  number: number;
  title: string;
  body?: string | null;
  html_url: string;
  state: string;
  assignee: { login: string } | null;
  assignees?: { login: string }[] | null;
  updated_at: string;
}

/** An issue of the repository `slug` (`owner/name`) as a task keyed `owner/name#number`; `labels` are its label names. */
export function openClosedTask(slug: string, issue: OpenClosedIssue, labels: string[]): ExternalTask {
  const assignees = issue.assignees ?? (issue.assignee ? [issue.assignee] : []);
  return {
    id: String(issue.number),
    key: `${slug}#${issue.number}`,
    title: issue.title,
    description: issue.body ?? '',
    url: issue.html_url,
    state: issue.state,
    labels,
    assignees: assignees.map((a) => a.login),
    updatedAt: issue.updated_at,
  };
}
