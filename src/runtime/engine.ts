/**
 * The engine: works one claimed job. It loads state, runs the stage's work
 * (an agent, a gate, a merge), asks the pure core what that means, and
 * applies the decision in one transaction.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { OrchContext, ProjectRuntime } from './context.ts';
import { paths } from './context.ts';
import type { Executor } from '../store/store.ts';
import type { AgentRun, Job, Task } from '../store/schema.ts';
import { elapsedMs, STAGE_ROLE, type Stage } from '../core/stages.ts';
import { backoffMs } from '../core/backoff.ts';
import {
  budgetExhausted,
  judgeAttempt,
  type AttemptRecord,
  type TerminalReason,
  type Spend,
} from '../core/build-loop.ts';
import { parseVerdict, verdictFeedback } from '../core/verdict.ts';
import { attemptRecord, taskBudget, terminalPacketText } from './packet.ts';
import { landViaForge } from './forge-land.ts';
import { createForge } from '../trackers/index.ts';
import type { PullRequest } from '../trackers/types.ts';
import { launchRun, type LaunchLimits, type LaunchResult } from './launcher.ts';
import {
  commitAll,
  discardUncommitted,
  diffHash,
  ensureWorktree,
  hasOrigin,
  landBranch,
  removeCleanWorktree,
  taskBranch,
} from './git.ts';
import { publishAfterStage, syncBeforeStage } from './handoff.ts';
import { ledgerHeader, syncLedger } from './ledger.ts';
import type { Logger } from './logger.ts';
import type { AgentEvent } from '../agents/events.ts';
import { recordGate, runGate, type GateOutcome } from './gates.ts';
import { isApproved } from './approval.ts';
import { runCommandStage } from './command-stage.ts';
import { WORK_STAGES, type GateRef, type StagePlan, type WorkStage } from '../config/pipeline-config.ts';

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
  | { kind: 'waiting'; key: string; stage: string; detail: string }
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

export { taskBudget } from './packet.ts';

/** How a landing went: its gate, the developer's feedback when it failed, the merged pull request. */
type Landing =
  { ok: true; gate: GateOutcome; pr?: PullRequest } | { ok: false; gate: GateOutcome; feedback: string };

const prPayload = (pr: PullRequest) => ({ number: pr.number, url: pr.url, state: pr.state });

/** The pull request's description: the task, and the tracker issue it closes when there is one. */
function pullRequestBody(task: Task): string {
  const lines = [task.description.trim() || task.title, '', `Delivered by orch for ${task.key}.`];
  if (task.external_url) lines.push(`Task: ${task.external_url}`);
  if (task.external_source === 'github' && task.external_key) lines.push(`Closes ${task.external_key}`);
  return lines.join('\n');
}
const toRecord = attemptRecord;

const durationOf = (r: AgentRun): number => elapsedMs(r) ?? 0;

/** Gates that run a command in the worktree, which may leave files behind there. */
const runsCommand = (ref: GateRef): boolean =>
  typeof ref === 'object' ? 'command' in ref : ref === 'check_ci_green';

/** What a pass of the loop spent: tokens, cost (null when no run reported one) and time. */
function runTotals(runs: readonly AgentRun[]) {
  const costs = runs.map((r) => r.cost_usd);
  return {
    inputTokens: runs.reduce((s, r) => s + (r.input_tokens ?? 0), 0),
    outputTokens: runs.reduce((s, r) => s + (r.output_tokens ?? 0), 0),
    costUsd: costs.every((c) => c === null) ? null : costs.reduce<number>((s, c) => s + (c ?? 0), 0),
    durationMs: runs.reduce((s, r) => s + durationOf(r), 0),
  };
}

export class Engine {
  private readonly deps: EngineDeps;
  /** The abort signal of each job being processed (a landing waiting on CI stops with it). */
  private readonly jobSignals = new WeakMap<Job, AbortSignal>();
  /**
   * Worktrees known clean in this process: just created, or just committed by
   * a stage with nothing run there since. The value is the job that stage
   * queued next (null until the advance is committed); that job, and only
   * it, skips the check for an unfinished run's leftovers (a `git status`).
   * A killed run never commits, and a new process starts with none, so the
   * check still runs whenever partial edits can be there.
   */
  private readonly leftClean = new Map<string, number | null>();
  constructor(deps: EngineDeps) {
    this.deps = deps;
  }

  private get store() {
    return this.deps.ctx.store;
  }

