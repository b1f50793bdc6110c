/**
 * The one writer of task state. Every change of a task's stage or status and
 * every job queued goes through here: the engine's events (a run ended, a
 * gate failed, the landing went through), the scheduler's and the reaper's
 * (a shutdown, a dead worker, an expired lease, orch's own error) and a
 * person's commands (approve, retry, cancel, from the CLI or the API). A person's message
 * (`say`) changes no state but is written here too, under the task's lock.
 *
 * Each call is one transaction: the task's row is locked, its state is read,
 * the pure `decide` (core/pipeline.ts) says what happens, and the decision is
 * applied: the task's stage and status, the job closed or put back, the next
 * job (its role and adapter from the plan), the attempt, the events the
 * outbox sends on. The audit files follow the commit: the ledger after every
 * attempt, the terminal packet after every escalation.
 */
import { randomUUID } from 'node:crypto';
import type { OrchContext, ProjectRuntime } from './context.ts';
import type { Executor } from '../store/store.ts';
import type { AgentRun, Job, Task } from '../store/schema.ts';
import {
  decide,
  stageOf,
  type Decision,
  type JobState,
  type PipelineEvent,
  type TaskState,
  type UsagePause,
} from '../core/pipeline.ts';
import type { AttemptRecord, TaskBudget } from '../core/build-loop.ts';
import { OrchError } from '../errors.ts';
import { dependencyReadiness } from '../core/dependencies.ts';
import { attemptRecord, taskBudget, writeLedger, writeTerminalPacket } from './packet.ts';
import type { ProgressEvent } from './progress.ts';
import type { UsageLimit } from '../agents/usage-limit.ts';
import type { Logger } from './logger.ts';

/**
 * An event about a job, without the job's counts (the writer reads them in its transaction). A
 * usage limit comes as the CLI reported it: the writer works out the pause.
 */
export type JobEvent =
  | (PipelineEvent extends infer E
      ? E extends { job: JobState }
        ? E extends { kind: 'usage_limited' }
          ? never
          : Omit<E, 'job'>
        : never
      : never)
  | { kind: 'usage_limited'; runId: number | null; limit: UsageLimit };

/** The longest an adapter pauses, for a named reset or a backoff: a week's window and a day to spare. */
const MAX_RESET_PAUSE_MS = 8 * 24 * 3_600_000;
/** A pause ends this long after the named reset, so the first run after it is not refused again. */
const RESET_MARGIN_MS = 1_000;

/** Who must still hold the job for its event to apply: this worker, or (recovery) a dead one's exact lease. */
export interface Holder {
  owner: string | null;
  /** For a lease found expired: it must not have been renewed since. */
  leaseExpiresAt?: string | null;
}

export interface TransitionOptions {
  /** The runs an attempt in the decision belongs to. */
  runs?: { dev: number | null; review: number | null };
}

export interface Outcome {
  decision: Decision;
  /** False when nothing was written: the job was no longer held, or the task had moved on. */
  applied: boolean;
  task: Task;
  /** The job queued by the decision, if any. */
  next: Job | null;
}

/** A person's budget raise with `orch task retry`. */
export type BudgetRaise = Partial<Pick<TaskBudget, 'maxAttempts' | 'maxUsd' | 'maxTokens' | 'maxWallS'>>;

export interface TransitionDeps {
  ctx: OrchContext;
  log: Pick<Logger, 'info' | 'warn'>;
  emit?: (event: ProgressEvent) => void;
}

const startOfUtcDay = (now: Date): string => {
  const d = new Date(now);
  d.setUTCHours(0, 0, 0, 0);
  return d.toISOString();
};

export class Transitions {
  private readonly deps: TransitionDeps;
  constructor(deps: TransitionDeps) {
    this.deps = deps;
  }

  private get store() {
    return this.deps.ctx.store;
  }

