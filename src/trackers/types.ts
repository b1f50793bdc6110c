/**
 * What orch needs from a team's tracker (where tasks come from and where
 * their progress is written back) and from a forge (where a task's branch
 * becomes a pull request, is checked by CI and merged). Each service has one
 * adapter folder under src/trackers/ implementing these over its API.
 *
 * Adapters do not retry: they throw a `TrackerError` that says whether the
 * call may be retried and when. Retries are durable and live with the
 * callers (the outbox for writes, the poller for reads), so a tracker outage
 * delays updates but loses none.
 */
import type { PullRequestReviews } from '../core/review.ts';

export type TrackerKind = 'github' | 'gitea' | 'forgejo' | 'gitlab' | 'linear' | 'plane' | 'jira';
export type ForgeKind = 'github' | 'gitea' | 'forgejo' | 'gitlab';

/** Another task of the same tracker that must be finished first. */
export interface ExternalBlocker {
  /** Its `ExternalTask.id`. */
  id: string;
  /** Its `ExternalTask.key`, shown while it is not imported. */
  key: string;
}

/** A task as the service holds it. */
export interface ExternalTask {
  /** The service's stable id: GitHub/Gitea issue number, Linear issue id, Plane work item id, Jira issue key. */
  id: string;
  /** The key people read: `acme/app#12`, `ENG-42`, `PROJ-7`. */
  key: string;
  title: string;
  /** Plain text or Markdown; empty when the service has none. */
  description: string;
  /** The task's page in the service's web UI. */
  url: string;
  /** The service's state name: `open`/`closed` on GitHub and Gitea, the workflow state name elsewhere. */
  state: string;
  labels: string[];
  /** Logins, user names or ids, as the service names assignees. */
  assignees: string[];
  /** ISO-8601. */
  updatedAt: string;
  /**
   * The unfinished tasks of the same tracker this one waits for (blocked-by
   * relations, and a parent's open sub-issues); absent when the tracker has
   * no such relations or was not asked.
   */
  blockedBy?: ExternalBlocker[];
}

/** Which tasks to import. Every given filter must hold (and); an empty filter is no filter. */
export interface TaskQuery {
  /** Service state names (any of). */
  states?: string[];
  /** Labels the task must all carry. */
  labels?: string[];
  assignee?: string;
}

/** What to change on the service when a task moves (from the project's mapping in orch.yaml). */
export interface StatusUpdate {
  /** The service state to move the task to (a workflow state name; `open`/`closed` on GitHub and Gitea). */
  state?: string;
  /** Labels to add and to remove (adding one that is there, or removing one that is not, is no error). */
  addLabels?: string[];
  removeLabels?: string[];
}

export interface Tracker {
  readonly kind: TrackerKind;
  /** Every task matching the query, all pages followed, each with its `blockedBy`. */
  list(query: TaskQuery): Promise<ExternalTask[]>;
  /** One task with its `blockedBy`, or null when the service says it does not exist (404). */
  get(id: string): Promise<ExternalTask | null>;
  /**
   * Sends only what changes: the task's state and labels are read once, and a
   * state it is in, a label it carries (or lacks) costs no request.
   */
  update(id: string, update: StatusUpdate): Promise<void>;
  /** Posts a comment (Markdown); returns the service's comment id. */
  comment(id: string, body: string): Promise<{ id: string }>;
}

export interface PullRequest {
  /** GitHub and Gitea: the pull request's number; GitLab: the merge request's iid. */
  number: number;
  url: string;
  head: string;
  base: string;
  state: 'open' | 'closed' | 'merged';
}

/** The combined CI state of a commit: every check and status reduced to one. */
export type CiState = 'success' | 'pending' | 'failure' | 'none';

export type MergeMethod = 'merge' | 'squash' | 'rebase';

export type { LineComment, PullRequestReview, PullRequestReviews } from '../core/review.ts';

export interface Forge {
  readonly kind: ForgeKind;
  /** Opens a pull request from `head` into `base`, or returns the one already open for `head`. */
  openPullRequest(p: { head: string; base: string; title: string; body: string }): Promise<PullRequest>;
  /** The CI state of a commit (sha) or branch, with a human summary (failing check names). */
  ciStatus(ref: string): Promise<{ state: CiState; summary: string }>;
  /** Merges; `merged: false` with the service's message when it refuses (conflict, checks). */
  mergePullRequest(
    number: number,
    method: MergeMethod,
  ): Promise<{ merged: boolean; sha?: string; message?: string }>;
  /** The pull request's reviews and line comments by people (orch's own left out), oldest first. */
  reviews(number: number): Promise<PullRequestReviews>;
  /**
   * Answers one handled review or line comment (an id from `reviews`): a reply
   * in its thread where the forge has threads (GitHub, GitLab, which also
   * resolves it), else a comment on the pull request quoting it. The answer
   * marks it answered for the next `reviews`.
   */
  answer(number: number, id: string, body: string): Promise<void>;
}

/** A delivery saying a pull request was reviewed or commented on: read its reviews again. */
export interface ReviewSignal {
  /** The pull request's number (GitLab: the merge request's iid). */
  pullRequest: number;
  /** Its head branch (`orch/T-12`), which names the task. */
  head: string;
  /** What happened, in the forge's words (`submitted`, `created`, `approved`, …). */
  action: string;
}

/** A verified webhook delivery, reduced to what orch acts on. */
export interface WebhookDelivery {
  /** The service's delivery id (a header), or a hash of the body when it sends none: duplicates are dropped by it. */
  deliveryId: string;
  /** Ids (`ExternalTask.id`) of the tasks the delivery is about; orch re-reads each with `get`. */
  taskIds: string[];
  /** Pull requests reviewed or commented on (forges only); empty for issue events. */
  reviews: ReviewSignal[];
}

export interface WebhookReceiver {
  /** False when the signature is missing or wrong: the request is refused and nothing changes. */
  verify(headers: Headers, rawBody: string): Promise<boolean>;
  /** Null for deliveries orch ignores (events about other things); throws `TrackerError` on a malformed body. */
  parse(headers: Headers, rawBody: string): WebhookDelivery | null;
}

export type TrackerErrorKind =
  | 'auth' // 401/403 (not rate limiting): the token is missing, wrong or lacks a scope
  | 'not_found' // 404
  | 'rate_limited' // 429, or 403 with the rate-limit headers at zero
  | 'unavailable' // 5xx, timeouts, connection refused
  | 'invalid'; // other 4xx, or a response orch cannot read

/** A failed call to a tracker or forge, with what a caller needs to decide on a retry. */
export class TrackerError extends Error {
  readonly kind: TrackerErrorKind;
  readonly status: number | null;
  /** From `Retry-After` or the rate-limit reset header, when the service sent one. */
  readonly retryAfterMs: number | null;
  constructor(
    message: string,
    kind: TrackerErrorKind,
    opts: { status?: number | null; retryAfterMs?: number | null; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'TrackerError';
    this.kind = kind;
    this.status = opts.status ?? null;
    this.retryAfterMs = opts.retryAfterMs ?? null;
  }

  /** Worth trying again later: the service was down, busy or rate limiting; or the token may be fixed. */
  get retryable(): boolean {
    return this.kind === 'rate_limited' || this.kind === 'unavailable' || this.kind === 'auth';
  }
}
