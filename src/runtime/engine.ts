/**
 * The engine: works one claimed job. It loads state, runs the stage's work
 * (an agent, a gate, a merge), asks the pure core what that means, and
 * applies the decision in one transaction.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OrchContext, ProjectRuntime } from './context.ts';
import { paths } from './context.ts';
import type { Executor } from '../store/store.ts';
import type { AgentRun, Attempt, Job, Task } from '../store/schema.ts';
import { forwardStage, isStage, STAGE_ROLE, type Role, type Stage } from '../core/stages.ts';
import { backoffMs } from '../core/backoff.ts';
import {
  budgetExhausted,
  judgeAttempt,
  type AttemptRecord,
  type TaskBudget,
  type TerminalReason,
  type Spend,
} from '../core/build-loop.ts';
import { parseVerdict, verdictFeedback } from '../core/verdict.ts';
import { renderTerminalPacket } from '../core/terminal-packet.ts';
import { launchRun, type LaunchLimits, type LaunchResult } from './launcher.ts';
import { commitAll, diffHash, diffStat, ensureWorktree, landBranch, taskBranch } from './git.ts';
import { ledgerHeader, syncLedger, LEDGER_FILE } from './ledger.ts';
import type { Logger } from './logger.ts';
import type { AgentEvent } from '../agents/events.ts';
import { runGate } from './gates.ts';

/** What the engine reports as it works; `orch run` prints these, the API streams them. */
export type ProgressEvent =
  | { kind: 'stage'; key: string; from: string; to: string }
  | { kind: 'run_started'; key: string; role: string; stage: string; runId: number; attempt: number | null }
  | {
      kind: 'run_finished';
      key: string;
      role: string;
      stage: string;
      runId: number;
      outcome: string;
      durationMs: number;
      tokens: number;
      costUsd: number | null;
    }
  | { kind: 'retry'; key: string; role: string; delayMs: number; error: string }
  | { kind: 'verdict'; key: string; attempt: number; verdict: string; diffHash: string }
  | { kind: 'gate'; key: string; name: string; passed: boolean }
  | { kind: 'escalated'; key: string; reason: string; detail: string; packetPath: string }
  | { kind: 'done'; key: string };

/** Why a running job was asked to stop. */
export type AbortReason = 'shutdown' | 'cancel' | 'lease_lost';

export interface EngineDeps {
  ctx: OrchContext;
  log: Logger;
  workerId: string;
  limits?: LaunchLimits;
  emit: (event: ProgressEvent) => void;
  onAgentEvent?: (runId: number, event: AgentEvent) => void;
  onAgentLine?: (runId: number, line: string) => void;
}

const LAST_AGENT_STAGE: Stage = 'deploy';

/** The budget of a task: the project's, raised by `orch task retry` overrides. */
export function taskBudget(rt: ProjectRuntime, task: Task): TaskBudget {
  const overrides = task.budget_json ? (JSON.parse(task.budget_json) as Partial<TaskBudget>) : {};
  return { ...rt.config.budget, ...overrides };
}

const toRecord = (a: Attempt): AttemptRecord => ({
  n: a.n,
  diffHash: a.diff_hash,
  verdict: a.verdict === 'approved' ? 'approved' : 'rejected',
  feedback: a.feedback,
  inputTokens: a.input_tokens,
  outputTokens: a.output_tokens,
  costUsd: a.cost_usd,
  durationMs: a.duration_ms,
  reason: a.reason,
});

const durationOf = (r: AgentRun): number =>
  r.started_at && r.finished_at ? Date.parse(r.finished_at) - Date.parse(r.started_at) : 0;

export class Engine {
  private readonly deps: EngineDeps;
  constructor(deps: EngineDeps) {
    this.deps = deps;
  }

  private get store() {
    return this.deps.ctx.store;
  }

  /** Works one claimed job to its end. Never throws for expected outcomes. */
  async process(job: Job, signal: AbortSignal): Promise<void> {
    const task = await this.store.getTask(job.task_id);
    if (task.stage !== job.stage || ['cancelled', 'escalated', 'done'].includes(task.status)) {
      await this.store.finishJob(
        this.store.db,
        job.id,
        'cancelled',
        `stale: task is ${task.stage}/${task.status}`,
      );
      return;
    }
    const rt = await this.deps.ctx.projectRuntime(task.project_id);
    if (job.stage === 'created') return this.advance(task, job, rt, 'analysis');
    if (!isStage(job.stage) || !STAGE_ROLE[job.stage]) {
      await this.store.finishJob(this.store.db, job.id, 'failed', `no work defined for stage ${job.stage}`);
      return;
    }
    await this.runAgentStage(task, job, rt, STAGE_ROLE[job.stage]!, signal);
  }

