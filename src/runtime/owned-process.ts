/**
 * A process orch starts in a worktree besides an agent run — a gate's command,
 * a command stage, a hook — run through the one process runner (abort signal,
 * kill ladder, registry of live groups) and recorded in the store from spawn
 * to end, so a restart after a crash can end it (process-recovery.ts).
 */
import type { OrchContext } from './context.ts';
import {
  runAgentProcess,
  type AgentProcessOutcome,
  type AgentProcessSpec,
} from './process/run-agent-process.ts';
import { processIdentity } from './process/process-group.ts';
import type { ProcessKind, ProcessOutcome } from '../store/process-store.ts';
import { processOwnerId } from './worker-id.ts';

/**
 * What a command (not an agent) is watched with: no stall watchdog (a test suite may be silent
 * for minutes), no result line, its pipes drained 2 s after it exits, lines cut at 1 MiB.
 */
export const COMMAND_LIMITS = {
  stallTimeoutS: 0,
  resultGraceMs: 0,
  drainMs: 2_000,
  maxLineBytes: 1024 * 1024,
} as const satisfies Partial<AgentProcessSpec>;

export interface OwnedProcessRequest {
  ctx: OrchContext;
  kind: ProcessKind;
  /** The gate's, stage's or hook's name. */
  name: string;
  taskId: number | null;
  jobId: number | null;
  /** Who owns it (the worker's id); default this process. */
  workerId?: string;
  spec: AgentProcessSpec;
}

/** How the store records an outcome. */
export function recordedOutcome(outcome: AgentProcessOutcome): ProcessOutcome {
  if (outcome.spawnError !== null) return 'spawn_error';
  if (outcome.canceled) return 'interrupted';
  if (outcome.timedOut) return 'timeout';
  return outcome.exitCode === 0 ? 'ok' : 'failed';
}

/**
 * Runs the process to its end (never rejects) and keeps its row in step. A row that cannot be
 * written does not stop the process: it only loses the crash safety net, and `recordError` says so.
 */
export async function runOwnedProcess(
  req: OwnedProcessRequest,
): Promise<AgentProcessOutcome & { recordError?: string }> {
  const { store } = req.ctx;
  let row: Promise<number | null> = Promise.resolve(null);
  let recordError: string | undefined;
  const outcome = await runAgentProcess({
    ...req.spec,
    onSpawn: (info) => {
      row = store.processes
        .start({
          taskId: req.taskId,
          jobId: req.jobId,
          kind: req.kind,
          name: req.name,
          pid: info.pid,
          pgid: info.pgid,
          identity: processIdentity(info.pid),
          workerId: req.workerId ?? processOwnerId,
        })
        .catch((error: unknown) => {
          recordError = `could not record ${req.kind} ${req.name}: ${(error as Error).message}`;
          return null;
        });
      req.spec.onSpawn?.(info);
    },
  });
  const id = await row;
  if (id !== null) {
    await store.processes
      .finish(id, { outcome: recordedOutcome(outcome), exitCode: outcome.exitCode })
      .catch((error: unknown) => {
        recordError = `could not record the end of ${req.kind} ${req.name}: ${(error as Error).message}`;
      });
  }
  return recordError === undefined ? outcome : { ...outcome, recordError };
}
