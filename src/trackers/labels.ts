/**
 * Writing back only what changed: every tracker reads a task's labels (and
 * state) once, and sends only the difference between what it has and what
 * the update asks for.
 */
import type { StatusUpdate } from './types.ts';

/**
 * The labels an update still has to add and remove, given the ones the
 * issue carries (names compared without regard to case): adding one it has,
 * or removing one it lacks, costs no request.
 */
export function labelChanges(
  has: readonly string[],
  update: Pick<StatusUpdate, 'addLabels' | 'removeLabels'>,
): { add: string[]; remove: string[] } {
  const lower = new Set(has.map((l) => l.toLowerCase()));
  const add = [...new Set(update.addLabels ?? [])].filter((l) => !lower.has(l.toLowerCase()));
  const removing = new Set((update.removeLabels ?? []).map((l) => l.toLowerCase()));
  // Removed by the name the issue carries it under (GitHub's DELETE matches case-insensitively anyway).
  const remove = has.filter(
    (l) => removing.has(l.toLowerCase()) && !add.some((a) => a.toLowerCase() === l.toLowerCase()),
  );
  return { add, remove };
}