  // ------------------------------------------------------------ agent stages

  private async runAgentStage(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    role: Role,
    signal: AbortSignal,
  ): Promise<void> {
    const { ctx } = this.deps;
    const worktree = paths.worktree(ctx, rt.project, task);
    await ensureWorktree(rt.project.root_path, worktree, taskBranch(task.key), rt.project.base_branch);

    const attempts = await this.store.attemptsOfTask(task.id);
    const inLoop = job.stage === 'development' || job.stage === 'review';
    const attempt = inLoop ? attempts.length + 1 : null;
    // Stages outside the loop see the latest attempt number (1 before any).
    const contractAttempt = attempt ?? Math.max(1, attempts.length);

    if (job.stage === 'development') {
      const budget = taskBudget(rt, task);
      if (attempts.length >= budget.maxAttempts) {
        return this.escalate(
          task,
          job,
          rt,
          'max_attempts',
          `${attempts.length} of ${budget.maxAttempts} attempts used`,
        );
      }
      const exhausted = budgetExhausted(budget, await this.spend(task, rt), rt.config.projectUsdPerDay);
      if (exhausted) return this.escalate(task, job, rt, 'budget_exhausted', exhausted);
    }
    await this.store.updateTask(this.store.db, task.id, {
      status: 'running',
      status_detail: null,
      ...(attempt !== null ? { attempt } : {}),
      ...(task.started_at ? {} : { started_at: new Date().toISOString() }),
      ...(job.stage === 'development' && !task.loop_run_id ? { loop_run_id: randomUUID() } : {}),
    });
    const fresh = await this.store.getTask(task.id);

    const res = await launchRun({
      ctx,
      rt,
      task: fresh,
      job,
      role,
      attempt,
      contractAttempt,
      worktree,
      workerId: this.deps.workerId,
      signal,
      log: this.deps.log,
      ...(this.deps.limits ? { limits: this.deps.limits } : {}),
      onEvent: (runId, event) => {
        if (event.type === 'started')
          this.deps.emit({ kind: 'run_started', key: task.key, role, stage: job.stage, runId, attempt });
        this.deps.onAgentEvent?.(runId, event);
      },
      ...(this.deps.onAgentLine ? { onLine: this.deps.onAgentLine } : {}),
    });
    this.deps.emit({
      kind: 'run_finished',
      key: task.key,
      role,
      stage: job.stage,
      runId: res.runId,
      outcome: res.outcome,
      durationMs: res.durationMs,
      tokens: (res.usage?.inputTokens ?? 0) + (res.usage?.outputTokens ?? 0),
      costUsd: res.usage?.costUsd ?? null,
    });

    if (res.outcome !== 'ok') return this.onRunFailed(fresh, job, rt, role, res, signal);

    await commitAll(worktree, `${task.key}: ${job.stage} (${role}, run ${res.runId})\n\n${task.title}`);
    switch (job.stage) {
      case 'development':
        return this.afterDevelopment(fresh, job, rt, res, worktree);
      case 'review':
        return this.afterReview(fresh, job, rt, res, worktree);
      case 'architecture':
        return this.afterArchitecture(fresh, job, rt, res);
      case 'testing':
        return this.afterTesting(fresh, job, rt, res, worktree);
      case LAST_AGENT_STAGE:
        return this.land(fresh, job, rt, res, worktree);
      default:
        return this.advance(fresh, job, rt, forwardStage(job.stage as Stage)!, res);
    }
  }