  /**
   * An event about a job `holder` holds. Nothing is written when the job is no longer held as
   * expected (cancelled, reclaimed by another worker): the decision is then `release`.
   */
  async onJob(job: Job, event: JobEvent, holder: Holder, opts: TransitionOptions = {}): Promise<Outcome> {
    const rt = await this.deps.ctx.projectRuntime(job.project_id);
    const outcome = await this.store.tx(async (tx) => {
      const task = await this.store.lockTask(tx, job.task_id);
      const current = await this.store.getJob(job.id, tx);
      const held =
        current !== undefined &&
        current.status === 'running' &&
        current.lease_owner === holder.owner &&
        (holder.leaseExpiresAt === undefined || current.lease_expires_at === holder.leaseExpiresAt);
      if (!held) return { decision: { kind: 'release' } as Decision, applied: false, task, next: null };
      const jobState: JobState = {
        stage: current.stage,
        step: current.step,
        tries: current.attempts,
        failures: current.failures,
        // Only a shutdown's decision reads it: no query for every other event.
        givenBack:
          event.kind === 'interrupted' && event.cause === 'shutdown'
            ? await this.store.countEvents(tx, task.id, 'try_given_back', { job_id: current.id })
            : 0,
      };
      const state = await this.state(tx, task, rt, current);
      const pipelineEvent =
        event.kind === 'usage_limited'
          ? {
              kind: 'usage_limited' as const,
              runId: event.runId,
              adapter: current.adapter ?? 'agent',
              pause: await this.usagePause(tx, current, event.limit, rt),
            }
          : event;
      const decision = decide(rt.plan, state, { ...pipelineEvent, job: jobState } as PipelineEvent);
      const next = await this.apply(tx, task, current, decision, rt, opts, state);
      return { decision, applied: decision.kind !== 'release', task, next };
    });
    await this.after(outcome, rt, job.stage, job.agent);
    return outcome;
  }

  /**
   * How long a usage limit pauses the job's adapter and credential: until the reset its CLI named
   * (and a second), or, with none named, `retry.usage_limit_backoff_s` doubled per limit in a row
   * (a limit within the longest backoff of the last pause's end is one in a row).
   */
  private async usagePause(
    tx: Executor,
    job: Job,
    limit: UsageLimit,
    rt: ProjectRuntime,
  ): Promise<UsagePause> {
    const credential = job.credential ?? '';
    const now = await this.store.now(tx);
    const nowMs = Date.parse(now);
    const policy = rt.config.usageLimit;
    const last = job.adapter ? await this.store.pauses.get(job.adapter, credential, tx) : undefined;
    const live = last !== undefined && last.until_at > now;
    const inARow = last !== undefined && nowMs - Date.parse(last.until_at) < policy.backoffMaxMs;
    const strikes = live ? last.strikes : inARow ? last.strikes + 1 : 1;
    // A reset already past names nothing usable: the backoff applies (never a loop of 1 s pauses).
    const reset = limit.resetAt !== null && limit.resetAt > Date.now() ? limit.resetAt : null;
    const liveUntil = live ? Date.parse(last.until_at) : 0;
    // A job held by a pause in force (claimed before it began) waits for that pause's end, no later.
    if (live && reset !== null && reset <= liveUntil)
      return {
        credential,
        ms: liveUntil - nowMs,
        resumesAt: last.until_at,
        now,
        strikes,
        window: last.window,
        message: last.message ?? limit.message,
      };
    const ms =
      reset !== null
        ? Math.min(MAX_RESET_PAUSE_MS, reset - Date.now() + RESET_MARGIN_MS)
        : Math.min(
            MAX_RESET_PAUSE_MS,
            policy.backoffMaxMs,
            policy.backoffMs * 2 ** Math.min(30, strikes - 1),
          );
    return {
      credential,
      ms,
      resumesAt: new Date(Math.max(nowMs + ms, liveUntil)).toISOString(),
      now,
      strikes,
      window: limit.window,
      message: limit.message,
    };
  }

  /** `orch task approve`: the waiting stage is approved and queued again. */
  async approve(key: string, by: string): Promise<Task> {
    return this.command(key, { kind: 'approve', by }, async (tx, task, decision) => {
      if (decision.kind !== 'resume') return;
      const now = new Date().toISOString();
      await this.store.recordGate(tx, {
        task_id: task.id,
        stage: task.stage,
        name: 'check_human_approval',
        passed: 1,
        output_tail: `approved by ${by}`,
        started_at: now,
        finished_at: now,
      });
      await this.store.appendEvent(tx, task.id, 'approved', { stage: task.stage, by });
    });
  }