  /** Works one claimed job to its end. Never throws for expected outcomes. */
  async process(job: Job, signal: AbortSignal): Promise<void> {
    this.jobSignals.set(job, signal);
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
    if (job.stage === 'created') {
      // The worktree is made now, so the first stage's job finds it ready: no git before its spawn.
      const worktree = paths.worktree(this.deps.ctx, rt.project, task);
      const base = rt.project.base_branch;
      if (await ensureWorktree(rt.project.root_path, worktree, taskBranch(task.key), base))
        this.leftClean.set(worktree, null);
      mkdirSync(paths.logsDir(this.deps.ctx, task), { recursive: true });
      return this.advance(task, job, rt, this.nextStage(rt, 'created'));
    }
    const plan = rt.pipeline.stages.find((s) => s.name === job.stage);
    // A stage disabled by a config edit since its job was queued is passed over.
    if (!plan) return this.advance(task, job, rt, this.nextStage(rt, job.stage as Stage));
    if ((plan.approval || plan.kind === 'human') && !(await isApproved(this.store.db, task, plan.name))) {
      return this.waitForApproval(task, job, plan);
    }
    const worktree = paths.worktree(this.deps.ctx, rt.project, task);
    await ensureWorktree(rt.project.root_path, worktree, taskBranch(task.key), rt.project.base_branch);
    // Without an origin remote (or with handoff off) there is nothing to sync, and no git to run.
    const origin = await hasOrigin(rt.project.root_path);
    if (origin) await syncBeforeStage(worktree, taskBranch(task.key), rt.project.base_branch);
    const knownClean = this.leftClean.get(worktree) === job.id;
    this.leftClean.delete(worktree);
    if (plan.kind !== 'human' && !knownClean && (await discardUncommitted(worktree))) {
      this.deps.log.info(`${task.key}: discarded uncommitted changes an unfinished run left in ${worktree}`);
    }
    if (plan.kind === 'human') return this.leaveStage(task, job, rt, plan, undefined, worktree);
    if (plan.kind === 'command') {
      await this.markRunning(task, job);
      const res = await runCommandStage(
        this.deps.ctx,
        rt,
        task,
        job,
        plan,
        worktree,
        this.deps.workerId,
        signal,
      );
      this.emitFinished(task, plan.role ?? 'deployer', job.stage, res);
      if (res.outcome !== 'ok') return this.onRunFailed(task, job, rt, plan.role ?? 'deployer', res, signal);
      await this.commit(worktree, `${task.key}: ${job.stage} (command, run ${res.runId})\n\n${task.title}`);
      if (origin) await publishAfterStage(worktree, taskBranch(task.key));
      return this.leaveStage(task, job, rt, plan, res, worktree);
    }
    await this.runAgentStage(task, job, rt, plan, worktree, signal);
  }

  /** Commits a stage's work; the worktree is clean afterwards, until something else runs there. */
  private async commit(worktree: string, message: string): Promise<void> {
    await commitAll(worktree, message);
    this.leftClean.set(worktree, null);
  }

  /** The enabled stage after `stage`, or `done`. */
  private nextStage(rt: ProjectRuntime, stage: Stage): Stage {
    const enabled = new Set(rt.pipeline.stages.map((s) => s.name));
    const from = stage === 'created' ? -1 : WORK_STAGES.indexOf(stage as WorkStage);
    return WORK_STAGES.slice(from + 1).find((s) => enabled.has(s)) ?? 'done';
  }

  // ------------------------------------------------------------ agent stages

