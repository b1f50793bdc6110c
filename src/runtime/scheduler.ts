/**
 * The scheduler: a pool of workers in one process. It claims runnable jobs
 * under a lease, works each with the engine, keeps leases alive with
 * heartbeats, and on a shutdown stops its jobs and gives their tries back.
 * Dispatch is event-driven: an enqueue in this process, a {@link Waker}
 * (PostgreSQL LISTEN/NOTIFY, or the SQLite file's directory watched), or the
 * next retry's due time wakes it; a slow poll is only the safety net.
 *
 * Many schedulers (`orch run`, `orch worker` on other machines) may share one
 * database: claims are atomic, leases say who holds a job, and whatever a dead
 * scheduler held is reclaimed by any reaper (reaper.ts) when its lease expires.
 */
import type { OrchContext } from './context.ts';
import { Engine, type EngineDeps } from './engine.ts';
import type { AbortReason, ProgressEvent } from './progress.ts';
import type { Job } from '../store/schema.ts';
import type { ClaimFilter, LeaseState } from '../store/store.ts';
import { createWaker, type Waker } from './waker.ts';
import type { Logger } from './logger.ts';
import type { LaunchLimits } from './launcher.ts';
import type { AgentEvent } from '../agents/events.ts';
import type { Transitions } from './transitions.ts';

export interface SchedulerOptions {
  ctx: OrchContext;
  log: Logger;
  /** This process's worker id: the lease owner of every job it claims. */
  workerId: string;
  transitions: Transitions;
  /** Jobs worked at once; 0 claims nothing. */
  concurrency: number;
  /** Exit once no task can progress: no job is queued (now or later) or running, anywhere. */
  untilIdle: boolean;
  /** Adapters this scheduler can run (`orch worker --labels`); empty or absent means all. */
  labels?: readonly string[];
  /** Where wake-ups come from. Default: {@link createWaker} for the context's database. */
  waker?: Waker;
  /** Works one claimed job. Default: the engine. */
  processJob?: (job: Job, signal: AbortSignal) => Promise<void>;
  /** Other work that keeps `untilIdle` from exiting (deliveries due soon). */
  busy?: () => Promise<boolean>;
  emit?: (event: ProgressEvent) => void;
  onAgentEvent?: (runId: number, event: AgentEvent) => void;
  onAgentLine?: (runId: number, line: string) => void;
  limits?: LaunchLimits;
  /** Safety-net poll in ms. Default `ORCH_POLL_MS` (1 000). */
  pollMs?: number;
}

/** The least time between two looks at the jobs worked here, after wake-ups (`Scheduler.lookSoon`). */
const LOOK_MS = 250;

/**
 * Claims on their way to the database at once: one per slot freed apart up to this, so a freed
 * slot does not wait for another slot's claim (each claim commits, and on PostgreSQL commits in
 * flight together share their flush); beyond it, freed slots are claimed together by the next
 * claim. Well under the pool's connections (10 by default), which the jobs' own work needs.
 */
const MAX_CLAIMS_IN_FLIGHT = 4;

interface Active {
  job: Job;
  controller: AbortController;
  done: Promise<void>;
}

export class Scheduler {
  readonly workerId: string;
  private readonly opts: SchedulerOptions;
  private readonly active = new Map<number, Active>();
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  /** A wake-up that came while the loop was busy: the next sleep returns at once. */
  private wokenMeanwhile = false;
  /** Slots asked for by the claims in flight. */
  private claiming = 0;
  /** The claims in flight, awaited before `run` returns. */
  private readonly claims = new Set<Promise<void>>();
  /** A claim came back short and nothing has woken us since: claim again only when something does. */
  private drained = false;
  /** Counts {@link wake} calls: a claim that came back short after one may have missed a new job. */
  private wakes = 0;
  /** A claim's error, thrown by `run` as a failed claim always was. */
  private claimError: { error: unknown } | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lookTimer: NodeJS.Timeout | null = null;
  /** Slots held for a job being claimed again (a run stopped for a person's message). */
  private reserved = 0;
  private lastLook = 0;
  private readonly waker: Waker;
  private readonly filter: ClaimFilter;
  private readonly processJob: (job: Job, signal: AbortSignal) => Promise<void>;

