/**
 * Task dependencies, decided: whether adding edges would close a cycle (and
 * which), and whether a task may start given the tasks it depends on. Pure:
 * the edges and the blockers' stages come from the store.
 *
 * An edge `[task, blocker]` reads "task depends on blocker": the task is not
 * dispatched before the blocker is done.
 */

/** `[dependent, blocker]`, by task key (or any id, the same kind throughout). */
export type DependencyEdge = readonly [dependent: string, blocker: string];

/**
 * The cycle the `added` edges would close among `existing` ones, as the
 * path from a dependent back to itself (`['T-1', 'T-2', 'T-1']`: T-1 depends
 * on T-2, which depends on T-1); null when there is none. A task depending
 * on itself is the shortest cycle.
 */
export function findCycle(
  existing: readonly DependencyEdge[],
  added: readonly DependencyEdge[],
): string[] | null {
  const next = new Map<string, string[]>();
  for (const [from, to] of [...existing, ...added]) next.set(from, [...(next.get(from) ?? []), to]);
  for (const [from, to] of added) {
    // A cycle through the new edge is a path from its blocker back to its dependent.
    const path = pathBetween(next, to, from);
    if (path) return [from, ...path];
  }
  return null;
}

/** The shortest path `from` … `to` following `next`, or null. */
function pathBetween(next: ReadonlyMap<string, string[]>, from: string, to: string): string[] | null {
  const previous = new Map<string, string | null>([[from, null]]);
  const queue = [from];
  while (queue.length > 0) {
    const at = queue.shift()!;
    if (at === to) {
      const path = [at];
      for (let p = previous.get(at); p != null; p = previous.get(p)) path.unshift(p);
      return path;
    }
    for (const n of next.get(at) ?? []) {
      if (!previous.has(n)) {
        previous.set(n, at);
        queue.push(n);
      }
    }
  }
  return null;
}

/** The refusal of a cycle: `T-1 → T-2 → T-1 would be a cycle (each waits for the next)`. */
export function cycleMessage(cycle: readonly string[]): string {
  return `${cycle.join(' → ')} would be a dependency cycle (each task waits for the next)`;
}

/** A task another one depends on, as the store shows it (`store.dependencies.unfinishedBlockers`). */
export interface BlockerState {
  /** orch's key (`T-3`), or the tracker's key while it is not imported (`acme/app#3`). */
  key: string;
  /** Null while the blocker is not imported from the tracker yet. */
  stage: string | null;
  status: string | null;
  terminal_reason: string | null;
}

export type Readiness =
  | { ready: true }
  | {
      ready: false;
      /** Names every unfinished blocker and where it stands, e.g. `waiting for T-2 (development, running)`. */
      detail: string;
      /**
       * A blocker escalated or was cancelled: nothing moves until a person
       * retries, cancels or unlinks it (orch polls nothing that would change it).
       */
      waitsOnPerson: boolean;
    };

/** Whether a task whose blockers stand so may start: only once every one is done. */
export function dependencyReadiness(blockers: readonly BlockerState[]): Readiness {
  const open = blockers.filter((b) => b.stage !== 'done');
  if (open.length === 0) return { ready: true };
  const stuck = open.filter((b) => b.stage === 'cancelled' || b.status === 'escalated');
  const describe = (b: BlockerState): string => {
    if (b.stage === null) return `${b.key} (not imported yet)`;
    if (b.stage === 'cancelled') return `${b.key} (cancelled)`;
    if (b.status === 'escalated')
      return `${b.key} (escalated${b.terminal_reason ? `: ${b.terminal_reason}` : ''})`;
    return `${b.key} (${b.stage}, ${b.status ?? 'queued'})`;
  };
  const names = [...stuck, ...open.filter((b) => !stuck.includes(b))].map(describe).join(', ');
  return stuck.length > 0
    ? { ready: false, detail: `blocked by ${names}`, waitsOnPerson: true }
    : { ready: false, detail: `waiting for ${names}`, waitsOnPerson: false };
}
