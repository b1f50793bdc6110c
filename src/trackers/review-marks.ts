/**
 * How a forge remembers what orch answered where it has no thread state of
 * its own (GitHub's reviews, Gitea's reviews and comments): each answer orch
 * posts ends with an invisible mark naming the review or comment it answers,
 * and the next read of the pull request finds the marks in orch's own
 * comments. Nothing is kept in orch's store, so a crash between answering and
 * recording loses nothing and answers nothing twice.
 */

/** The mark an answer to `id` carries (an HTML comment: Markdown renders it invisible). */
export const answerMark = (id: string): string => `<!-- orch:answered ${id} -->`;

/** The body of an answer to `id`: the text, then its mark. */
export const markedAnswer = (id: string, body: string): string => `${body.trimEnd()}\n\n${answerMark(id)}`;

/** The ids the marks in these comment bodies name. */
export function answeredIds(bodies: readonly string[]): Set<string> {
  const ids = new Set<string>();
  for (const body of bodies)
    for (const m of body.matchAll(/<!-- orch:answered ([\w:.-]+) -->/g)) ids.add(m[1]!);
  return ids;
}
