/** `orch run`: works tasks until stopped (or until idle), printing live progress. */
import type { OrchContext } from '../../runtime/context.ts';
import { Orchestrator } from '../../orchestrator.ts';
import type { ProgressEvent } from '../../runtime/progress.ts';
import type { Logger } from '../../runtime/logger.ts';
import { duration, usd } from '../../core/format.ts';
import { resolveAgentBinaries } from '../../runtime/preflight.ts';

export function formatProgress(e: ProgressEvent): string {
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

export async function runCommand(
  ctx: OrchContext,
  log: Logger,
  opts: { untilIdle: boolean; concurrency?: number; json?: boolean; print?: (line: string) => void },
): Promise<void> {
  await resolveAgentBinaries(ctx);
  const print = opts.print ?? ((line: string) => process.stdout.write(line + '\n'));
  const orchestrator = new Orchestrator({
    ctx,
    log,
    concurrency: opts.concurrency ?? ctx.settings.concurrency,
    untilIdle: opts.untilIdle,
    emit: (e) =>
      print(opts.json ? JSON.stringify({ time: new Date().toISOString(), ...e }) : formatProgress(e)),
  });
  await runUntilSignalled(orchestrator, log);
}

/**
 * Runs orch until it stops by itself or the process gets SIGINT or SIGTERM: the first
 * signal stops it cleanly (agents ended, jobs requeued), a second one exits at once.
 */
export async function runUntilSignalled(
  orchestrator: Pick<Orchestrator, 'run' | 'stop'>,
  log: Logger,
): Promise<void> {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(130);
    log.info(`${signal}: stopping — ending running agents and requeueing their jobs`);
    orchestrator.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await orchestrator.run();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
