/**
 * `orch serve`: the HTTP API, the dashboard and `/metrics`, plus (unless
 * `--no-workers`) a scheduler working the queue in the same process.
 * SIGINT/SIGTERM stop both: the scheduler ends its agents, gates and
 * commands and requeues their jobs, the server closes its event streams; a
 * second signal kills every process group at once (cli/signals.ts).
 */
import type { OrchContext } from '../../runtime/context.ts';
import type { Logger } from '../../runtime/logger.ts';
import { Orchestrator } from '../../orchestrator.ts';
import { resolveAgentBinaries } from '../../runtime/preflight.ts';
import { startServer } from '../../http/server.ts';
import { ensureDashboard } from '../../http/dashboard.ts';
import { apiTokenFrom, checkBindable } from '../../http/auth.ts';
import { formatProgress } from './run.ts';
import { printLine, stdoutColours } from '../output.ts';
import { onShutdownSignals, shutdownDeadlineMs } from '../signals.ts';
import { startLoopWatchdog } from '../../runtime/loop-watchdog.ts';

export interface ServeOptions {
  host: string;
  port: number;
  workers: boolean;
  concurrency?: number;
  print?: (line: string) => void;
}

export async function serveCommand(ctx: OrchContext, log: Logger, opts: ServeOptions): Promise<void> {
  const print = opts.print ?? printLine;
  const colour = opts.print === undefined && stdoutColours();
  const concurrency = opts.concurrency ?? ctx.settings.concurrency;
  // Refuse an unsafe bind before any work (startServer checks again).
  checkBindable(opts.host, apiTokenFrom(ctx.env));
  if (opts.workers) await resolveAgentBinaries(ctx);
  const dashboard = await ensureDashboard();
  if (dashboard.kind === 'built') log.info(`dashboard built in ${dashboard.ms} ms`);
  if (dashboard.kind === 'unavailable') log.warn(`dashboard unavailable: ${dashboard.message}`);

  let scheduler: Orchestrator | null = null;
  const server = await startServer(ctx, {
    host: opts.host,
    port: opts.port,
    log,
    workers: opts.workers ? concurrency : 0,
    processMetrics: true,
    onWorkQueued: () => scheduler?.wake(),
  });
  // Without workers the scheduler claims nothing, but still polls the trackers, delivers
  // notifications and reaps what dead processes left.
  {
    scheduler = new Orchestrator({
      ctx,
      log,
      concurrency: opts.workers ? concurrency : 0,
      untilIdle: false,
      emit: (e) => {
        print(formatProgress(e, { colour }));
        server.notify();
      },
    });
  }
  print(`orch serve: ${server.url}  (dashboard; API ${server.url}/api; metrics ${server.url}/metrics)`);
  print(
    opts.workers
      ? `working the queue with up to ${concurrency} agents at once; Ctrl-C stops`
      : 'no workers (--no-workers): `orch run` or `orch worker` works the queue; Ctrl-C stops',
  );

  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  // The API's answers show whether the loop stalls; the watchdog logs it and feeds /metrics.
  const stopWatchdog = startLoopWatchdog({ log });
  const signals = onShutdownSignals({
    log,
    deadlineMs: await shutdownDeadlineMs(ctx),
    stop: (signal) => {
      log.info(
        `${signal}: stopping — ending running agents, gates and commands, requeueing their jobs, closing the server; a second signal kills them at once`,
      );
      scheduler?.stop();
      stopRequested();
    },
  });
  const working = scheduler?.run();
  try {
    // The scheduler runs until a signal stops it, or fails (a config that breaks the reaper invariant).
    await (working ? Promise.race([working, stopped]) : stopped);
    await working;
  } finally {
    signals.dispose();
    stopWatchdog();
    await server.close();
  }
}
