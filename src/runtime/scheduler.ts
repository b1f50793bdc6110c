/**
 * The scheduler: a pool of workers in one process. It claims runnable jobs
 * under a lease, works each with the engine, keeps leases alive with
 * heartbeats, reaps what dead processes left behind, and shuts down cleanly.
 * Dispatch is event-driven: an enqueue in this process, a write to the
 * database by another process (seen through the file system), or the next
 * retry's due time wakes it; a slow poll is only the safety net.
 */
import { watch, type FSWatcher } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { OrchContext } from './context.ts';
import { Engine, type AbortReason, type EngineDeps, type ProgressEvent } from './engine.ts';
import type { Job } from '../store/schema.ts';
import type { Logger } from './logger.ts';
import { killProcessGroup, processGroupAlive } from './process/run-agent-process.ts';
import type { LaunchLimits } from './launcher.ts';
import { reaperInvariantViolation } from '../core/timeouts.ts';
import type { AgentEvent } from '../agents/events.ts';
import { OrchError } from '../errors.ts';

export interface SchedulerOptions {
  ctx: OrchContext;
  log: Logger;
  /** Agents run at once. */
  concurrency: number;
  /** Exit when no task can progress. */
  untilIdle: boolean;
  emit?: (event: ProgressEvent) => void;
  onAgentEvent?: (runId: number, event: AgentEvent) => void;
  onAgentLine?: (runId: number, line: string) => void;
  limits?: LaunchLimits;
  /** Safety-net poll in ms. Default 1 000. */
  pollMs?: number;
}

interface Active {
  job: Job;
  controller: AbortController;
  done: Promise<void>;
}