  /** `orch task retry`: an escalated task resumes, maybe with a raised budget. */
  async retry(key: string, raise: BudgetRaise): Promise<Task> {
    return this.command(key, { kind: 'retry' }, async (tx, task, decision) => {
      if (decision.kind !== 'resume') return;
      const budget = {
        ...(task.budget_json ? (JSON.parse(task.budget_json) as Record<string, number>) : {}),
        ...Object.fromEntries(Object.entries(raise).filter(([, v]) => v !== undefined)),
      };
      await this.store.updateTask(tx, task.id, {
        terminal_reason: null,
        finished_at: null,
        budget_json: JSON.stringify(budget),
      });
      await this.store.appendEvent(tx, task.id, 'task_retried', { stage: decision.job.stage, budget });
    });
  }

  /** `orch task cancel`: final. Whatever is in flight finishes later and is ignored. */
  async cancel(key: string): Promise<Task> {
    return this.command(key, { kind: 'cancel' }, async () => {});
  }

  /**
   * `orch task say`: a person's message, recorded on the task's timeline for its next agent run.
   * Not a change of stage or status, so `decide` is not asked; the task's row is locked so a
   * cancel or the last step to done cannot slip in between the check and the write. With `now`,
   * the task's running agent run (if any) is asked to stop: its worker's heartbeat reads the
   * request on the job and stops it, and the writer runs the stage again at once (`decide`'s
   * answer to the `interrupted` event with cause `human_message`).
   */
  async say(
    key: string,
    text: string,
    by: string,
    now = false,
  ): Promise<{ task: Task; id: number; created_at: string; stopping: AgentRun | null }> {
    const found = await this.store.getTaskByKey(key);
    const rt = await this.deps.ctx.projectRuntime(found.project_id);
    return this.store.tx(async (tx) => {
      const task = await this.store.lockTask(tx, found.id);
      if (task.stage === 'done' || task.stage === 'cancelled' || task.status === 'cancelled')
        throw new OrchError(
          'invalid_state',
          `${task.key} is already ${task.stage}: no agent will run for it again to read a message`,
        );
      // Development candidates run one after another in worktrees of their own: a stop would land
      // on whichever candidate runs at the next heartbeat, so the message waits for the next run.
      const candidates = rt.pipeline.stages.find((s) => s.name === task.stage)?.candidates ?? 1;
      if (candidates > 1) now = false;
      const event = await this.store.insertEvent(tx, task.id, 'human_message', {
        text,
        by,
        ...(now ? { now: true } : {}),
      });
      const stopping = now ? await this.store.requestInterrupt(tx, task.id, event.id) : null;
      return { task, ...event, stopping };
    });
  }

  /**
   * A task it depends on settled, or one of its edges went: a blocked task resumes once every
   * blocker is done, or stays blocked saying why now. Nothing happens to a task not blocked.
   */
  async blockersChanged(key: string): Promise<void> {
    await this.command(key, { kind: 'blockers_changed' }, async () => {}).catch((error: unknown) => {
      if (!(error instanceof OrchError && error.code === 'invalid_state')) throw error;
    });
  }

  /** A person's command: decided and applied in one transaction, refused with the reason. */
  private async command(
    key: string,
    event: Extract<PipelineEvent, { kind: 'approve' | 'retry' | 'cancel' | 'blockers_changed' }>,
    also: (tx: Executor, task: Task, decision: Decision) => Promise<void>,
  ): Promise<Task> {
    const found = await this.store.getTaskByKey(key);
    const rt = await this.deps.ctx.projectRuntime(found.project_id);
    const outcome = await this.store.tx(async (tx) => {
      const task = await this.store.lockTask(tx, found.id);
      const state = await this.state(tx, task, rt);
      const decision = decide(rt.plan, state, event);
      if (decision.kind === 'refuse') throw new OrchError('invalid_state', decision.message);
      await also(tx, task, decision);
      const next = await this.apply(tx, task, null, decision, rt, {}, state);
      return { decision, applied: true, task, next };
    });
    await this.after(outcome, rt, outcome.task.stage, 'orch');
    return this.store.getTask(found.id);
  }

