/**
 * SIGINT and SIGTERM for the long-running commands (`orch run`, `orch worker`,
 * `orch serve`). The first signal stops cleanly: no more claims, every agent,
 * gate and command ended through its abort signal (TERM to its group, KILL
 * after the kill grace), their jobs requeued. Should that not be done by the
 * deadline (the longest kill grace plus a margin), or should a second signal
 * come, every process group this process started is killed at once
 * (SIGKILL) and the process exits: what it leaves in the store (runs, gates
 * recorded as running) is what a crash leaves, and the next start recovers it.
 */
import type { OrchContext } from '../runtime/context.ts';
import type { Logger } from '../runtime/logger.ts';
import { killAllNow } from '../runtime/process/registry.ts';

/** Beyond the kill grace, what a clean stop may take: SIGKILL's wait (2 s), pipes draining (2 s), the store. */
export const SHUTDOWN_MARGIN_S = 10;

/** Exit code after a second signal (as a shell reports an interrupted command). */
export const EXIT_SECOND_SIGNAL = 130;
/** Exit code when a clean stop missed its deadline. */
export const EXIT_SHUTDOWN_OVERRUN = 1;

export interface ShutdownSignals {
  /** Stops listening (and disarms the deadline); call when the command is done. */
  dispose(): void;
}

/**
 * How long a clean stop may take, ms: the longest `agent_kill_grace_seconds` of the home's
 * projects (every group is ended at once, so graces do not add up) plus {@link SHUTDOWN_MARGIN_S}.
 */
export async function shutdownDeadlineMs(ctx: OrchContext): Promise<number> {
  let graceS = 0;
  for (const project of await ctx.store.listProjects()) {
    const rt = await ctx.projectRuntime(project.id).catch(() => null);
    graceS = Math.max(graceS, rt?.config.timeouts.agentKillGraceSeconds ?? 0);
  }
  return (graceS + SHUTDOWN_MARGIN_S) * 1000;
}

/** Kills every live process group this process started, says so, and exits. */
export function hardStop(log: Logger, why: string, code: number): never {
  const killed = killAllNow();
  log.warn(
    `${why}: killed ${killed.length} process group${killed.length === 1 ? '' : 's'} at once${
      killed.length ? ` (${killed.map((g) => `${g.label}, group ${g.pgid}`).join('; ')})` : ''
    }; exiting — the next start recovers what they left`,
  );
  process.exit(code);
}

/**
 * Listens for SIGINT and SIGTERM: the first calls `stop` and arms the deadline, a second (or the
 * deadline) kills every group at once and exits.
 */
export function onShutdownSignals(opts: {
  log: Logger;
  /** What a clean stop does (stop the scheduler, close the server). */
  stop: (signal: NodeJS.Signals) => void;
  /** How long the clean stop may take before it is cut short, ms. Default: no deadline. */
  deadlineMs?: number;
}): ShutdownSignals {
  let signals = 0;
  let deadline: NodeJS.Timeout | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) hardStop(opts.log, `${signal} again`, EXIT_SECOND_SIGNAL);
    opts.stop(signal);
    if (opts.deadlineMs !== undefined) {
      const seconds = Math.round(opts.deadlineMs / 1000);
      deadline = setTimeout(
        () => hardStop(opts.log, `still stopping ${seconds} s after ${signal}`, EXIT_SHUTDOWN_OVERRUN),
        opts.deadlineMs,
      );
      // The deadline only cuts a stop short; it never keeps a finished process alive.
      deadline.unref();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    dispose() {
      clearTimeout(deadline);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