const HOST = hostname();
export const newWorkerId = (): string => `${HOST}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;

/** Whether the worker that owns a lease is certainly dead (only knowable on this host). */
function ownerDead(owner: string | null): boolean {
  if (!owner) return true;
  const [host, pid] = owner.split(':');
  if (host !== HOST || !pid) return false;
  if (Number(pid) === process.pid) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export class Scheduler {
  readonly workerId = newWorkerId();
  private readonly opts: SchedulerOptions;
  private readonly engine: Engine;
  private readonly active = new Map<number, Active>();
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  private timers: NodeJS.Timeout[] = [];
  private watcher: FSWatcher | null = null;

  constructor(opts: SchedulerOptions) {
    this.opts = opts;
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
  }

  get runningCount(): number {
    return this.active.size;
  }

  /** Wakes the dispatch loop now. */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /** Runs until stopped, or until idle with `untilIdle`. */
  async run(): Promise<void> {
    const { ctx, log } = this.opts;
    await this.checkInvariants();
    await this.recover();
    const leaseMs = ctx.settings.leaseTtlMs;
    this.timers.push(setInterval(() => void this.heartbeat(leaseMs), Math.max(200, Math.floor(leaseMs / 3))));
    this.timers.push(setInterval(() => void this.reap(), ctx.settings.reaperIntervalMs));
    try {
      this.watcher = watch(dirname(ctx.settings.dbPath), () => this.wake());
      this.watcher.on('error', () => {});
    } catch {
      log.debug('file watching unavailable; relying on the poll');
    }
    try {
      while (!this.stopping) {
        while (this.active.size < this.opts.concurrency && !this.stopping) {
          const job = await ctx.store.claimJob(this.workerId, leaseMs);
          if (!job) break;
          this.start(job);
        }
        if (this.opts.untilIdle && this.active.size === 0 && (await ctx.store.countJobs('queued')) === 0)
          break;
        await this.sleep();
      }
    } finally {
      await this.shutdown();
    }
  }

  /** Stops claiming, ends running agents (TERM, then KILL after the grace) and requeues their jobs. */
  stop(): void {
    this.stopping = true;
    for (const a of this.active.values()) a.controller.abort('shutdown' satisfies AbortReason);
    this.wake();
  }

  private start(job: Job): void {
    const controller = new AbortController();
    const done = this.engine
      .process(job, controller.signal)
      .catch(async (error: unknown) => {
        this.opts.log.error(
          `job ${job.id} (${job.stage}) failed: ${(error as Error).stack ?? String(error)}`,
        );
        await this.opts.ctx.store
          .requeueJob(this.opts.ctx.store.db, job.id, 5_000, `internal error: ${(error as Error).message}`)
          .catch(() => {});
      })
      .finally(() => {
        this.active.delete(job.id);
        this.wake();
      });
    this.active.set(job.id, { job, controller, done });
  }

  private async sleep(): Promise<void> {
    const next = await this.opts.ctx.store.nextRunAfter();
    const poll = this.opts.pollMs ?? 1_000;
    const dueIn = next ? Math.max(0, Date.parse(next) - Date.now()) : poll;
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
      const problem = reaperInvariantViolation(rt.config.timeouts);
      if (problem) throw new OrchError('config_invalid', `project ${project.name}: ${problem}`);
    }
  }

  /**
   * At start: runs left `running` by a process that died are killed (their
   * process group) and finalized as interrupted, and their jobs requeued.
   */
  private async recover(): Promise<void> {
    const { store } = this.opts.ctx;
    for (const run of await store.runningRuns()) {
      const job = run.job_id !== null ? await store.getJob(run.job_id) : undefined;
      if (job && job.status === 'running' && !ownerDead(job.lease_owner)) continue;
      if (!job && !ownerDead(run.worker_id)) continue;
      await this.finalizeOrphan(
        run.id,
        run.pgid,
        run.task_id,
        'interrupted',
        'the orchestrator that ran it died',
      );
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

  private async finalizeOrphan(
    runId: number,
    pgid: number | null,
    taskId: number,
    outcome: string,
    why: string,
  ): Promise<void> {
    const { store } = this.opts.ctx;
    const rt = await this.opts.ctx.projectRuntime((await store.getTask(taskId)).project_id);
    let killed = false;
    if (pgid && processGroupAlive(pgid)) {
      await killProcessGroup(pgid, rt.config.timeouts.agentKillGraceSeconds);
      killed = true;
    }
    await store.tx(async (tx) => {
      await store.finishRun(tx, runId, {
        exitCode: killed ? -9 : null,
        outcome,
        resultText: null,
        error: why,
      });
      await store.appendEvent(tx, taskId, 'run_reaped', { run_id: runId, outcome, killed });
    });
    this.opts.log.warn(
      `run ${runId} finalized as ${outcome}: ${why}${killed ? ' (process group killed)' : ''}`,
    );
  }

  /** Periodic reaper: expired leases, runs older than the reaper limit, runs whose job moved on. */
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
        const mine = [...this.active.values()].find(
          (a) => a.job.run_id === run.id || a.job.id === run.job_id,
        );
        if (ageS > rt.config.timeouts.reaperMaxRunningS) {
          if (mine) mine.controller.abort('lease_lost' satisfies AbortReason);
          await this.finalizeOrphan(
            run.id,
            run.pgid,
            run.task_id,
            'reaped',
            `running for ${Math.round(ageS)}s, over ORCH_REAPER_MAX_RUNNING_S`,
          );
          continue;
        }
        if (mine) continue;
        const job = run.job_id !== null ? await store.getJob(run.job_id) : undefined;
        if (job && job.status === 'running' && job.lease_owner !== this.workerId) continue;
        if (job && job.status === 'running') continue;
        if (ownerDead(run.worker_id) || run.worker_id === this.workerId) {
          await this.finalizeOrphan(run.id, run.pgid, run.task_id, 'interrupted', 'its job was reclaimed');
        }
      }
    } catch (error) {
      this.opts.log.warn(`reaper pass failed: ${(error as Error).message}`);
    }
  }

  private async shutdown(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.watcher?.close();
    this.watcher = null;
    await Promise.allSettled([...this.active.values()].map((a) => a.done));
  }
}
