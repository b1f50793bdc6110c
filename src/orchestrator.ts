/**
 * The composition root of a running orch (`orch run`, `orch worker`,
 * `orch serve`, `orch demo`): the scheduler, the reaper, the outbox and the
 * tracker poller, started side by side over one context and one writer of
 * task state, and stopped together.
 */
import type { OrchContext } from './runtime/context.ts';
import type { Logger } from './runtime/logger.ts';
import type { ProgressEvent } from './runtime/progress.ts';
import type { LaunchLimits } from './runtime/launcher.ts';
import type { AgentEvent } from './agents/events.ts';
import type { Job } from './store/schema.ts';
import type { Waker } from './runtime/waker.ts';
import { Scheduler } from './runtime/scheduler.ts';
import { Reaper } from './runtime/reaper.ts';
import { Transitions } from './runtime/transitions.ts';
import { newWorkerId } from './runtime/worker-id.ts';
import { Outbox } from './notify/outbox.ts';
import { TrackerPoller } from './runtime/tracker-sync.ts';

export interface OrchestratorOptions {
  ctx: OrchContext;
  log: Logger;
  /** Jobs worked at once; 0 claims nothing (the reaper, the outbox and the poller still run). */
  concurrency: number;
  /** Exit once no task can progress: no job is queued (now or later) or running, anywhere. */
  untilIdle: boolean;
  /** Adapters this process can run (`orch worker --labels`); empty or absent means all. */
  labels?: readonly string[];
  /** Deliver notifications and tracker writes from the outbox. Default true. */
  outbox?: boolean;
  /** Import tasks by polling the projects' trackers. Default true (`orch worker` leaves it to `orch run`/`orch serve`). */
  trackers?: boolean;
  emit?: (event: ProgressEvent) => void;
  onAgentEvent?: (runId: number, event: AgentEvent) => void;
  onAgentLine?: (runId: number, line: string) => void;
  limits?: LaunchLimits;
  waker?: Waker;
  pollMs?: number;
  /** Works one claimed job. Default: the engine. */
  processJob?: (job: Job, signal: AbortSignal) => Promise<void>;
}

export class Orchestrator {
  readonly workerId = newWorkerId();
  readonly transitions: Transitions;
  private readonly opts: OrchestratorOptions;
  private readonly scheduler: Scheduler;
  private readonly reaper: Reaper;
  private readonly outbox: Outbox | null;
  private readonly poller: TrackerPoller | null;

  constructor(opts: OrchestratorOptions) {
    this.opts = opts;
    const { ctx, log } = opts;
    this.transitions = new Transitions({ ctx, log, emit: (e) => opts.emit?.(e) });
    this.outbox = opts.outbox === false ? null : new Outbox({ ctx, log, owner: this.workerId });
    this.scheduler = new Scheduler({
      ctx,
      log,
      workerId: this.workerId,
      transitions: this.transitions,
      concurrency: opts.concurrency,
      untilIdle: opts.untilIdle,
      busy: async () => (await this.outbox?.busy()) ?? false,
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.emit ? { emit: opts.emit } : {}),
      ...(opts.onAgentEvent ? { onAgentEvent: opts.onAgentEvent } : {}),
      ...(opts.onAgentLine ? { onAgentLine: opts.onAgentLine } : {}),
      ...(opts.limits ? { limits: opts.limits } : {}),
      ...(opts.waker ? { waker: opts.waker } : {}),
      ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}),
      ...(opts.processJob ? { processJob: opts.processJob } : {}),
    });
    this.reaper = new Reaper({
      ctx,
      log,
      workerId: this.workerId,
      transitions: this.transitions,
      local: this.scheduler,
      onRequeued: () => this.scheduler.wake(),
    });
    this.poller =
      opts.trackers === false
        ? null
        : new TrackerPoller({ ctx, log, onImported: () => this.scheduler.wake() });
  }

  get runningCount(): number {
    return this.scheduler.runningCount;
  }

  /** Wakes the scheduler now (a task was added in this process). */
  wake(): void {
    this.scheduler.wake();
  }

  /** Runs until stopped, or until idle with `untilIdle`. */
  async run(): Promise<void> {
    await this.checkProjects();
    await this.reaper.start();
    try {
      this.outbox?.start();
      // The first poll is awaited, so `--until-idle` sees what the trackers hold.
      await this.poller?.start();
      await this.scheduler.run();
    } finally {
      await this.poller?.stop();
      await this.reaper.stop();
      await this.outbox?.stop();
    }
  }

  /** Stops claiming, ends running agents (TERM, then KILL after the grace) and gives their tries back. */
  stop(): void {
    this.scheduler.stop();
  }

  /**
   * Every project's configuration loads before any work: one that is invalid (the reaper
   * invariant broken by any timeout, say) stops the start with its file, line and key.
   */
  private async checkProjects(): Promise<void> {
    for (const project of await this.opts.ctx.store.listProjects()) {
      const rt = await this.opts.ctx.projectRuntime(project.id);
      for (const warning of rt.config.warnings) this.opts.log.warn(`project ${project.name}: ${warning}`);
    }
  }
}