  /**
   * What the decisions see of a task, read in the transaction that will change it. For an event
   * about `held`, the job this worker holds (running, so the task's one live job), what depends
   * on it is known without a query: the live job is that job, and an approval is read only where
   * a decision looks at it (a job's stage that waits for one; every command).
   */
  private async state(tx: Executor, task: Task, rt: ProjectRuntime, held?: Job): Promise<TaskState> {
    const budget = taskBudget(rt, task);
    const stage = stageOf(rt.plan, task.stage);
    const approvalRead = held === undefined || stage?.approval === true || stage?.kind === 'human';
    const { spend: spent, attempts, blockers } = await this.store.writerReads(tx, task.id);
    const now = new Date();
    return {
      key: task.key,
      stage: task.stage,
      status: task.status,
      attempts: attempts.map(attemptRecord),
      budget,
      spend: {
        tokens: spent.tokens,
        usd: spent.usd,
        wallS: task.started_at ? (now.getTime() - Date.parse(task.started_at)) / 1000 : 0,
        projectUsdToday:
          rt.config.projectUsdPerDay === null
            ? 0
            : await this.store.projectSpendSince(rt.project.id, startOfUtcDay(now), tx),
      },
      loops: JSON.parse(task.loops || '{}') as Record<string, number>,
      approved: approvalRead ? await this.store.isApproved(tx, task.id, task.stage) : false,
      terminalReason: task.terminal_reason,
      ...(await this.liveJobState(tx, task, held)),
      readiness: dependencyReadiness(blockers),
    };
  }

  /**
   * Whether the task has a live job, and whether that job's landing is moving the base now. A task
   * has at most one live job (a unique index), so a running job of the task, when given, is it.
   */
  private async liveJobState(
    tx: Executor,
    task: Task,
    held?: Job,
  ): Promise<{ hasLiveJob: boolean; landing: boolean }> {
    const live = held ?? (await this.store.liveJobOf(task.id, tx));
    if (live?.status !== 'running' || live.step !== 'land')
      return { hasLiveJob: live !== undefined, landing: false };
    const began = await this.store.lastEventOf(task.id, 'landing', tx);
    return {
      hasLiveJob: true,
      landing: began?.payload.job_id === live.id && began.payload.try === live.attempts,
    };
  }

  /**
   * A landing's last point of no return: under the task's lock, the job is still this worker's
   * (no cancel came), and a `landing` event says the base is moving now, so a cancel from here
   * on is refused instead of recorded while the work merges anyway. False calls the landing off.
   */
  async beginLanding(job: Job, owner: string): Promise<boolean> {
    return this.store.tx(async (tx) => {
      const task = await this.store.lockTask(tx, job.task_id);
      const current = await this.store.getJob(job.id, tx);
      if (current?.status !== 'running' || current.lease_owner !== owner || task.status === 'cancelled')
        return false;
      await this.store.appendEvent(tx, task.id, 'landing', {
        job_id: job.id,
        try: current.attempts,
        stage: job.stage,
      });
      return true;
    });
  }

