/**
 * The reaper: what dead processes and runaway runs leave behind. At start it
 * recovers what a dead orch on this host left (its agents' process groups
 * killed, their runs finalized as interrupted, its jobs reported lost); then,
 * every `ORCH_REAPER_INTERVAL_MS`, it reports jobs whose lease expired (their
 * worker stopped heartbeating, on any host), ends runs older than
 * `ORCH_REAPER_MAX_RUNNING_S`, and finalizes runs nobody works any more.
 * Every job it touches goes through the state machine's writer, which counts
 * the cut-off try and escalates a task past `retry.max_interruptions`.
 */
import type { OrchContext } from './context.ts';
import type { AgentRun, Job } from '../store/schema.ts';
import type { RunOutcome } from '../core/run-outcome.ts';
import type { Logger } from './logger.ts';
import type { Transitions } from './transitions.ts';
import type { AbortReason } from './progress.ts';
import { killProcessGroup, processGroupAlive } from './process/run-agent-process.ts';
import { onThisHost, ownerDead } from './worker-id.ts';
import { recoverOrphanedProcesses } from './process-recovery.ts';

export interface ReaperOptions {
  ctx: OrchContext;
  log: Logger;
  /** This process's worker id. */
  workerId: string;
  transitions: Transitions;
  /** The jobs this process works now, so its own runs are stopped through their job. */
  local?: { holds(jobId: number): boolean; abort(jobId: number, reason: AbortReason): void };
  /** Called when jobs went back to the queue. */
  onRequeued?: () => void;
}

/**
 * Why a run still marked running has nobody working it, or null when someone
 * may be: its job is finished, queued again or held by another worker (the
 * run's worker lost it), or the run's worker is known dead (on this host).
 */
function orphaned(run: AgentRun, job: Job | undefined): string | null {
  if (job && !(job.status === 'running' && job.lease_owner === run.worker_id)) return 'its job was reclaimed';
  return ownerDead(run.worker_id) ? 'the orchestrator that ran it died' : null;
}

export class Reaper {
  private readonly opts: ReaperOptions;
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> = Promise.resolve();

  constructor(opts: ReaperOptions) {
    this.opts = opts;
  }

  /** Recovers what a dead orch left, then reaps every `ORCH_REAPER_INTERVAL_MS`. */
  async start(): Promise<void> {
    await this.recover();
    this.timer = setInterval(() => {
      this.pass = this.pass.then(() => this.reap());
    }, this.opts.ctx.settings.reaperIntervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pass;
  }

  /**
   * At start: runs left `running` by a process that died are killed (their
   * process group) and finalized as interrupted, and the jobs it held are
   * reported lost. Only owners on this host can be known dead now; the jobs of
   * a worker on another host come back when their lease expires.
   */
  async recover(): Promise<void> {
    const { store } = this.opts.ctx;
    // Gates, command stages and hooks a dead orch started on this host: ended before anything is redone.
    await recoverOrphanedProcesses(this.opts.ctx, { log: this.opts.log });
    for (const run of await store.runningRuns()) {
      const job = run.job_id !== null ? await store.getJob(run.job_id) : undefined;
      const why = orphaned(run, job);
      if (why) await this.finalizeOrphan(run, 'interrupted', why);
    }
    let lost = 0;
    for (const job of await store.runningJobs()) {
      if (job.lease_owner === this.opts.workerId || !ownerDead(job.lease_owner)) continue;
      if (await this.reportLost(job, 'its orchestrator died')) lost += 1;
    }
    if (lost) this.opts.onRequeued?.();
  }

  /** A job whose holder is gone: the writer counts the cut-off try (or escalates), if nobody renewed the lease meanwhile. */
  private async reportLost(job: Job, why: string): Promise<boolean> {
    const outcome = await this.opts.transitions.onJob(
      job,
      { kind: 'interrupted', cause: 'worker_lost', runId: job.run_id },
      { owner: job.lease_owner, leaseExpiresAt: job.lease_expires_at },
    );
    if (outcome.applied) this.opts.log.warn(`job ${job.id} (${job.stage}) taken back: ${why}`);
    return outcome.applied;
  }

  /**
   * Finalizes a run nobody works any more (or one past the reaper's age limit). Its process group
   * is killed only when the run was started on this host: a pgid from another machine means
   * nothing here. A run a job of this process still works (`stopping` tells it) is recorded
   * first, then stopped and killed: its engine, seeing the agent die first, would record it
   * `killed`, a failure of its own, instead of what the reaper decided. Any other is killed first,
   * so a run recorded finished has no process left.
   */
  private async finalizeOrphan(
    run: AgentRun,
    outcome: RunOutcome,
    why: string,
    stopping?: () => void,
  ): Promise<void> {
    const { store } = this.opts.ctx;
    const rt = await this.opts.ctx.projectRuntime((await store.getTask(run.task_id)).project_id);
    const alive = run.pgid !== null && onThisHost(run.worker_id) && processGroupAlive(run.pgid);
    const kill = async () => {
      if (alive && run.pgid !== null)
        await killProcessGroup(run.pgid, rt.config.timeouts.agentKillGraceSeconds);
    };
    if (!stopping) await kill();
    const finalized = await store.tx(async (tx) => {
      const ok = await store.finishRun(tx, run.id, {
        exitCode: alive ? -9 : null,
        outcome,
        resultText: null,
        error: why,
      });
      if (ok)
        await store.appendEvent(tx, run.task_id, 'run_reaped', { run_id: run.id, outcome, killed: alive });
      return ok;
    });
    if (stopping) {
      stopping();
      await kill();
    }
    if (finalized)
      this.opts.log.warn(
        `run ${run.id} finalized as ${outcome}: ${why}${alive ? ' (process group killed)' : ''}`,
      );
  }

  /**
   * One pass, run by every process sharing the database: expired leases reported lost, runs
   * older than the reaper limit ended, and runs nobody works any more finalized.
   */
  async reap(): Promise<void> {
    const { store } = this.opts.ctx;
    const local = this.opts.local;
    try {
      let lost = 0;
      for (const job of await store.expiredJobs())
        if (await this.reportLost(job, 'its worker stopped heartbeating')) lost += 1;
      if (lost) this.opts.onRequeued?.();
      const runs = await store.runningRuns();
      // A run's age by the database's clock, as it was stamped: a worker whose own clock is off
      // must not reap the others' runs.
      const now = runs.length ? Date.parse(await store.now()) : 0;
      for (const run of runs) {
        const rt = await this.opts.ctx.projectRuntime((await store.getTask(run.task_id)).project_id);
        const ageS = run.started_at ? (now - Date.parse(run.started_at)) / 1000 : 0;
        const mine = run.worker_id === this.opts.workerId && run.job_id !== null && local?.holds(run.job_id);
        if (ageS > rt.config.timeouts.reaperMaxRunningS) {
          // Our own job learns it through its abort; another worker's through its lease.
          await this.finalizeOrphan(
            run,
            'reaped',
            `running for ${Math.round(ageS)}s, over ORCH_REAPER_MAX_RUNNING_S`,
            mine ? () => local!.abort(run.job_id!, 'reaped') : undefined,
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
}