  constructor(opts: SchedulerOptions) {
    this.opts = opts;
    this.workerId = opts.workerId;
    const deps: EngineDeps = {
      ctx: opts.ctx,
      log: opts.log,
      workerId: this.workerId,
      transitions: opts.transitions,
      emit: (e) => opts.emit?.(e),
      ...(opts.limits ? { limits: opts.limits } : {}),
      ...(opts.onAgentEvent ? { onAgentEvent: opts.onAgentEvent } : {}),
      ...(opts.onAgentLine ? { onAgentLine: opts.onAgentLine } : {}),
    };
    const engine = new Engine(deps);
    this.processJob = opts.processJob ?? ((job, signal) => engine.process(job, signal));
    this.filter = { adapters: opts.labels?.length ? [...opts.labels] : null };
    this.waker =
      opts.waker ??
      createWaker(opts.ctx, (error) => opts.log.warn(`database wake-ups interrupted: ${error.message}`));
  }

  get runningCount(): number {
    return this.active.size;
  }

  /** Whether this scheduler is working the job now. */
  holds(jobId: number): boolean {
    return this.active.has(jobId);
  }

  /** Stops one job this scheduler works (the reaper's call for a run over its limit). */
  abort(jobId: number, reason: AbortReason): void {
    const a = this.active.get(jobId);
    if (a && !a.controller.signal.aborted) a.controller.abort(reason);
  }

  /** Wakes the dispatch loop now: something may have become claimable. */
  wake(): void {
    this.wakes += 1;
    this.drained = false;
    this.signal();
  }

  /** Lets the dispatch loop look again (a claim came back), without saying a job may be queued. */
  private signal(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    if (w) w();
    else this.wokenMeanwhile = true;
  }

  /** Claims and works jobs until stopped, or until idle with `untilIdle`. */
  async run(): Promise<void> {
    const { ctx, log } = this.opts;
    const leaseMs = ctx.settings.leaseTtlMs;
    this.heartbeatTimer = setInterval(
      () => void this.heartbeat(leaseMs),
      Math.max(200, Math.floor(leaseMs / 3)),
    );
    const labels = this.filter.adapters;
    try {
      await this.waker.start((adapter) => {
        // A job for an adapter we have no label for is not ours to wake up for.
        if (labels && typeof adapter === 'string' && adapter && !labels.includes(adapter)) return;
        this.wake();
        // The change may be a cancel of a job worked here, or a person's `say --now`.
        this.lookSoon();
      });
      log.debug(`worker ${this.workerId} listening for jobs`);
      while (!this.stopping) {
        if (this.claimError) throw this.claimError.error;
        if (!this.drained) this.fill(leaseMs);
        if (this.opts.untilIdle && this.active.size === 0 && this.claiming === 0 && (await this.idle()))
          break;
        await this.sleep();
      }
    } finally {
      await Promise.allSettled([...this.claims]);
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = null;
      if (this.lookTimer) clearTimeout(this.lookTimer);
      this.lookTimer = null;
      await this.waker.close().catch(() => {});
      await Promise.allSettled([...this.active.values()].map((a) => a.done));
    }
  }

  /**
   * Claims for every slot that is free and not already asked for by a claim in flight, without
   * waiting for it: a slot freed while a claim is on its way is claimed for at once, not after
   * that claim comes back, so every slot is refilled one claim's round trip after it frees (as
   * many claims in flight as slots freed apart, each for the slots free at its start). At most
   * {@link MAX_CLAIMS_IN_FLIGHT} at once: slots freed beyond wait for one to come back and are
   * claimed together, so a wide scheduler does not take every connection of its pool for claims.
   */
  private fill(leaseMs: number): void {
    const free = this.opts.concurrency - this.active.size - this.claiming - this.reserved;
    if (free < 1 || this.stopping || this.claims.size >= MAX_CLAIMS_IN_FLIGHT) return;
    this.claiming += free;
    const wakes = this.wakes;
    const claim = this.opts.ctx.store.claimJobs(this.workerId, leaseMs, free, this.filter).then(
      (jobs) => {
        for (const job of jobs) this.start(job);
        // Short: the queue had no more for us, unless a wake-up since says there may be more now.
        if (jobs.length < free && this.wakes === wakes) this.drained = true;
      },
      (error: unknown) => {
        this.claimError ??= { error };
      },
    );
    const tracked = claim.finally(() => {
      this.claiming -= free;
      this.claims.delete(tracked);
      this.signal();
    });
    this.claims.add(tracked);
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
    return !(await this.opts.busy?.());
  }

  /** Stops claiming, and stops the running jobs: their runs are ended and their tries given back. */
  stop(): void {
    this.stopping = true;
    for (const a of this.active.values()) a.controller.abort('shutdown' satisfies AbortReason);
    this.wake();
  }