  /** Anti-salvage: a run that did not end cleanly never advances; it is retried with backoff, then escalated. */
  private async onRunFailed(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    role: Role,
    res: LaunchResult,
    signal: AbortSignal,
  ): Promise<void> {
    const reason = signal.aborted ? (signal.reason as AbortReason) : null;
    if (reason === 'shutdown' || reason === 'lease_lost') {
      await this.store.tx(async (tx) => {
        await this.store.finishRun(tx, res.runId, { ...this.finish(res), outcome: 'interrupted' });
        if (reason === 'shutdown') {
          // An interrupted try is not the agent's failure: it does not count against the retry cap.
          await tx
            .updateTable('jobs')
            .set((eb) => ({ attempts: eb('attempts', '-', 1) }))
            .where('id', '=', job.id)
            .execute();
          await this.store.requeueJob(tx, job.id, 0, 'interrupted by shutdown');
          await this.store.updateTask(tx, task.id, { status: 'queued' });
        }
      });
      return;
    }
    if (reason === 'cancel') {
      await this.store.tx(async (tx) => {
        await this.store.finishRun(tx, res.runId, { ...this.finish(res), outcome: 'cancelled' });
        await this.store.finishJob(tx, job.id, 'cancelled', 'task cancelled');
      });
      return;
    }
    const retryCap = rt.config.retry.maxRetries;
    if (job.attempts <= retryCap) {
      const delayMs = backoffMs(rt.config.retry, job.attempts);
      await this.store.tx(async (tx) => {
        await this.store.finishRun(tx, res.runId, this.finish(res));
        await this.store.requeueJob(tx, job.id, delayMs, res.error);
        await this.store.updateTask(tx, task.id, {
          status: 'queued',
          status_detail: `retrying ${role} in ${delayMs} ms: ${res.error}`,
        });
        await this.store.appendEvent(tx, task.id, 'run_failed', {
          run_id: res.runId,
          outcome: res.outcome,
          retry_in_ms: delayMs,
        });
      });
      this.deps.emit({ kind: 'retry', key: task.key, role, delayMs, error: res.error ?? res.outcome });
      return;
    }
    await this.escalate(
      task,
      job,
      rt,
      'agent_failure',
      `${role} failed ${job.attempts} times; last: ${res.error}`,
      res,
    );
  }

  private finish(res: LaunchResult) {
    return { exitCode: res.exitCode, outcome: res.outcome, resultText: res.resultText, error: res.error };
  }

  private async afterDevelopment(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    res: LaunchResult,
    worktree: string,
  ): Promise<void> {
    const hash = await diffHash(worktree, rt.project.base_branch);
    await this.store.db
      .updateTable('agent_runs')
      .set({ diff_hash: hash })
      .where('id', '=', res.runId)
      .execute();
    const exhausted = budgetExhausted(
      taskBudget(rt, task),
      await this.spend(task, rt),
      rt.config.projectUsdPerDay,
    );
    if (exhausted) return this.escalate(task, job, rt, 'budget_exhausted', exhausted, res);
    return this.advance(task, job, rt, 'review', res);
  }

  private async afterReview(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    res: LaunchResult,
    worktree: string,
  ): Promise<void> {
    const runs = await this.store.runsOfTask(task.id);
    const devRun = runs.filter((r) => r.agent === 'developer' && r.outcome === 'ok' && r.diff_hash).at(-1);
    const reviewRun = runs.find((r) => r.id === res.runId);
    const earlier = (await this.store.attemptsOfTask(task.id)).map(toRecord);
    const n = earlier.length + 1;
    const verdict = parseVerdict(res.resultText);
    const hash = devRun?.diff_hash ?? (await diffHash(worktree, rt.project.base_branch));
    const feedback = verdictFeedback(verdict);
    const pair = [devRun, reviewRun].filter((r): r is AgentRun => r !== undefined);
    const costs = pair.map((r) => r.cost_usd);
    const current: AttemptRecord = {
      n,
      diffHash: hash,
      verdict: verdict.verdict,
      feedback,
      inputTokens: pair.reduce((s, r) => s + (r.input_tokens ?? 0), 0),
      outputTokens: pair.reduce((s, r) => s + (r.output_tokens ?? 0), 0),
      costUsd: costs.every((c) => c === null) ? null : costs.reduce<number>((s, c) => s + (c ?? 0), 0),
      durationMs: pair.reduce((s, r) => s + durationOf(r), 0) + res.durationMs,
      reason: verdict.parseError,
    };
    const decision = judgeAttempt(
      earlier,
      current,
      taskBudget(rt, task),
      await this.spend(task, rt),
      rt.config.projectUsdPerDay,
    );
    const record = async (tx: Executor) => {
      await this.store.recordAttempt(tx, {
        task_id: task.id,
        n,
        diff_hash: current.diffHash,
        verdict: current.verdict,
        feedback: current.feedback,
        input_tokens: current.inputTokens,
        output_tokens: current.outputTokens,
        cost_usd: current.costUsd,
        duration_ms: current.durationMs,
        reason: decision.kind === 'stop' ? decision.reason : current.reason,
        dev_run_id: devRun?.id ?? null,
        review_run_id: res.runId,
      });
    };
    this.deps.emit({ kind: 'verdict', key: task.key, attempt: n, verdict: current.verdict, diffHash: hash });
    if (decision.kind === 'approved') {
      await this.advance(task, job, rt, 'testing', res, { feedback: null }, record);
    } else if (decision.kind === 'rework') {
      await this.advance(task, job, rt, 'development', res, { feedback: decision.feedback }, record);
    } else {
      await this.escalate(task, job, rt, decision.reason, decision.detail, res, record);
    }
    await this.writeLedger(task, rt);
  }

