/**
 * The review loop's two calls on a forge, for the pipeline: read what people
 * said on a task's pull request as one decision (approved, waiting, or
 * changes to make with the developer's feedback), and, once the developer's
 * new commits are pushed, answer each review and comment that feedback came
 * from, so the next read does not send it again.
 */
import { lineCommentText, reviewDecision, type ReviewDecision } from '../core/review.ts';
import type { Forge, PullRequest } from './types.ts';

export type { ReviewDecision } from '../core/review.ts';

/** What people said on `pr`, as the one value the pipeline acts on. Throws `TrackerError` when the forge cannot be read. */
export async function readReview(
  forge: Forge,
  pr: Pick<PullRequest, 'number' | 'url'>,
): Promise<ReviewDecision> {
  return reviewDecision(await forge.reviews(pr.number), pr.url);
}

/**
 * Answers the reviews and line comments a `changes_requested` decision
 * handled (its `handled` ids): a reply in each thread (resolving it where the
 * forge can), else a comment quoting it. `note` says what was done (e.g.
 * `Addressed in 3f2c1ab.`). What is answered already is skipped, so a call
 * cut off halfway is simply made again. Stops at the first failure,
 * throwing its `TrackerError`.
 */
export async function answerReview(
  forge: Forge,
  pr: Pick<PullRequest, 'number'>,
  handled: readonly string[],
  note: string,
): Promise<void> {
  const said = await forge.reviews(pr.number);
  const items = new Map<string, { text: string; answered: boolean }>([
    ...said.reviews.map(
      (r) =>
        [
          r.id,
          { text: `@${r.author}: ${r.body.trim() || 'changes requested'}`, answered: r.answered },
        ] as const,
    ),
    ...said.comments.map(
      (c) => [c.id, { text: `@${c.author} on ${lineCommentText(c)}`, answered: c.answered }] as const,
    ),
  ]);
  for (const id of handled) {
    const item = items.get(id);
    if (item?.answered) continue;
    const quoted = item?.text;
    const quote = quoted
      ? `${quoted
          .split('\n')
          .map((l) => `> ${l}`)
          .join('\n')}\n\n`
      : '';
    await forge.answer(pr.number, id, `${quote}${note}`);
  }
}
