/**
 * The scheduler: a pool of workers in one process. It claims runnable jobs
 * under a lease, works each with the engine, keeps leases alive with
 * heartbeats, reaps what dead processes left behind, and shuts down cleanly.
 * Dispatch is event-driven: an enqueue in this process, a {@link Waker}
 * (PostgreSQL LISTEN/NOTIFY, or the SQLite file's directory watched), or the
 * next retry's due time wakes it; a slow poll is only the safety net.
 *
 * Many schedulers (`orch run`, `orch worker` on other machines) may share one
 * database: claims are atomic, leases say who holds a job, and whatever a dead
 * scheduler held is reclaimed by any other when its lease expires.
 */
import type { OrchContext } from './context.ts';
import { Engine, type AbortReason, type EngineDeps, type ProgressEvent } from './engine.ts';
import type { AgentRun, Job } from '../store/schema.ts';
import type { ClaimFilter } from '../store/store.ts';
import { createWaker, type Waker } from './waker.ts';
import type { Logger } from './logger.ts';
import { killProcessGroup, processGroupAlive } from './process/run-agent-process.ts';
import type { LaunchLimits } from './launcher.ts';
import { reaperInvariantViolation } from '../core/timeouts.ts';
import type { AgentEvent } from '../agents/events.ts';
import { OrchError } from '../errors.ts';
import { Outbox } from '../notify/outbox.ts';
import { newWorkerId, onThisHost, ownerDead } from './worker-id.ts';
export { newWorkerId } from './worker-id.ts';
import { TrackerPoller } from '../trackers/sync.ts';

export interface SchedulerOptions {
  ctx: OrchContext;
  log: Logger;
  /** Jobs worked at once; 0 claims nothing (the reaper still runs). */
  concurrency: number;
  /** Exit once no task can progress: no job is queued (now or later) or running, anywhere. */
  untilIdle: boolean;
  /** Adapters this scheduler can run (`orch worker --labels`); empty or absent means all. */
  labels?: readonly string[];
  /** Where wake-ups come from. Default: {@link createWaker} for the context's database. */
  waker?: Waker;
  /** Works one claimed job. Default: the engine. */
  processJob?: (job: Job, signal: AbortSignal) => Promise<void>;
  emit?: (event: ProgressEvent) => void;
  onAgentEvent?: (runId: number, event: AgentEvent) => void;
  onAgentLine?: (runId: number, line: string) => void;
  limits?: LaunchLimits;
  /** Safety-net poll in ms. Default `ORCH_POLL_MS` (1 000). */
  pollMs?: number;
  /** Deliver notifications and tracker writes from the outbox beside the jobs. Default true. */
  outbox?: boolean;
  /** Import tasks by polling the projects' trackers. Default true (`orch worker` leaves it to `orch run`/`orch serve`). */
  trackers?: boolean;
}

interface Active {
  job: Job;
  controller: AbortController;
  done: Promise<void>;
}

/** Claims of one job that ended in an error of orch's own before its task escalates. */
const MAX_INTERNAL_FAILURES = 5;

/**
 * Why a run still marked running has nobody working it, or null when someone
 * may be: its job is finished, queued again or held by another worker (the
 * run's worker lost it), or the run's worker is known dead (on this host).
 */
function orphaned(run: AgentRun, job: Job | undefined): string | null {
  if (job && !(job.status === 'running' && job.lease_owner === run.worker_id)) return 'its job was reclaimed';
  return ownerDead(run.worker_id) ? 'the orchestrator that ran it died' : null;
}

export class Scheduler {
  readonly workerId = newWorkerId();
  private readonly opts: SchedulerOptions;
  private readonly engine: Engine;
  private readonly active = new Map<number, Active>();
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  /** A wake-up that came while the loop was busy: the next sleep returns at once. */
  private wokenMeanwhile = false;
  private timers: NodeJS.Timeout[] = [];
  private readonly waker: Waker;
  private readonly filter: ClaimFilter;
  private readonly processJob: (job: Job, signal: AbortSignal) => Promise<void>;
  private readonly outbox: Outbox | null;
  private readonly poller: TrackerPoller | null;

  constructor(opts: SchedulerOptions) {
    this.opts = opts;
    this.poller =
      opts.trackers === false
        ? null
        : new TrackerPoller({ ctx: opts.ctx, log: opts.log, onImported: () => this.wake() });
    this.outbox =
      opts.outbox === false ? null : new Outbox({ ctx: opts.ctx, log: opts.log, owner: this.workerId });
    const deps: EngineDeps = {
      ctx: opts.ctx,
      log: opts.log,
      workerId: this.workerId,
      emit: (e) => opts.emit?.(e),
      ...(opts.limits ? { limits: opts.limits } : {}),
      ...(opts.onAgentEvent ? { onAgentEvent: opts.onAgentEvent } : {}),
      ...(opts.onAgentLine ? { onAgentLine: opts.onAgentLine } : {}),
    };
    this.engine = new Engine(deps);
    this.processJob = opts.processJob ?? ((job, signal) => this.engine.process(job, signal));
    this.filter = { adapters: opts.labels?.length ? [...opts.labels] : null };
    this.waker =
      opts.waker ??
      createWaker(opts.ctx, (error) => opts.log.warn(`database wake-ups interrupted: ${error.message}`));
  }