  /** A design is judged by the architecture stage's own gate, never by the build reviewer. */
  private async afterArchitecture(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    res: LaunchResult,
  ): Promise<void> {
    const worktree = paths.worktree(this.deps.ctx, rt.project, task);
    const gate = await runGate(
      this.deps.ctx,
      task,
      job.stage,
      { name: 'check_artifacts_present', files: [`docs/tasks/${task.key}/adr.md`] },
      worktree,
    );
    this.deps.emit({ kind: 'gate', key: task.key, name: gate.name, passed: gate.passed });
    if (!gate.passed)
      return this.escalate(
        task,
        job,
        rt,
        'design_rejected',
        `the design has no decision record: ${gate.output}`,
        res,
      );
    return this.advance(task, job, rt, 'development', res);
  }

  private async afterTesting(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    res: LaunchResult,
    worktree: string,
  ): Promise<void> {
    if (rt.config.testCommand) {
      const gate = await runGate(
        this.deps.ctx,
        task,
        job.stage,
        { name: 'check_ci_green', command: rt.config.testCommand },
        worktree,
      );
      this.deps.emit({ kind: 'gate', key: task.key, name: gate.name, passed: gate.passed });
      if (!gate.passed) {
        return this.advance(task, job, rt, 'development', res, {
          feedback: `The tests fail (\`${rt.config.testCommand.join(' ')}\`). Fix them. Output:\n\n${gate.output}`,
        });
      }
    }
    return this.advance(task, job, rt, 'deploy-staging', res);
  }

  /** The steward: the branch lands on the base branch, then the task is done. */
  private async land(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    res: LaunchResult,
    worktree: string,
  ): Promise<void> {
    const merged = await landBranch(
      rt.project.root_path,
      worktree,
      taskBranch(task.key),
      rt.project.base_branch,
    );
    if (!merged.ok) {
      const files = merged.conflicts.length
        ? `The merge of ${rt.project.base_branch} is in progress in your worktree: resolve the conflict markers in ${merged.conflicts.join(', ')}.`
        : merged.message;
      return this.advance(task, job, rt, 'development', res, {
        feedback: `The branch does not merge onto ${rt.project.base_branch}. ${files} Rework the change onto the new base.`,
      });
    }
    return this.advance(task, job, rt, 'done', res);
  }

  // ------------------------------------------------------------- decisions

  /**
   * Moves the task from the job's stage to `to` (compare-and-set), finishes the
   * run and the job, and queues the next stage's job: one transaction.
   */
  private async advance(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    to: Stage,
    res?: LaunchResult,
    changes: { feedback?: string | null } = {},
    extra?: (tx: Executor) => Promise<void>,
  ): Promise<void> {
    const done = to === 'done';
    const moved = await this.store.tx(async (tx) => {
      if (res) await this.store.finishRun(tx, res.runId, this.finish(res));
      await extra?.(tx);
      const current = await this.store.getTask(task.id, tx);
      const ok = await this.store.advanceStage(tx, current, to, {
        status: done ? 'done' : 'queued',
        status_detail: null,
        ...(done ? { finished_at: new Date().toISOString() } : {}),
        ...changes,
      });
      if (!ok || current.stage !== job.stage) {
        await this.store.finishJob(tx, job.id, 'cancelled', 'stage already advanced');
        return false;
      }
      await this.store.finishJob(tx, job.id, 'done');
      if (!done)
        await this.store.enqueueJob(tx, {
          task,
          stage: to,
          agent: STAGE_ROLE[to] ?? 'orch',
          repo: rt.project.name,
        });
      return true;
    });
    if (!moved) return;
    this.deps.emit({ kind: 'stage', key: task.key, from: job.stage, to });
    if (done) this.deps.emit({ kind: 'done', key: task.key });
  }

