/**
 * Every process group this orch process started and has not seen end: agents,
 * command stages, gates, hooks (run-agent-process.ts registers each at spawn
 * and forgets it once the group is gone). The first SIGINT/SIGTERM ends them
 * through their abort signals, with the kill ladder; a second one cannot wait
 * for that and calls {@link killAllNow} on its way out.
 */
import { signalGroup } from './process-group.ts';

/** A live group and what it is. */
export interface LiveGroup {
  pgid: number;
  pid: number;
  /** What runs there, for the log: `gate check_ci_green of T-1`, an agent's executable. */
  label: string;
  /** When it was spawned, ms since the epoch. */
  startedAt: number;
}

const live = new Map<number, LiveGroup>();

export function registerGroup(group: LiveGroup): void {
  live.set(group.pgid, group);
}

export function unregisterGroup(pgid: number): void {
  live.delete(pgid);
}

/** The groups started here that have not ended yet, oldest first. */
export function liveGroups(): LiveGroup[] {
  return [...live.values()].sort((a, b) => a.startedAt - b.startedAt);
}

/**
 * SIGKILL to every live group, synchronously (for a process about to exit): no grace, no wait.
 * Returns the groups signalled; a group already gone, or refused as unsafe, is skipped.
 */
export function killAllNow(): LiveGroup[] {
  const killed: LiveGroup[] = [];
  for (const group of liveGroups()) {
    try {
      if (signalGroup(group.pgid, 'SIGKILL') === 'sent') killed.push(group);
    } catch {
      // A pgid signalGroup refuses (≤ 1, orch's own group) is never signalled.
    }
    live.delete(group.pgid);
  }
  return killed;
}
