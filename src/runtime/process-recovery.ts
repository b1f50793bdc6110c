/**
 * After a crash, nothing runs twice: the process groups a dead orch left
 * running (gates' commands, command stages, hooks; agent runs are recovered
 * with their runs) are ended before any job is worked again, and recorded as
 * interrupted. Only an owner on this host can be known dead, and only here is
 * its process group ours to signal; another host's are left to that host's
 * own restart.
 */
import type { OrchContext } from './context.ts';
import type { Logger } from './logger.ts';
import type { ProcessRow } from '../store/schema.ts';
import { killProcessGroup, processGroupAlive, processIdentity } from './process/process-group.ts';
import { diedOnThisHost } from './worker-id.ts';

export interface RecoveryOptions {
  log: Logger;
  /** Seconds between SIGTERM and SIGKILL for each group still alive. Default 5. */
  killGraceS?: number;
}

export interface RecoveredProcess {
  id: number;
  kind: string;
  name: string;
  pgid: number;
  /** Whether its group was still alive and had to be ended. */
  killed: boolean;
}

/**
 * Whether the group recorded in `row` may be signalled: its leader is still the process that
 * was recorded, or is gone while members of its group live on (a pid is not handed out again
 * while a process group of that id exists). A leader whose pid now belongs to another process
 * means the group ended long ago and its id was reused: never signalled.
 */
function sameGroup(row: ProcessRow): boolean {
  if (row.identity === null) return true;
  const now = processIdentity(row.pid);
  return now === null || now === row.identity;
}

/** Alive and ours to signal; a pgid process-group.ts refuses (≤ 1, orch's own group) is neither. */
function stillRunning(row: ProcessRow): boolean {
  try {
    return sameGroup(row) && processGroupAlive(row.pgid);
  } catch {
    return false;
  }
}

/**
 * Ends every process group recorded as running by an orch process that is dead on this host,
 * and marks each `interrupted`. Safe to call at any time and from many processes at once: a row
 * is finalized once, and a live owner's rows are left alone. Returns what it finalized.
 */
export async function recoverOrphanedProcesses(
  ctx: OrchContext,
  opts: RecoveryOptions,
): Promise<RecoveredProcess[]> {
  const recovered: RecoveredProcess[] = [];
  for (const row of await ctx.store.processes.running()) {
    if (!diedOnThisHost(row.worker_id)) continue;
    let killed = false;
    if (stillRunning(row)) {
      await killProcessGroup(row.pgid, opts.killGraceS ?? 5);
      killed = true;
    }
    const finalized = await ctx.store.processes.finish(row.id, {
      outcome: 'interrupted',
      exitCode: killed ? -9 : null,
      detail: `the orchestrator that started it (${row.worker_id}) died${killed ? '; its process group was ended' : ''}`,
    });
    if (!finalized) continue;
    recovered.push({ id: row.id, kind: row.kind, name: row.name, pgid: row.pgid, killed });
    opts.log.warn(
      `${row.kind} ${row.name} (process group ${row.pgid}) finalized as interrupted: the orchestrator that started it died${killed ? ' (process group killed)' : ''}`,
    );
  }
  return recovered;
}
