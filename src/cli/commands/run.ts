/** `orch run`: works tasks until stopped (or until idle), printing live progress. */
import type { OrchContext } from '../../runtime/context.ts';
import { Orchestrator } from '../../orchestrator.ts';
import type { ProgressEvent } from '../../runtime/progress.ts';
import type { Logger } from '../../runtime/logger.ts';
import { duration, usd } from '../../core/format.ts';
import { paint, terminalSafe, terminalSafeJson, type Colour } from '../../core/text.ts';
import { resolveAgentBinaries } from '../../runtime/preflight.ts';
import { startLoopWatchdog } from '../../runtime/loop-watchdog.ts';
import { printLine, stdoutColours } from '../output.ts';
import { onShutdownSignals, shutdownDeadlineMs } from '../signals.ts';

/** The colour of a progress line, when colours are on. */
function colourOf(e: ProgressEvent): Colour | null {
  switch (e.kind) {
    case 'run_finished':
      return e.outcome === 'ok' ? 'green' : 'red';
    case 'gate':
      return e.passed ? null : 'red';
    case 'escalated':
      return 'red';
    case 'retry':
    case 'waiting':
      return 'yellow';
    case 'done':
      return 'green';
    default:
      return null;
  }
}

/**
 * A progress event as a terminal line. Keys, details and errors come from trackers, agents and
 * gates: the line is neutralised (core/text.ts) before orch's own colour, if any, is added.
 */
export function formatProgress(e: ProgressEvent, opts: { colour?: boolean } = {}): string {
  const line = terminalSafe(progressText(e));
  const colour = colourOf(e);
  return colour ? paint(line, colour, opts.colour ?? false) : line;
}

function progressText(e: ProgressEvent): string {
  switch (e.kind) {
    case 'stage':
      return `${e.key}  ${e.from} → ${e.to}`;
    case 'run_started':
      return `${e.key}  ▶ ${e.role} started (${e.stage}${e.attempt ? `, attempt ${e.attempt}` : ''}, run ${e.runId})`;
    case 'run_finished':
      return `${e.key}  ${e.outcome === 'ok' ? '✓' : '✗'} ${e.role} ${e.outcome} in ${duration(e.durationMs)}, ${e.tokens} tokens, ${usd(e.costUsd)}`;
    case 'retry':
      return `${e.key}  ↻ ${e.role} will retry in ${duration(e.delayMs)}: ${e.error}`;
    case 'verdict':
      return `${e.key}  review of attempt ${e.attempt}: ${e.verdict} (diff ${e.diffHash.slice(0, 10)})`;
    case 'gate':
      return `${e.key}  gate ${e.name}: ${e.passed ? 'passed' : 'FAILED'}`;
    case 'escalated':
      return `${e.key}  ⚠ escalated: ${e.reason} — ${e.detail}\n${e.key}    terminal packet: ${e.packetPath}`;
    case 'waiting':
      return `${e.key}  ⏸ ${e.detail}`;
    case 'done':
      return `${e.key}  ✔ done`;
  }
}

/** A progress event as a `--json` line: JSON with no raw character a terminal acts on. */
export const progressJson = (e: ProgressEvent, extra: Record<string, unknown> = {}): string =>
  terminalSafeJson({ time: new Date().toISOString(), ...extra, ...e });

export async function runCommand(
  ctx: OrchContext,
  log: Logger,
  opts: { untilIdle: boolean; concurrency?: number; json?: boolean; print?: (line: string) => void },
): Promise<void> {
  await resolveAgentBinaries(ctx);
  const print = opts.print ?? printLine;
  const colour = opts.print === undefined && stdoutColours();
  const orchestrator = new Orchestrator({
    ctx,
    log,
    concurrency: opts.concurrency ?? ctx.settings.concurrency,
    untilIdle: opts.untilIdle,
    emit: (e) => print(opts.json ? progressJson(e) : formatProgress(e, { colour })),
  });
  await runUntilSignalled(orchestrator, log, { deadlineMs: await shutdownDeadlineMs(ctx) });
}

/**
 * Runs orch until it stops by itself or the process gets SIGINT or SIGTERM: the first
 * signal stops it cleanly (agents, gates and commands ended, jobs requeued) within `deadlineMs`;
 * a second one, or the deadline, kills every process group this process started and exits at
 * once (cli/signals.ts). The event-loop watchdog runs meanwhile.
 */
export async function runUntilSignalled(
  orchestrator: Pick<Orchestrator, 'run' | 'stop'>,
  log: Logger,
  opts: { deadlineMs?: number } = {},
): Promise<void> {
  const stopWatchdog = startLoopWatchdog({ log });
  const signals = onShutdownSignals({
    log,
    ...(opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {}),
    stop: (signal) => {
      log.info(
        `${signal}: stopping — ending running agents, gates and commands and requeueing their jobs; a second signal kills them at once`,
      );
      orchestrator.stop();
    },
  });
  try {
    await orchestrator.run();
  } finally {
    signals.dispose();
    stopWatchdog();
  }
}