  /** Applies a decision inside the transaction. Returns the job it queued, if any. */
  private async apply(
    tx: Executor,
    task: Task,
    job: Job | null,
    d: Decision,
    rt: ProjectRuntime,
    opts: TransitionOptions,
    state: TaskState,
  ): Promise<Job | null> {
    const { store } = this;
    const now = new Date().toISOString();
    const record = async (attempt: AttemptRecord | undefined) => {
      if (attempt) await this.recordAttempt(tx, task, attempt, opts);
      if ('amend' in d && d.amend)
        await store.amendAttempt(tx, task.id, d.amend.n, {
          verdict: d.amend.verdict,
          feedback: d.amend.feedback,
          reason: d.amend.reason,
        });
      // The review's comments are answered once the fix is pushed to the same pull request.
      if ('review' in d && d.review)
        await store.appendEvent(tx, task.id, 'review_changes_requested', {
          url: d.review.url,
          handled: d.review.handled,
        });
    };
    const enqueue = (spec: Extract<Decision, { job: unknown }>['job']) =>
      store.enqueueJob(tx, { task, spec, repo: rt.project.name });
    switch (d.kind) {
      case 'release':
        return null;
      case 'drop':
        if (job) await store.finishJob(tx, job.id, 'cancelled', `stale: ${d.detail}`);
        return null;
      case 'work': {
        const inLoop = task.stage === 'development' || task.stage === 'review';
        // The attempts as the decision saw them, read in this transaction.
        const attempts = inLoop ? state.attempts.length : 0;
        await store.updateTask(tx, task.id, {
          status: 'running',
          status_detail: job?.step === 'land' ? 'landing' : null,
          ...(inLoop ? { attempt: attempts + 1 } : {}),
          ...(task.started_at ? {} : { started_at: now }),
          ...(task.stage === 'development' && !task.loop_run_id ? { loop_run_id: randomUUID() } : {}),
        });
        return null;
      }
      case 'continue':
        await record(d.attempt);
        return null;
      case 'wait': {
        // A usage limit pauses the adapter's credential first, so the job requeued below waits for it.
        if (d.pause) {
          const { until, fresh } = await store.pauses.pause(tx, {
            adapter: d.pause.adapter,
            credential: d.pause.credential,
            ms: d.pause.ms,
            strikes: d.pause.strikes,
            window: d.pause.window,
            message: d.pause.message,
            taskKey: task.key,
            heldDetail: `held: ${d.detail} (hit by ${task.key})`,
          });
          // Announced once per pause (the notification channels route it), not once per task it holds.
          if (fresh)
            await store.appendEvent(tx, task.id, 'usage_limited', {
              adapter: d.pause.adapter,
              credential: d.pause.credential || null,
              until,
              window: d.pause.window,
              message: d.pause.message,
              run_id: job?.run_id ?? null,
            });
        }
        if (job) {
          if (d.requeueInMs === null) await store.finishJob(tx, job.id, 'done', d.detail);
          else await store.requeueJob(tx, job.id, d.requeueInMs, d.detail, 'none');
        }
        await store.updateTask(tx, task.id, { status: d.status, status_detail: d.detail });
        const asks = d.requeueInMs === null && d.status === 'waiting';
        await store.appendEvent(tx, task.id, asks ? 'approval_requested' : d.status, {
          stage: task.stage,
          detail: d.detail,
        });
        return null;
      }
      case 'retry':
        if (job) await store.requeueJob(tx, job.id, d.delayMs, d.detail, d.count);
        await store.updateTask(tx, task.id, {
          status: 'queued',
          status_detail: d.count === 'none' ? null : d.detail,
          ...(d.feedback !== undefined ? { feedback: d.feedback } : {}),
        });
        // A try given back (a shutdown) is not counted, but remembered: there is a cap on those too.
        // One stopped for a person's message is not a shutdown's: each took a message of theirs.
        if (d.count === 'none' && job)
          await store.appendEvent(tx, task.id, d.redirected ? 'run_redirected' : 'try_given_back', {
            job_id: job.id,
            stage: task.stage,
            ...(d.redirected ? { run_id: job.run_id } : {}),
          });
        if (d.count !== 'none')
          await store.appendEvent(tx, task.id, d.count === 'failure' ? 'run_failed' : 'job_requeued', {
            run_id: job?.run_id ?? null,
            stage: task.stage,
            retry_in_ms: d.delayMs,
            detail: d.detail,
          });
        return null;
      case 'advance': {
        await record(d.attempt);
        const loops = d.loop
          ? (() => {
              const taken = JSON.parse(task.loops || '{}') as Record<string, number>;
              taken[d.loop] = (taken[d.loop] ?? 0) + 1;
              return JSON.stringify(taken);
            })()
          : undefined;
        const moved = await store.advanceStage(tx, task, d.to, {
          status: 'queued',
          status_detail: null,
          ...(d.feedback !== null ? { feedback: d.feedback } : {}),
          ...(loops !== undefined ? { loops } : {}),
        });
        if (!moved) throw new Error(`${task.key} moved while locked: ${task.stage} → ${d.to} lost its race`);
        if (job) await store.finishJob(tx, job.id, 'done');
        return enqueue(d.job);
      }
      case 'land':
        await record(d.attempt);
        if (job) await store.finishJob(tx, job.id, 'done');
        await store.updateTask(tx, task.id, { status: 'queued', status_detail: 'landing' });
        return enqueue(d.job);
      case 'done':
        if (
          !(await store.advanceStage(tx, task, 'done', {
            status: 'done',
            status_detail: null,
            finished_at: now,
          }))
        )
          throw new Error(`${task.key} moved while locked: it could not be marked done`);
        if (job) await store.finishJob(tx, job.id, 'done');
        return null;
      case 'escalate':
        await record(d.attempt);
        if (job)
          await store.finishJob(tx, job.id, d.reason === 'agent_failure' ? 'failed' : 'done', d.detail);
        await store.updateTask(tx, task.id, {
          status: 'escalated',
          terminal_reason: d.reason,
          status_detail: d.detail,
          finished_at: now,
          ...(d.feedback !== undefined ? { feedback: d.feedback } : {}),
        });
        await store.appendEvent(tx, task.id, 'escalated', { reason: d.reason, detail: d.detail });
        return null;
      case 'resume': {
        const changes = {
          status: 'queued',
          status_detail: null,
          terminal_reason: null,
          finished_at: null,
        } as const;
        if (d.job.stage !== task.stage) {
          if (!(await store.advanceStage(tx, task, d.job.stage, changes)))
            throw new Error(`${task.key} moved while locked: it could not resume at ${d.job.stage}`);
        } else await store.updateTask(tx, task.id, changes);
        return enqueue(d.job);
      }
      case 'cancel':
        await store.advanceStage(tx, task, 'cancelled', {
          status: 'cancelled',
          terminal_reason: 'cancelled',
          status_detail: null,
          finished_at: now,
        });
        await store.cancelJobsOfTask(tx, task.id, 'task cancelled');
        return null;
      case 'refuse':
        return null;
    }
  }