  private async runAgentStage(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    plan: StagePlan,
    worktree: string,
    signal: AbortSignal,
  ): Promise<void> {
    const { ctx } = this.deps;
    const role = plan.role!;
    const attempts = await this.store.attemptsOfTask(task.id);
    const inLoop = job.stage === 'development' || job.stage === 'review';
    const attempt = inLoop ? attempts.length + 1 : null;
    // Stages outside the loop see the latest attempt number (1 before any).
    const contractAttempt = attempt ?? Math.max(1, attempts.length);

    if (job.stage === 'development') {
      // The audit copy catches up with the database before the next attempt starts (after a crash, say).
      if (attempts.length) await this.writeLedger(task, rt);
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
    if (job.stage === 'review') {
      // An approval is recorded before the stage's other gates run: after a crash in between,
      // the recorded approval of this development run stands; it is not reviewed (and recorded) again.
      const last = attempts.at(-1);
      const runs = last?.verdict === 'approved' ? await this.store.runsOfTask(task.id) : [];
      const devRun = runs.filter((r) => r.agent === 'developer' && r.outcome === 'ok').at(-1);
      if (last?.verdict === 'approved' && devRun && last.dev_run_id === devRun.id) {
        // A crash right after the approval was recorded may have cut the ledger's append short.
        await this.writeLedger(task, rt);
        const others = { ...plan, gates: plan.gates.filter((g) => g !== 'check_reviewer_verdict') };
        return this.leaveStage(task, job, rt, others, undefined, worktree);
      }
    }
    const fresh =
      (await this.markRunning(task, job, {
        ...(attempt !== null ? { attempt } : {}),
        ...(task.started_at ? {} : { started_at: new Date().toISOString() }),
        ...(job.stage === 'development' && !task.loop_run_id ? { loop_run_id: randomUUID() } : {}),
      })) ?? (await this.store.getTask(task.id));

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
      ...(plan.prompt || plan.promptFile ? { promptTemplate: this.promptTemplate(rt, plan) } : {}),
      ...(this.deps.limits ? { limits: this.deps.limits } : {}),
      onEvent: (runId, event) => {
        if (event.type === 'started')
          this.deps.emit({ kind: 'run_started', key: task.key, role, stage: job.stage, runId, attempt });
        this.deps.onAgentEvent?.(runId, event);
      },
      ...(this.deps.onAgentLine ? { onLine: this.deps.onAgentLine } : {}),
    });
    this.emitFinished(task, role, job.stage, res);
    if (res.outcome !== 'ok') return this.onRunFailed(fresh, job, rt, role, res, signal);

