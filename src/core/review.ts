/**
 * The review loop's decision on a pull request, from what people said on it
 * (a forge's `PullRequestReviews`): approved, still waiting, or changes to
 * make. Pure: the forge is read elsewhere, and what to do with the decision
 * is the pipeline's.
 *
 * - Changes requested: a "changes requested" review or a line comment that
 *   orch has not answered yet. The feedback for the developer is each
 *   reviewer's text and every line comment as `file:line: body`; `handled`
 *   lists their ids, to answer once the new commits are pushed.
 * - Approved: an approval by someone other than orch's own account with no
 *   "changes requested" submitted after it.
 * - Waiting: anything else (no review yet, or answered changes not reviewed
 *   again).
 */

/** A review of a pull request as a whole, by someone other than orch's own account. */
export interface PullRequestReview {
  /** `review:<forge id>`; GitLab: `approval:<user>` or `changes:<user>`. */
  id: string;
  author: string;
  state: 'approved' | 'changes_requested' | 'commented';
  /** The reviewer's text (empty when they wrote none). */
  body: string;
  /** ISO-8601. */
  submittedAt: string;
  /** orch answered it already (its feedback went to a development attempt). */
  answered: boolean;
}

/** A comment on a line of a pull request's diff, by someone other than orch's own account. */
export interface LineComment {
  /** `comment:<forge id>`; GitLab: `discussion:<id>` (the thread, answered and resolved as one). */
  id: string;
  author: string;
  /** The file, relative to the repository's root. */
  path: string;
  /** The line in the changed file; null when the forge anchors it elsewhere (an outdated diff). */
  line: number | null;
  body: string;
  /** ISO-8601. */
  createdAt: string;
  /** orch answered it already (a reply of its own after it, or a resolved thread). */
  answered: boolean;
}

/** What people said on a pull request: its reviews and its line comments, oldest first. */
export interface PullRequestReviews {
  /** orch's own account on the forge (the pull request's author): its reviews and comments are left out. */
  self: string;
  reviews: PullRequestReview[];
  comments: LineComment[];
}

export type ReviewDecision =
  | { kind: 'approved'; by: string[] }
  | { kind: 'waiting'; detail: string }
  | {
      kind: 'changes_requested';
      /** The reviewers' texts, then every line comment as `file:line: body`. */
      feedback: string;
      /** The review and comment ids the feedback came from: answer each once the fix is pushed. */
      handled: string[];
    };

/** `file:line: body` (`file: body` when the comment has no line), the body's lines kept. */
export function lineCommentText(c: Pick<LineComment, 'path' | 'line' | 'body'>): string {
  return `${c.path}${c.line !== null ? `:${c.line}` : ''}: ${c.body.trim()}`;
}

const byTime =
  <T>(at: (t: T) => string) =>
  (a: T, b: T) =>
    at(a).localeCompare(at(b));

export function reviewDecision(
  input: Pick<PullRequestReviews, 'reviews' | 'comments'>,
  url: string,
): ReviewDecision {
  const reviews = [...input.reviews].sort(byTime((r) => r.submittedAt));
  const comments = [...input.comments].sort(byTime((c) => c.createdAt));

  const requested = reviews.filter((r) => r.state === 'changes_requested' && !r.answered);
  const open = comments.filter((c) => !c.answered);
  if (requested.length > 0 || open.length > 0) {
    const parts = [
      ...requested.map((r) => `${r.author} requested changes${r.body.trim() ? `:\n${r.body.trim()}` : '.'}`),
      ...(open.length > 0
        ? [`Comments on the diff:\n${open.map((c) => `- ${lineCommentText(c)} (${c.author})`).join('\n')}`]
        : []),
    ];
    return {
      kind: 'changes_requested',
      feedback: `Review of ${url}:\n\n${parts.join('\n\n')}`,
      handled: [...requested.map((r) => r.id), ...open.map((c) => c.id)],
    };
  }

  const lastChangeRequest = reviews.filter((r) => r.state === 'changes_requested').at(-1);
  const approvals = reviews.filter(
    (r) => r.state === 'approved' && (!lastChangeRequest || r.submittedAt > lastChangeRequest.submittedAt),
  );
  if (approvals.length > 0) return { kind: 'approved', by: [...new Set(approvals.map((r) => r.author))] };

  if (lastChangeRequest)
    return {
      kind: 'waiting',
      detail: `waiting for review on ${url} (the changes ${lastChangeRequest.author} requested were answered)`,
    };
  return { kind: 'waiting', detail: `waiting for review on ${url}` };
}