  private start(job: Job): void {
    const controller = new AbortController();
    // Claimed as we were stopping: stopped like the jobs running then, its try given back.
    if (this.stopping) controller.abort('shutdown' satisfies AbortReason);
    const done = this.processJob(job, controller.signal)
      .catch(async (error: unknown) => {
        this.opts.log.error(
          `job ${job.id} (${job.stage}) failed: ${(error as Error).stack ?? String(error)}`,
        );
        // orch's own error, not the agent's: tried again in a while, and escalated past the cap.
        await this.opts.transitions
          .onJob(job, { kind: 'internal_error', message: (error as Error).message }, { owner: this.workerId })
          .catch((e: unknown) =>
            this.opts.log.error(`job ${job.id}: could not record its failure: ${String(e)}`),
          );
      })
      .finally(async () => {
        // A run stopped for a person's message (`say --now`) runs again at once with it: this
        // worker claims that job again before any other, whatever the claim order says, or it
        // would wait behind every task of a higher priority queued meanwhile.
        if (controller.signal.reason === 'redirect' && !this.stopping) {
          this.reserved += 1;
          const again = await this.opts.ctx.store
            .claimJobs(this.workerId, this.opts.ctx.settings.leaseTtlMs, 1, { ...this.filter, jobId: job.id })
            .catch(() => []);
          this.reserved -= 1;
          this.active.delete(job.id);
          for (const j of again) this.start(j);
        } else this.active.delete(job.id);
        this.wake();
      });
    this.active.set(job.id, { job, controller, done });
  }

  private async sleep(): Promise<void> {
    if (this.wokenMeanwhile) {
      this.wokenMeanwhile = false;
      return;
    }
    const poll = this.opts.pollMs ?? this.opts.ctx.settings.pollMs;
    // With every slot busy, or a claim on its way, a finishing job or the claim coming back wakes
    // us: no due time is worth a query.
    const full = this.active.size >= this.opts.concurrency || this.claiming > 0;
    const next = full ? null : await this.opts.ctx.store.nextRunAfter(this.filter);
    const dueIn = next ? Math.max(0, Date.parse(next) - Date.now()) : poll;
    if (this.wokenMeanwhile || this.stopping) {
      this.wokenMeanwhile = false;
      return;
    }
    await new Promise<void>((resolvePromise) => {
      const timer = setTimeout(
        () => {
          // The poll, or the next due time: look again whatever the last claim found.
          this.drained = false;
          resolvePromise();
        },
        Math.min(poll, dueIn + 5),
      );
      this.wakeUp = () => {
        clearTimeout(timer);
        resolvePromise();
      };
    });
  }

  /**
   * Renews the leases of the jobs worked here, and stops those that must stop: a job no longer
   * ours (cancelled, or reclaimed), and one whose run a person's message asked to stop (`say --now`).
   */
  private async heartbeat(leaseMs: number): Promise<void> {
    for (const a of this.active.values()) {
      const lease = await this.opts.ctx.store
        .renewLease(a.job.id, this.workerId, leaseMs)
        .catch((): LeaseState => ({ held: true, interruptMessageId: null }));
      await this.act(a, lease);
    }
  }

  /**
   * Looks, without renewing anything, whether a job worked here was cancelled or asked to stop its
   * run, soon after the database changed (a wake-up): a person's `task cancel` or `say --now` from
   * another process reaches the running agent or gate then, not at the next heartbeat, a third of
   * the lease later. At most one look per {@link LOOK_MS}; a read, so a look's own effect on the
   * database (none) cannot wake it again.
   */
  private lookSoon(): void {
    if (this.active.size === 0 || this.lookTimer || this.stopping) return;
    const wait = Math.max(0, this.lastLook + LOOK_MS - Date.now());
    this.lookTimer = setTimeout(() => {
      this.lastLook = Date.now();
      void this.look().finally(() => (this.lookTimer = null));
    }, wait);
  }

  private async look(): Promise<void> {
    const ids = [...this.active.keys()];
    const states = await this.opts.ctx.store.leaseStates(ids, this.workerId).catch(() => null);
    if (!states) return;
    for (const id of ids) {
      const a = this.active.get(id);
      const lease = states.get(id);
      if (a && lease) await this.act(a, lease);
    }
  }

  /** Stops a job worked here that is no longer ours, or whose run a person's message asked to stop. */
  private async act(a: Active, lease: LeaseState): Promise<void> {
    if (a.controller.signal.aborted) return;
    if (lease.held) {
      if (lease.interruptMessageId !== null) {
        this.opts.log.info(
          `job ${a.job.id} (${a.job.stage}): stopping its run for message ${lease.interruptMessageId}`,
        );
        a.controller.abort('redirect' satisfies AbortReason);
      }
      return;
    }
    const job = await this.opts.ctx.store.getJob(a.job.id);
    if (a.controller.signal.aborted) return;
    a.controller.abort((job?.status === 'cancelled' ? 'cancel' : 'lease_lost') satisfies AbortReason);
  }
}