    await this.commit(worktree, `${task.key}: ${job.stage} (${role}, run ${res.runId})\n\n${task.title}`);
    if (await hasOrigin(rt.project.root_path)) await publishAfterStage(worktree, taskBranch(task.key));
    if (job.stage === 'development') {
      const hash = await diffHash(worktree, rt.project.base_branch);
      await this.store.db
        .updateTable('agent_runs')
        .set({ diff_hash: hash })
        .where('id', '=', res.runId)
        .execute();
    }
    if (job.stage === 'review') return this.afterReview(fresh, job, rt, plan, res, worktree);
    return this.leaveStage(fresh, job, rt, plan, res, worktree);
  }

  private promptTemplate(rt: ProjectRuntime, plan: StagePlan): string {
    if (plan.prompt) return plan.prompt;
    return readFileSync(resolve(rt.project.root_path, plan.promptFile!), 'utf8');
  }

  private emitFinished(task: Task, role: string, stage: string, res: LaunchResult): void {
    this.deps.emit({
      kind: 'run_finished',
      key: task.key,
      role,
      stage,
      runId: res.runId,
      outcome: res.outcome,
      durationMs: res.durationMs,
      tokens: (res.usage?.inputTokens ?? 0) + (res.usage?.outputTokens ?? 0),
      costUsd: res.usage?.costUsd ?? null,
    });
  }

  /** Anti-salvage: a run that did not end cleanly never advances; it is retried with backoff, then escalated. */
  private async onRunFailed(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    role: string,
    res: LaunchResult,
    signal: AbortSignal,
  ): Promise<void> {
    const reason = signal.aborted ? (signal.reason as AbortReason) : null;
    if (reason === 'shutdown' || reason === 'lease_lost') {
      await this.store.tx(async (tx) => {
        if (!(await this.stillOurs(tx, task, job, res))) return;
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
      const retried = await this.store.tx(async (tx) => {
        if (!(await this.stillOurs(tx, task, job, res))) return false;
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
        return true;
      });
      if (!retried) return;
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

  /** Runs the stage's gates; all passing, the task moves on (the development stage checks the budget first). */
  private async leaveStage(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    plan: StagePlan,
    res: LaunchResult | undefined,
    worktree: string,
  ): Promise<void> {
    // What the approval and verdict gates decide on, read only when the stage has such a gate.
    const needs = (gate: string) => plan.gates.includes(gate as GateRef);
    const approved = needs('check_human_approval') && (await isApproved(this.store.db, task, plan.name));
    const lastVerdict = needs('check_reviewer_verdict')
      ? ((await this.store.attemptsOfTask(task.id)).at(-1)?.verdict ?? null)
      : null;
    for (const ref of plan.gates) {
      if (runsCommand(ref)) this.leftClean.delete(worktree);
      const gate = await runGate(this.deps.ctx, rt, task, plan.name, ref, worktree, {
        approved,
        lastVerdict,
      });
      this.deps.emit({ kind: 'gate', key: task.key, name: gate.name, passed: gate.passed });
      if (!gate.passed) return this.gateFailed(task, job, rt, plan, res, gate, worktree);
    }
    if (plan.name === 'development') {
      const exhausted = budgetExhausted(
        taskBudget(rt, task),
        await this.spend(task, rt),
        rt.config.projectUsdPerDay,
      );
      if (exhausted) return this.escalate(task, job, rt, 'budget_exhausted', exhausted, res);
    }
    const next = this.nextStage(rt, plan.name);
    if (next === 'done') return this.land(task, job, rt, plan, res, worktree);
    return this.advance(task, job, rt, next, res);
  }

  /**
   * A failing gate routes the task by the stage's `on_fail`: escalation (a
   * failing architecture gate is a rejected design), or back to an earlier
   * stage with the gate's output as feedback. A return to development is a
   * pass of the build loop, recorded as an attempt judged by the gate.
   */
  private async gateFailed(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    plan: StagePlan,
    res: LaunchResult | undefined,
    gate: GateOutcome,
    worktree: string,
  ): Promise<void> {
    const feedback = `The gate ${gate.name} failed at ${plan.name}. Its output:\n\n${gate.output}`;
    if (plan.onFail === 'escalate') {
      const reason: TerminalReason = plan.name === 'architecture' ? 'design_rejected' : 'gate_failure';
      return this.escalate(
        task,
        job,
        rt,
        reason,
        `${gate.name} failed at ${plan.name}: ${gate.output}`,
        res,
        async (tx) => {
          await this.store.updateTask(tx, task.id, { feedback });
        },
      );
    }
    if (plan.onFail !== 'development') return this.advance(task, job, rt, plan.onFail, res, { feedback });
    return this.recordGateAttempt(
      task,
      job,
      rt,
      res,
      gate,
      feedback,
      worktree,
      plan.name === 'development' || plan.name === 'review',
    );
  }

  /** Records a loop pass judged by a gate, then reworks or stops as the build loop decides. */
  private async recordGateAttempt(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    res: LaunchResult | undefined,
    gate: GateOutcome,
    feedback: string,
    worktree: string,
    checkRepetition: boolean,
  ): Promise<void> {
    const attempts = await this.store.attemptsOfTask(task.id);
    const lastRunId = Math.max(0, ...attempts.map((a) => Math.max(a.dev_run_id ?? 0, a.review_run_id ?? 0)));
    const runs = (await this.store.runsOfTask(task.id)).filter((r) => r.id > lastRunId);
    const current: AttemptRecord = {
      n: attempts.length + 1,
      diffHash: await diffHash(worktree, rt.project.base_branch),
      verdict: 'rejected',
      feedback,
      ...runTotals(runs),
      reason: gate.name,
    };
    const decision = judgeAttempt(
      attempts.map(toRecord),
      current,
      taskBudget(rt, task),
      await this.spend(task, rt),
      rt.config.projectUsdPerDay,
      checkRepetition,
    );
    const devRun = runs.filter((r) => r.agent === 'developer').at(-1);
    const record = async (tx: Executor) => {
      await this.store.recordAttempt(tx, {
        task_id: task.id,
        n: current.n,
        diff_hash: current.diffHash,
        verdict: 'rejected',
        feedback,
        input_tokens: current.inputTokens,
        output_tokens: current.outputTokens,
        cost_usd: current.costUsd,
        duration_ms: current.durationMs,
        reason: decision.kind === 'stop' ? decision.reason : gate.name,
        dev_run_id: devRun?.id ?? null,
        review_run_id: res?.runId ?? null,
      });
    };
    if (decision.kind === 'stop') {
      await this.escalate(task, job, rt, decision.reason, decision.detail, res, async (tx) => {
        await record(tx);
        await this.store.updateTask(tx, task.id, { feedback });
      });
    } else {
      await this.advance(task, job, rt, 'development', res, { feedback }, record);
    }
    await this.writeLedger(task, rt);
  }

  private async afterReview(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    plan: StagePlan,
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
    const totals = runTotals([devRun, reviewRun].filter((r): r is AgentRun => r !== undefined));
    const current: AttemptRecord = {
      n,
      diffHash: hash,
      verdict: verdict.verdict,
      feedback,
      ...totals,
      // The review run is not finished in the store yet: its duration comes from the launch.
      durationMs: totals.durationMs + res.durationMs,
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
    if (plan.gates.includes('check_reviewer_verdict')) {
      await recordGate(
        this.deps.ctx,
        task,
        plan.name,
        {
          name: 'check_reviewer_verdict',
          passed: verdict.verdict === 'approved',
          output: feedback || verdict.verdict,
        },
        new Date().toISOString(),
      );
    }
    if (decision.kind === 'approved') {
      // The review's verdict is in; the stage's other gates still have their say.
      const others = { ...plan, gates: plan.gates.filter((g) => g !== 'check_reviewer_verdict') };
      const approvedRecord = record;
      await this.store.tx(approvedRecord);
      await this.writeLedger(task, rt);
      return this.leaveStage(await this.store.getTask(task.id), job, rt, others, res, worktree);
    }
    if (decision.kind === 'rework') {
      await this.advance(task, job, rt, 'development', res, { feedback: decision.feedback }, record);
    } else {
      await this.escalate(task, job, rt, decision.reason, decision.detail, res, async (tx) => {
        await record(tx);
        // `orch task retry` resumes at the next attempt: its developer must see this review.
        await this.store.updateTask(tx, task.id, { feedback: current.feedback });
      });
    }
    await this.writeLedger(task, rt);
  }

  /** Waits for a human: no job until `orch task approve` queues the stage again. */
  private async waitForApproval(task: Task, job: Job, plan: StagePlan): Promise<void> {
    const detail = `waiting for approval of ${plan.name}: orch task approve ${task.key}`;
    await this.store.tx(async (tx) => {
      await this.store.finishJob(tx, job.id, 'done', 'waiting for approval');
      await this.store.updateTask(tx, task.id, { status: 'waiting', status_detail: detail });
      await this.store.appendEvent(tx, task.id, 'approval_requested', { stage: plan.name });
    });
    this.deps.emit({ kind: 'waiting', key: task.key, stage: plan.name, detail });
  }

  /**
   * The steward: after the last stage, the branch lands and the task is done:
   * on the base branch here, or through a pull request when the project has a
   * forge. A landing that fails is a failed gate (`check_merge_clean`, or
   * `check_ci_green` for a red CI on the pull request) that goes back to the
   * developer as a pass of the loop; a local conflict is left in progress in
   * the worktree for them.
   */
  private async land(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    plan: StagePlan,
    res: LaunchResult | undefined,
    worktree: string,
  ): Promise<void> {
    const startedAt = new Date().toISOString();
    this.leftClean.delete(worktree);
    const landing = rt.raw.forge
      ? await this.landThroughForge(task, job, rt, worktree)
      : await this.landOnBase(task, rt, worktree);
    const { gate } = landing;
    await recordGate(this.deps.ctx, task, plan.name, gate, startedAt);
    this.deps.emit({ kind: 'gate', key: task.key, name: gate.name, passed: gate.passed });
    if (!landing.ok)
      return this.recordGateAttempt(task, job, rt, res, gate, landing.feedback, worktree, false);
    if (landing.pr) await this.recordPullRequest(task, landing.pr);
    await this.advance(task, job, rt, 'done', res);
    if (rt.pipeline.removeWorktrees) await removeCleanWorktree(rt.project.root_path, worktree, this.deps.log);
  }

  /** Lands the branch on the base branch with the project's merge strategy. */
  private async landOnBase(task: Task, rt: ProjectRuntime, worktree: string): Promise<Landing> {
    const base = rt.project.base_branch;
    const merged = await landBranch(
      rt.project.root_path,
      worktree,
      taskBranch(task.key),
      base,
      rt.pipeline.mergeStrategy,
    );
    if (merged.ok)
      return {
        ok: true,
        gate: {
          name: 'check_merge_clean',
          passed: true,
          output: `landed on ${base} at ${merged.commit.slice(0, 12)} (${rt.pipeline.mergeStrategy})`,
        },
      };
    const output = merged.conflicts.length
      ? `The merge of ${base} is in progress in your worktree: resolve the conflict markers in ${merged.conflicts.join(', ')}, then finish the change.`
      : merged.message;
    return {
      ok: false,
      gate: { name: 'check_merge_clean', passed: false, output },
      feedback: `The branch does not merge onto ${base}. ${output} Rework the change onto the new base.`,
    };
  }

  /**
   * Lands the branch through the project's forge (orch.yaml `forge:`): a pull
   * request, its CI, and the forge's merge.
   */
  private async landThroughForge(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    worktree: string,
  ): Promise<Landing> {
    const cfg = rt.raw.forge!;
    const signal = this.jobSignals.get(job);
    const outcome = await landViaForge({
      repo: rt.project.root_path,
      worktree,
      branch: taskBranch(task.key),
      base: rt.project.base_branch,
      forge: createForge(cfg, this.deps.ctx.env),
      config: cfg,
      title: `${task.key}: ${task.title}`,
      body: pullRequestBody(task),
      ...(signal ? { signal } : {}),
      onPullRequest: (pr) => this.recordPullRequest(task, pr),
    });
    if (outcome.ok)
      return {
        ok: true,
        gate: { name: 'check_merge_clean', passed: true, output: outcome.detail },
        pr: outcome.pr,
      };
    return {
      ok: false,
      gate: { name: outcome.gate, passed: false, output: outcome.message },
      feedback: `The pull request did not land. ${outcome.message} Fix the cause on the branch.`,
    };
  }

  /** A `pull_request` event each time the task's pull request is seen in a new state (opened, merged). */
  private async recordPullRequest(task: Task, pr: PullRequest): Promise<void> {
    await this.store.tx(async (tx) => {
      const seen = await tx
        .selectFrom('events')
        .select('payload')
        .where('task_id', '=', task.id)
        .where('kind', '=', 'pull_request')
        .execute();
      if (seen.some((e) => e.payload === JSON.stringify(prPayload(pr)))) return;
      await this.store.appendEvent(tx, task.id, 'pull_request', prPayload(pr));
    });
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
    let next: Job | null = null;
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
        next = await this.store.enqueueJob(tx, {
          task,
          stage: to,
          agent: STAGE_ROLE[to] ?? 'orch',
          repo: rt.project.name,
        });
      return true;
    });
    // A clean worktree is handed to the job just queued; any other job of the task checks it.
    const worktree = paths.worktree(this.deps.ctx, rt.project, task);
    if (moved && next !== null && this.leftClean.get(worktree) === null)
      this.leftClean.set(worktree, (next as Job).id);
    else this.leftClean.delete(worktree);
    if (!moved) return;
    this.deps.emit({ kind: 'stage', key: task.key, from: job.stage, to });
    if (done) this.deps.emit({ kind: 'done', key: task.key });
  }

  /**
   * Status `running`, unless the task left the job's stage (a cancel that raced the claim).
   * Returns the updated task, or undefined when it was left alone.
   */
  private async markRunning(
    task: Task,
    job: Job,
    changes: Partial<Pick<Task, 'attempt' | 'started_at' | 'loop_run_id'>> = {},
  ): Promise<Task | undefined> {
    return this.store.db
      .updateTable('tasks')
      .set({ ...changes, status: 'running', status_detail: null, updated_at: new Date().toISOString() })
      .where('id', '=', task.id)
      .where('stage', '=', job.stage)
      .where('status', 'not in', ['cancelled', 'done', 'escalated'])
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Inside a transaction: is the task still at this job's stage and unfinished? A task cancelled
   * (or moved on) while its run was ending keeps its state; the run and the job are closed as
   * cancelled instead of being retried or escalated.
   */
  private async stillOurs(tx: Executor, task: Task, job: Job, res?: LaunchResult): Promise<boolean> {
    const current = await this.store.getTask(task.id, tx);
    if (current.stage === job.stage && !['cancelled', 'done', 'escalated'].includes(current.status))
      return true;
    if (res) await this.store.finishRun(tx, res.runId, { ...this.finish(res), outcome: 'cancelled' });
    await this.store.finishJob(tx, job.id, 'cancelled', `task is ${current.stage}/${current.status}`);
    return false;
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
    const escalated = await this.store.tx(async (tx) => {
      if (!(await this.stillOurs(tx, task, job, res))) return false;
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
      return true;
    });
    if (!escalated) return;
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
    const path = join(dir, 'terminal-packet.md');
    writeFileSync(path, await terminalPacketText(this.deps.ctx, task, rt));
    return path;
  }

  /** What budgets are checked against; the runs are only read when a token or USD limit is set. */
  private async spend(task: Task, rt: ProjectRuntime): Promise<Spend> {
    const budget = taskBudget(rt, task);
    const limited = budget.maxTokens !== null || budget.maxUsd !== null;
    const runs = limited ? await this.store.runsOfTask(task.id) : [];
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