  /** Stops the task for a human: status escalated with its reason, and a terminal packet. */
  private async escalate(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    reason: TerminalReason,
    detail: string,
    res?: LaunchResult,
    extra?: (tx: Executor) => Promise<void>,
  ): Promise<void> {
    await this.store.tx(async (tx) => {
      if (res) await this.store.finishRun(tx, res.runId, this.finish(res));
      await extra?.(tx);
      await this.store.finishJob(tx, job.id, reason === 'agent_failure' ? 'failed' : 'done', detail);
      await this.store.updateTask(tx, task.id, {
        status: 'escalated',
        terminal_reason: reason,
        status_detail: detail,
        finished_at: new Date().toISOString(),
      });
      await this.store.appendEvent(tx, task.id, 'escalated', { reason, detail });
    });
    const packetPath = await this.writeTerminalPacket(await this.store.getTask(task.id), rt);
    this.deps.emit({ kind: 'escalated', key: task.key, reason, detail, packetPath });
  }

  async writeLedger(task: Task, rt: ProjectRuntime): Promise<string> {
    const fresh = await this.store.getTask(task.id);
    const dir = paths.artifacts(rt.project, fresh);
    const handoffFile = join(
      paths.worktree(this.deps.ctx, rt.project, fresh),
      'docs',
      'tasks',
      fresh.key,
      'adr.md',
    );
    const handoff = existsSync(handoffFile)
      ? readFileSync(handoffFile, 'utf8')
      : `${fresh.title}\n${fresh.description}`;
    const header = ledgerHeader(fresh, { budget: rt.config.budget, retry: rt.config.retry }, handoff);
    return syncLedger(dir, header, await this.store.attemptsOfTask(fresh.id));
  }

  async writeTerminalPacket(task: Task, rt: ProjectRuntime): Promise<string> {
    const dir = paths.artifacts(rt.project, task);
    mkdirSync(dir, { recursive: true });
    await this.writeLedger(task, rt);
    const worktree = paths.worktree(this.deps.ctx, rt.project, task);
    const stat = existsSync(worktree) ? await diffStat(worktree, rt.project.base_branch) : '';
    const attempts = (await this.store.attemptsOfTask(task.id)).map(toRecord);
    const path = join(dir, 'terminal-packet.md');
    writeFileSync(
      path,
      renderTerminalPacket({
        taskKey: task.key,
        title: task.title,
        stage: task.stage,
        reason: (task.terminal_reason ?? 'agent_failure') as TerminalReason,
        detail: task.status_detail ?? '',
        attempts,
        lastFeedback: attempts.at(-1)?.feedback ?? task.feedback,
        diffStat: stat,
        ledgerPath: join(dir, LEDGER_FILE),
      }),
    );
    return path;
  }

  private async spend(task: Task, rt: ProjectRuntime): Promise<Spend> {
    const runs = await this.store.runsOfTask(task.id);
    const startOfDay = new Date();
    startOfDay.setUTCHours(0, 0, 0, 0);
    return {
      tokens: runs.reduce((s, r) => s + (r.input_tokens ?? 0) + (r.output_tokens ?? 0), 0),
      usd: runs.reduce((s, r) => s + (r.cost_usd ?? 0), 0),
      wallS: task.started_at ? (Date.now() - Date.parse(task.started_at)) / 1000 : 0,
      projectUsdToday:
        rt.config.projectUsdPerDay === null
          ? 0
          : await this.store.projectSpendSince(rt.project.id, startOfDay.toISOString()),
    };
  }
}

/** Exists and is a non-empty file. */
export const nonEmptyFile = (path: string): boolean =>
  existsSync(path) && statSync(path).isFile() && statSync(path).size > 0;