  get runningCount(): number {
    return this.active.size;
  }

  /** Wakes the dispatch loop now. */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    if (w) w();
    else this.wokenMeanwhile = true;
  }

  /** Runs until stopped, or until idle with `untilIdle`. */
  async run(): Promise<void> {
    const { ctx, log } = this.opts;
    await this.checkInvariants();
    await this.recover();
    const leaseMs = ctx.settings.leaseTtlMs;
    this.timers.push(setInterval(() => void this.heartbeat(leaseMs), Math.max(200, Math.floor(leaseMs / 3))));
    this.timers.push(setInterval(() => void this.reap(), ctx.settings.reaperIntervalMs));
    const labels = this.filter.adapters;
    try {
      await this.waker.start((adapter) => {
        // A job for an adapter we have no label for is not ours to wake up for.
        if (labels && typeof adapter === 'string' && adapter && !labels.includes(adapter)) return;
        this.wake();
      });
      log.debug(`worker ${this.workerId} listening for jobs`);
      this.outbox?.start();
      // The first poll is awaited, so `--until-idle` sees what the trackers hold.
      await this.poller?.start();
      while (!this.stopping) {
        while (this.active.size < this.opts.concurrency && !this.stopping) {
          const free = this.opts.concurrency - this.active.size;
          const jobs = await ctx.store.claimJobs(this.workerId, leaseMs, free, this.filter);
          for (const job of jobs) this.start(job);
          if (jobs.length < free) break;
        }
        if (this.opts.untilIdle && this.active.size === 0 && (await this.idle())) break;
        await this.sleep();
      }
    } finally {
      await this.shutdown();
    }
  }

  /**
   * No job is queued or running anywhere. Jobs for adapters we have no label
   * for count too: a running job of ours may be about to queue one, and one of
   * theirs may be about to queue one of ours, so a labelled worker waits for
   * the whole database to go quiet.
   */
  private async idle(): Promise<boolean> {
    const { store } = this.opts.ctx;
    if ((await store.countJobs('queued')) > 0 || (await store.countJobs('running')) > 0) return false;
    // Notifications and tracker writes due soon are part of the work; ones backing off for long are left for the next run.
    return !(await this.outbox?.busy());
  }

  /** Stops claiming, ends running agents (TERM, then KILL after the grace) and requeues their jobs. */
  stop(): void {
    this.stopping = true;
    for (const a of this.active.values()) a.controller.abort('shutdown' satisfies AbortReason);
    this.wake();
  }

  private start(job: Job): void {
    const controller = new AbortController();
    const done = this.processJob(job, controller.signal)
      .catch(async (error: unknown) => {
        this.opts.log.error(
          `job ${job.id} (${job.stage}) failed: ${(error as Error).stack ?? String(error)}`,
        );
        await this.internalFailure(job, error as Error).catch(() => {});
      })
      .finally(() => {
        this.active.delete(job.id);
        this.wake();
      });
    this.active.set(job.id, { job, controller, done });
  }

  /**
   * A job whose processing threw (orch's own error, not an agent's outcome) is tried again in
   * 5 s; after {@link MAX_INTERNAL_FAILURES} tries the task escalates with `internal_error`
   * instead of looping forever (a worktree path refused, a repository gone).
   */
  private async internalFailure(job: Job, error: Error): Promise<void> {
    const { store } = this.opts.ctx;
    const detail = `internal error: ${error.message}`;
    if (job.attempts < MAX_INTERNAL_FAILURES) return store.requeueJob(store.db, job.id, 5_000, detail);
    await store.tx(async (tx) => {
      const task = await store.getTask(job.task_id, tx);
      if (task.stage !== job.stage || ['done', 'cancelled', 'escalated'].includes(task.status)) return;
      await store.finishJob(tx, job.id, 'failed', detail);
      await store.updateTask(tx, task.id, {
        status: 'escalated',
        terminal_reason: 'internal_error',
        status_detail: `${detail} (failed ${job.attempts} times)`,
        finished_at: new Date().toISOString(),
      });
      await store.appendEvent(tx, task.id, 'escalated', { reason: 'internal_error', detail });
    });
  }

  private async sleep(): Promise<void> {
    if (this.wokenMeanwhile) {
      this.wokenMeanwhile = false;
      return;
    }
    const poll = this.opts.pollMs ?? this.opts.ctx.settings.pollMs;
    // With every slot busy, only a finishing job (which wakes us) can let us claim: no due
    // time is worth a query.
    const full = this.active.size >= this.opts.concurrency;
    const next = full ? null : await this.opts.ctx.store.nextRunAfter(this.filter);
    const dueIn = next ? Math.max(0, Date.parse(next) - Date.now()) : poll;
    if (this.wokenMeanwhile || this.stopping) {
      this.wokenMeanwhile = false;
      return;
    }
    await new Promise<void>((resolvePromise) => {
      const timer = setTimeout(() => resolvePromise(), Math.min(poll, dueIn + 5));
      this.wakeUp = () => {
        clearTimeout(timer);
        resolvePromise();
      };
    });
  }

  private async heartbeat(leaseMs: number): Promise<void> {
    for (const a of this.active.values()) {
      const mine = await this.opts.ctx.store.heartbeat(a.job.id, this.workerId, leaseMs).catch(() => true);
      if (mine || a.controller.signal.aborted) continue;
      const job = await this.opts.ctx.store.getJob(a.job.id);
      a.controller.abort((job?.status === 'cancelled' ? 'cancel' : 'lease_lost') satisfies AbortReason);
    }
  }

  private async checkInvariants(): Promise<void> {
    for (const project of await this.opts.ctx.store.listProjects()) {
      const rt = await this.opts.ctx.projectRuntime(project.id);
      for (const warning of rt.config.warnings) this.opts.log.warn(`project ${project.name}: ${warning}`);
      const problem = reaperInvariantViolation(rt.config.timeouts);
      if (problem) throw new OrchError('config_invalid', `project ${project.name}: ${problem}`);
    }
  }

  /**
   * At start: runs left `running` by a process that died are killed (their
   * process group) and finalized as interrupted, and their jobs requeued.
   * Only owners on this host can be known dead now; the jobs of a worker on
   * another host come back when their lease expires (see {@link reap}).
   */
  private async recover(): Promise<void> {
    const { store } = this.opts.ctx;
    for (const run of await store.runningRuns()) {
      const job = run.job_id !== null ? await store.getJob(run.job_id) : undefined;
      const why = orphaned(run, job);
      if (why) await this.finalizeOrphan(run, 'interrupted', why);
    }
    const stale = await store.db.selectFrom('jobs').selectAll().where('status', '=', 'running').execute();
    for (const job of stale) {
      if (!ownerDead(job.lease_owner)) continue;
      await store.tx(async (tx) => {
        await store.requeueJob(tx, job.id, 0, 'worker died');
        await store.updateTask(tx, job.task_id, { status: 'queued' });
      });
    }
  }

  /**
   * Finalizes a run nobody works any more. Its process group is killed only
   * when the run was started on this host: a pgid from another machine means
   * nothing here.
   */
  private async finalizeOrphan(run: AgentRun, outcome: string, why: string): Promise<void> {
    const { store } = this.opts.ctx;
    const rt = await this.opts.ctx.projectRuntime((await store.getTask(run.task_id)).project_id);
    let killed = false;
    if (run.pgid && onThisHost(run.worker_id) && processGroupAlive(run.pgid)) {
      await killProcessGroup(run.pgid, rt.config.timeouts.agentKillGraceSeconds);
      killed = true;
    }
    const finalized = await store.tx(async (tx) => {
      const ok = await store.finishRun(tx, run.id, {
        exitCode: killed ? -9 : null,
        outcome,
        resultText: null,
        error: why,
      });
      if (ok) await store.appendEvent(tx, run.task_id, 'run_reaped', { run_id: run.id, outcome, killed });
      return ok;
    });
    if (finalized)
      this.opts.log.warn(
        `run ${run.id} finalized as ${outcome}: ${why}${killed ? ' (process group killed)' : ''}`,
      );
  }

  /**
   * Periodic reaper, run by every scheduler sharing the database: expired
   * leases back to the queue, runs older than the reaper limit, and runs
   * nobody works any more (their job moved on, or their worker died here).
   */
  private async reap(): Promise<void> {
    const { store } = this.opts.ctx;
    try {
      const reclaimed = await store.reclaimExpiredJobs();
      for (const job of reclaimed)
        this.opts.log.warn(`job ${job.id} reclaimed: its worker stopped heartbeating`);
      if (reclaimed.length) this.wake();
      for (const run of await store.runningRuns()) {
        const rt = await this.opts.ctx.projectRuntime((await store.getTask(run.task_id)).project_id);
        const ageS = run.started_at ? (Date.now() - Date.parse(run.started_at)) / 1000 : 0;
        const mine =
          run.worker_id === this.workerId
            ? [...this.active.values()].find((a) => a.job.id === run.job_id)
            : undefined;
        if (ageS > rt.config.timeouts.reaperMaxRunningS) {
          if (mine) mine.controller.abort('lease_lost' satisfies AbortReason);
          await this.finalizeOrphan(
            run,
            'reaped',
            `running for ${Math.round(ageS)}s, over ORCH_REAPER_MAX_RUNNING_S`,
          );
          continue;
        }
        if (mine) continue;
        const job = run.job_id !== null ? await store.getJob(run.job_id) : undefined;
        const why = orphaned(run, job);
        if (why) await this.finalizeOrphan(run, 'interrupted', why);
      }
    } catch (error) {
      this.opts.log.warn(`reaper pass failed: ${(error as Error).message}`);
    }
  }

  private async shutdown(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.poller?.stop();
    await this.outbox?.stop();
    await this.waker.close().catch(() => {});
    await Promise.allSettled([...this.active.values()].map((a) => a.done));
  }
}