  /** Looks again at every blocked task that depends on this one. */
  async settleDependents(taskId: number): Promise<void> {
    for (const dependent of await this.store.dependencies.blocks(taskId))
      if (dependent.status === 'blocked') await this.blockersChanged(dependent.key);
  }

  private async recordAttempt(
    tx: Executor,
    task: Task,
    a: AttemptRecord,
    opts: TransitionOptions,
  ): Promise<void> {
    await this.store.recordAttempt(tx, {
      task_id: task.id,
      n: a.n,
      diff_hash: a.diffHash,
      verdict: a.verdict,
      feedback: a.feedback,
      input_tokens: a.inputTokens,
      output_tokens: a.outputTokens,
      cost_usd: a.costUsd,
      duration_ms: a.durationMs,
      reason: a.reason,
      dev_run_id: opts.runs?.dev ?? null,
      review_run_id: opts.runs?.review ?? null,
    });
  }

  /** After the commit: the audit files and the progress lines. A failure here never undoes the decision. */
  private async after(o: Outcome, rt: ProjectRuntime, from: string, role: string): Promise<void> {
    if (!o.applied) return;
    // A task that settled may let the tasks that depend on it go (or tells them why not).
    if (['done', 'escalate', 'cancel'].includes(o.decision.kind)) await this.settleDependents(o.task.id);
    const { emit } = this.deps;
    const d = o.decision;
    const key = o.task.key;
    // The ledger catches up with the database after every attempt, and on every move of a task in
    // the loop: a crash between an attempt's commit and its append is mended by the next step.
    const wroteAttempt =
      ('attempt' in d && d.attempt !== undefined) || ('amend' in d && d.amend !== undefined);
    const inLoop = o.task.attempt > 0 && ['continue', 'advance', 'land'].includes(d.kind);
    try {
      if (d.kind === 'escalate') {
        const packetPath = await writeTerminalPacket(this.deps.ctx, await this.store.getTask(o.task.id), rt);
        emit?.({ kind: 'escalated', key, reason: d.reason, detail: d.detail, packetPath });
        return;
      }
      if (wroteAttempt || inLoop) await writeLedger(this.deps.ctx, o.task, rt);
    } catch (error) {
      this.deps.log.warn(`${key}: could not write its audit files: ${(error as Error).message}`);
    }
    switch (d.kind) {
      case 'advance':
        emit?.({ kind: 'stage', key, from, to: d.to });
        break;
      case 'done':
        emit?.({ kind: 'stage', key, from, to: 'done' });
        emit?.({ kind: 'done', key });
        break;
      case 'wait':
        emit?.({ kind: 'waiting', key, stage: o.task.stage, detail: d.detail });
        break;
      case 'retry':
        if (d.count === 'failure') emit?.({ kind: 'retry', key, role, delayMs: d.delayMs, error: d.detail });
        break;
      default:
        break;
    }
  }
}
