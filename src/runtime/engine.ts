/**
 * The engine: does the work of one claimed job and reports what happened.
 * It decides nothing: each outcome (the run ended, a gate failed, the
 * landing went through) is an event for the state machine's writer
 * (transitions.ts), which decides with the pure core and applies the
 * decision. The engine only reads what the next step of the work needs.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { OrchContext, ProjectRuntime } from './context.ts';
import { paths } from './context.ts';
import type { AgentRun, Job, Task } from '../store/schema.ts';
import { elapsedMs, type Role } from '../core/stages.ts';
import { budgetExhausted, type AttemptRecord } from '../core/build-loop.ts';
import type { AttemptTotals, CandidateResult } from '../core/pipeline.ts';
import { chooseCandidate, parseVerdict, verdictFeedback } from '../core/verdict.ts';
import {
  candidatesOfTask,
  reviewerAppendix,
  type CandidatesRecord,
  type RecordedCandidate,
} from './candidates.ts';
import { landViaForge } from './forge-land.ts';
import { createForge } from '../trackers/index.ts';
import type { PullRequest } from '../trackers/types.ts';
import { launchRun, resumableSession, type LaunchLimits, type LaunchResult } from './launcher.ts';
import {
  adoptCandidate,
  candidateBranch,
  candidateRef,
  candidateWorktree,
  commitAll,
  discardUncommitted,
  git,
  makeCandidateWorktree,
  retireCandidate,
  diffHash,
  ensureWorktree,
  reopenMergeConflict,
  hasOrigin,
  mergeInProgress,
  landBranch,
  taskBranch,
} from './git.ts';
import {
  afterCreateDone,
  markAfterCreateDone,
  removeTaskWorktree,
  runHook,
  type HookResult,
} from './hooks.ts';
import { publishAfterStage, syncBeforeStage } from './handoff.ts';
import type { Logger } from './logger.ts';
import type { AgentEvent } from '../agents/events.ts';
import type { UsageLimit } from '../agents/usage-limit.ts';
import type { RunOutcome } from '../core/run-outcome.ts';
import { recordGate, runGate, type GateOutcome } from './gates.ts';
import { runCommandStage } from './command-stage.ts';
import type { GateRef, StagePlan } from '../config/pipeline-config.ts';
import { GitRefusal } from './git-refusal.ts';
import { taskBudget } from './packet.ts';
import type { AbortReason, ProgressEvent } from './progress.ts';
import type { Holder, JobEvent, Outcome, Transitions } from './transitions.ts';
import type { RunFinish } from '../store/store.ts';
import { onThisHost } from './worker-id.ts';

export type { AbortReason, ProgressEvent } from './progress.ts';

export interface EngineDeps {
  ctx: OrchContext;
  log: Logger;
  workerId: string;
  transitions: Transitions;
  limits?: LaunchLimits;
  emit: (event: ProgressEvent) => void;
  onAgentEvent?: (runId: number, event: AgentEvent) => void;
  onAgentLine?: (runId: number, line: string) => void;
}

/** How a landing went: the gate it counts as, and what the forge said. */
type Landing =
  | { kind: 'landed'; gate: GateOutcome; pr?: PullRequest }
  | { kind: 'pending'; detail: string; pollMs: number }
  | { kind: 'changes_requested'; url: string; feedback: string; handled: string[] }
  | { kind: 'failed'; gate: GateOutcome; feedback: string }
  | { kind: 'cancelled' };

const prPayload = (pr: PullRequest) => ({ number: pr.number, url: pr.url, state: pr.state });

/** The pull request's description: the task, and the tracker issue it closes when there is one. */
function pullRequestBody(task: Task): string {
  const lines = [task.description.trim() || task.title, '', `Delivered by orch for ${task.key}.`];
  if (task.external_url) lines.push(`Task: ${task.external_url}`);
  if (task.external_source === 'github' && task.external_key) lines.push(`Closes ${task.external_key}`);
  return lines.join('\n');
}

/** Gates that run a command in the worktree, which may leave files behind there. */
const runsCommand = (ref: GateRef): boolean =>
  typeof ref === 'object' ? 'command' in ref : ref === 'check_ci_green';

/** What runs spent: tokens, cost (null when no run reported one) and time. */
function runTotals(runs: readonly AgentRun[]): AttemptTotals {
  const costs = runs.map((r) => r.cost_usd);
  return {
    inputTokens: runs.reduce((s, r) => s + (r.input_tokens ?? 0), 0),
    outputTokens: runs.reduce((s, r) => s + (r.output_tokens ?? 0), 0),
    costUsd: costs.every((c) => c === null) ? null : costs.reduce<number>((s, c) => s + (c ?? 0), 0),
    durationMs: runs.reduce((s, r) => s + (elapsedMs(r) ?? 0), 0),
  };
}

/** A run's end as the store records it: its own outcome, or why orch stopped it. */
function runFinish(res: LaunchResult, signal: AbortSignal): RunFinish {
  const reason = signal.aborted ? (signal.reason as AbortReason) : null;
  const outcome =
    reason === 'shutdown' || reason === 'lease_lost'
      ? 'interrupted'
      : reason === 'cancel'
        ? 'cancelled'
        : reason === 'reaped'
          ? 'reaped'
          : reason === 'redirect'
            ? 'redirected'
            : res.outcome;
  return { exitCode: res.exitCode, outcome, resultText: res.resultText, error: res.error };
}

export class Engine {
  private readonly deps: EngineDeps;
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

  /** Tells the writer what happened to the job; remembers a clean worktree for the job it queued. */
  private async report(
    job: Job,
    event: JobEvent,
    worktree?: string,
    runs?: { dev: number | null; review: number | null },
  ): Promise<Outcome> {
    const holder: Holder = { owner: this.deps.workerId };
    const outcome = await this.deps.transitions.onJob(job, event, holder, runs ? { runs } : {});
    if (worktree) {
      const clean = this.leftClean.get(worktree) === null;
      if (clean && outcome.next) this.leftClean.set(worktree, outcome.next.id);
      // An approving verdict: the same job goes on to its gates, with nothing run since the commit.
      else if (!(clean && outcome.decision.kind === 'continue')) this.leftClean.delete(worktree);
    }
    return outcome;
  }

  /** Works one claimed job to its end. Never throws for expected outcomes. */
  async process(job: Job, signal: AbortSignal): Promise<void> {
    const lastRun = job.run_id !== null ? await this.store.getRun(job.run_id) : undefined;
    const claim = await this.report(job, {
      kind: 'claimed',
      lastRun: lastRun
        ? {
            outcome: lastRun.status === 'finished' ? lastRun.outcome : null,
            here: this.ranHere(lastRun, await this.store.getTask(job.task_id)),
          }
        : null,
      reviewDone: job.stage === 'review' && (await this.reviewRecorded(job.task_id)),
    });
    if (claim.decision.kind !== 'work') return;
    // The task as the claim's transaction read it, under its lock (before it was marked running).
    const task = claim.task;
    const from = claim.decision.from;
    const rt = await this.deps.ctx.projectRuntime(task.project_id);
    const worktree = paths.worktree(this.deps.ctx, rt.project, task);
    const branch = taskBranch(task.key);
    if (job.stage === 'created') {
      // The worktree is made now, so the first stage's job finds it ready: no git before its spawn.
      if (await ensureWorktree(rt.project.root_path, worktree, branch, rt.project.base_branch))
        this.leftClean.set(worktree, null);
      mkdirSync(paths.logsDir(this.deps.ctx, task), { recursive: true });
      if (!(await this.afterCreate(task, job, rt, worktree, signal, ''))) return;
      await this.report(job, { kind: 'stage_passed' }, worktree);
      return;
    }
    await ensureWorktree(rt.project.root_path, worktree, branch, rt.project.base_branch);
    // Without an origin remote (or with handoff off) there is nothing to sync, and no git to run.
    const origin = await hasOrigin(rt.project.root_path);
    if (job.step === 'land') {
      // The landing may be another worker's than the last stage's: it lands the branch as origin
      // has it (the last stage published it), never what a stale clone of its own holds.
      if (origin) await syncBeforeStage(worktree, branch, rt.project.base_branch);
      return this.land(task, job, rt, worktree, signal);
    }
    const plan = rt.pipeline.stages.find((s) => s.name === job.stage)!;
    // Resuming at the gates keeps the run's uncommitted work, so only a new run syncs (a resumed
    // review's work is committed and published already: its worktree may be another's).
    if (origin && (from === 'run' || job.stage === 'review'))
      await syncBeforeStage(worktree, branch, rt.project.base_branch);
    const knownClean = this.leftClean.get(worktree) === job.id;
    this.leftClean.delete(worktree);
    const role: Role = plan.role ?? 'deployer';
    if (plan.kind === 'human') {
      if (!(await this.afterCreate(task, job, rt, worktree, signal, role))) return;
      await this.runGates(task, job, rt, plan, worktree, signal);
      return;
    }
    // A run a person stopped with a message (`orch task say --now`) is continued in its CLI
    // session where the adapter can resume it and the session is here: its edits are kept.
    const resumeSessionId =
      from === 'run' && plan.kind === 'agent' && lastRun && this.ranHere(lastRun, task)
        ? resumableSession(rt, task, role, lastRun)
        : null;
    if (resumeSessionId)
      this.deps.log.info(`${task.key}: resuming the session of run ${lastRun?.id} with a person's message`);
    // Before a run, whatever an unfinished run left is dropped; a run that already ended ok
    // (orch died before its decision) keeps its work, which is committed now.
    else if (from === 'run' && !knownClean && (await discardUncommitted(worktree)))
      this.deps.log.info(`${task.key}: discarded uncommitted changes an unfinished run left in ${worktree}`);
    if (job.stage === 'development' && from === 'run') {
      const conflicts = await reopenMergeConflict(worktree, rt.project.base_branch);
      if (conflicts.length)
        this.deps.log.info(
          `${task.key}: merged ${rt.project.base_branch} in for the developer to resolve: ${conflicts.join(', ')}`,
        );
    }
    // The worktree is ready only once after_create succeeded in it (another home's worktree, one
    // made again, or a failed hook: it runs now, before anything else works there).
    if (!(await this.afterCreate(task, job, rt, worktree, signal, role))) return;
    // Several developer runs side by side: each is run and judged in a worktree of its own.
    // (A landing's conflict left open in the task's worktree is resolved there, by one run: the
    // candidates' worktrees, made from the branch's last commit, would never see it.)
    if (
      job.stage === 'development' &&
      plan.kind === 'agent' &&
      plan.candidates > 1 &&
      !mergeInProgress(worktree)
    )
      return this.developCandidates(task, job, rt, plan, worktree, signal);

    let run: { id: number; resultText: string | null } | null =
      from === 'gates' && lastRun ? { id: lastRun.id, resultText: lastRun.result_text } : null;
    if (from === 'run') {
      let attempts: number | undefined;
      if (plan.kind === 'agent') {
        const before = await this.hook(task, job, rt, 'before_run', worktree, signal, role);
        if (before && !before.ok) return this.hookFailed(task, job, before, signal);
        // Independent reads, issued together (side by side on PostgreSQL's pool): the pause, and
        // the attempts the run is numbered by.
        const [paused, recorded] = await Promise.all([
          this.pauseInForce(job),
          this.store.attemptsOfTask(task.id),
        ]);
        if (paused) return this.heldBack(job, paused);
        attempts = recorded.length;
      }
      const res =
        plan.kind === 'command'
          ? await runCommandStage(this.deps.ctx, rt, task, job, plan, worktree, this.deps.workerId, signal)
          : await this.launchAgent(task, job, rt, plan, worktree, signal, resumeSessionId, { attempts });
      const outcome = await this.closeRun(task, job, rt, role, worktree, res, signal, plan.kind === 'agent');
      if (outcome === 'reaped' && !signal.aborted) {
        await this.report(job, { kind: 'interrupted', cause: 'reaped', runId: res.runId });
        return;
      }
      if (outcome !== 'ok') return this.runEnded(job, res, signal);
      run = { id: res.runId, resultText: res.resultText };
    }
    // A cancel that came while the run ended wins: its work stays uncommitted in the worktree.
    if (!(await this.stillHeld(job))) return;
    try {
      await this.commit(
        worktree,
        `${task.key}: ${job.stage} (${plan.kind === 'command' ? 'command' : plan.role}, run ${run?.id ?? '?'})\n\n${task.title}`,
      );
    } catch (error) {
      if (!(error instanceof GitRefusal)) throw error;
      // A refusal of git's (a nested repository an agent left, a file too large to commit) fails
      // the try, with what to do about it as the feedback the next run sees. The run's work cannot
      // be kept: it failed after all, so the next try runs the agent again (from a clean worktree).
      if (run) await this.store.failFinishedRun(run.id, error.message);
      await this.report(job, {
        kind: 'run_failed',
        outcome: 'failed',
        runId: run?.id ?? null,
        error: error.message,
        feedback: error.feedback,
      });
      return;
    }
    if (origin) await publishAfterStage(worktree, branch);
    if (job.stage === 'development' && run)
      await this.store.setRunDiffHash(run.id, await diffHash(worktree, rt.project.base_branch));
    if (job.stage === 'review') {
      const reviewed = await this.review(task, job, rt, plan, run, worktree);
      if (!reviewed) return;
      return this.runGates(
        task,
        job,
        rt,
        { ...plan, gates: plan.gates.filter((g) => g !== 'check_reviewer_verdict') },
        worktree,
        signal,
      );
    }
    await this.runGates(task, job, rt, plan, worktree, signal);
  }

  /**
   * The development stage's candidates, one after another: each gets a fresh worktree from the
   * task branch's tip, a developer run, a commit and the stage's gates; its commit is kept under
   * its ref and its worktree removed. One event reports them all (the state machine decides),
   * after a `candidates` record the review and the ledger read.
   */
  private async developCandidates(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    plan: StagePlan,
    worktree: string,
    signal: AbortSignal,
  ): Promise<void> {
    const repo = rt.project.root_path;
    const attempt = (await this.store.attemptsOfTask(task.id)).length + 1;
    const from = (await git(worktree, ['rev-parse', 'HEAD'])).trim();
    const results: RecordedCandidate[] = [];
    const runIds: number[] = [];
    const budget = taskBudget(rt, task);
    for (let n = 1; n <= plan.candidates; n += 1) {
      if (signal.aborted) return this.abandoned(job, signal);
      if (n > 1) {
        // A cancel (its job closed) starts no further agent; nor does a budget the runs so far used up.
        if (!(await this.stillHeld(job))) return;
        // The task's token and USD budgets (its wall time and the project's day are the writer's).
        const spent = await this.store.taskSpend(task.id);
        const exhausted = budgetExhausted(budget, { ...spent, wallS: 0, projectUsdToday: 0 }, null);
        if (exhausted) {
          this.deps.log.warn(`${task.key}: ${exhausted} after ${n - 1} candidates: no more run`);
          break;
        }
      }
      const path = candidateWorktree(worktree, n);
      const branch = candidateBranch(task.key, n);
      const ref = candidateRef(task.key, attempt, n);
      await makeCandidateWorktree(repo, path, branch, from);
      const ran = await this.runCandidate(task, job, rt, plan, path, n, signal);
      await retireCandidate(repo, path, branch, ref);
      if (ran.kind === 'stopped') return ran.report();
      if (ran.result.runId !== null) runIds.push(ran.result.runId);
      results.push({ ...ran.result, ref });
      this.deps.log.info(
        `${task.key}: candidate ${n} of ${plan.candidates}: ${ran.result.result}${ran.result.gate ? ` (${ran.result.gate})` : ''}`,
      );
    }
    if (!(await this.stillHeld(job))) return;
    const record: CandidatesRecord = { attempt, from, candidates: results };
    await this.store.tx((tx) =>
      this.store.appendEvent(tx, task.id, 'candidates', record as unknown as Record<string, unknown>),
    );
    const runs = (await this.store.runsOfTask(task.id)).filter((r) => runIds.includes(r.id));
    const judged = results.find((c) => c.result === 'gate_failed');
    await this.report(
      job,
      {
        kind: 'candidates_ran',
        candidates: results.map(({ ref: _ref, ...c }) => c),
        totals: runTotals(runs),
      },
      worktree,
      { dev: judged?.runId ?? null, review: null },
    );
  }

  /**
   * One candidate in its worktree: hooks, the developer's run, the commit, the stage's gates.
   * `stopped` when the try itself is over (orch stopped it, a usage limit, the reaper): `report`
   * reports that, as the stage's single run would.
   */
  private async runCandidate(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    plan: StagePlan,
    path: string,
    n: number,
    signal: AbortSignal,
  ): Promise<{ kind: 'ran'; result: CandidateResult } | { kind: 'stopped'; report: () => Promise<void> }> {
    const role: Role = plan.role ?? 'developer';
    const failed = (runId: number | null, gate: string, output: string) =>
      ({ kind: 'ran', result: { n, runId, result: 'run_failed', gate, output, diffHash: null } }) as const;
    const stopped = () => ({ kind: 'stopped', report: () => this.abandoned(job, signal) }) as const;
    for (const name of ['after_create', 'before_run'] as const) {
      const hook = await this.hook(task, job, rt, name, path, signal, role);
      if (hook && !hook.ok)
        return hook.interrupted || signal.aborted ? stopped() : failed(null, name, hook.summary);
    }
    const paused = await this.pauseInForce(job);
    if (paused) return { kind: 'stopped', report: () => this.heldBack(job, paused) };
    const res = await this.launchAgent(task, job, rt, plan, path, signal, null, { candidate: n });
    const outcome = await this.closeRun(task, job, rt, role, path, res, signal, true);
    if (outcome === 'reaped' && !signal.aborted)
      return {
        kind: 'stopped',
        report: async () => {
          await this.report(job, { kind: 'interrupted', cause: 'reaped', runId: res.runId });
        },
      };
    if (signal.aborted || outcome === 'usage_limited')
      return { kind: 'stopped', report: () => this.runEnded(job, res, signal) };
    if (outcome !== 'ok') return failed(res.runId, outcome, res.error ?? outcome);
    try {
      await commitAll(
        path,
        `${task.key}: development candidate ${n} (${role}, run ${res.runId})\n\n${task.title}`,
      );
    } catch (error) {
      if (!(error instanceof GitRefusal)) throw error;
      await this.store.failFinishedRun(res.runId, error.message);
      return failed(res.runId, 'commit', error.message);
    }
    const hash = await diffHash(path, rt.project.base_branch);
    await this.store.setRunDiffHash(res.runId, hash);
    for (const ref of plan.gates) {
      const gate = await runGate(
        this.deps.ctx,
        rt,
        task,
        plan.name,
        ref,
        path,
        { approved: false, lastVerdict: null },
        { signal, workerId: this.deps.workerId, jobId: job.id },
      );
      if (gate.interrupted || signal.aborted) return stopped();
      this.deps.emit({ kind: 'gate', key: task.key, name: gate.name, passed: gate.passed });
      if (!gate.passed)
        return {
          kind: 'ran',
          result: {
            n,
            runId: res.runId,
            result: 'gate_failed',
            gate: gate.name,
            output: gate.output,
            diffHash: hash,
          },
        };
    }
    return {
      kind: 'ran',
      result: { n, runId: res.runId, result: 'passed', gate: null, output: '', diffHash: hash },
    };
  }

  /**
   * Closes a run the moment its process ended (whatever comes next is not part of it): its
   * outcome recorded, its progress line, and for an agent not stopped by orch the `after_run`
   * hook (whose failure is only logged). Returns the outcome as recorded.
   */
  private async closeRun(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    role: Role,
    worktree: string,
    res: LaunchResult,
    signal: AbortSignal,
    agent: boolean,
  ): Promise<RunOutcome> {
    let finish = runFinish(res, signal);
    // Killed by a cancel before the heartbeat could tell us: it was the cancel.
    if (
      finish.outcome !== 'ok' &&
      !signal.aborted &&
      (await this.store.getJob(job.id))?.status === 'cancelled'
    )
      finish = { ...finish, outcome: 'cancelled' };
    if (!(await this.store.tx((tx) => this.store.finishRun(tx, res.runId, finish)))) {
      // The reaper got there first (the run outlived ORCH_REAPER_MAX_RUNNING_S): its word stands.
      const recorded = await this.store.getRun(res.runId);
      finish = { ...finish, outcome: recorded?.outcome ?? finish.outcome };
    }
    this.emitFinished(task, role, job.stage, res, finish.outcome);
    if (agent && !signal.aborted) {
      const after = await this.hook(task, job, rt, 'after_run', worktree, signal, role);
      if (after && !after.ok && !after.interrupted)
        this.deps.log.warn(`${task.key}: ${after.summary} (not fatal)`);
    }
    return finish.outcome;
  }

  /**
   * The pause in force on the job's adapter and credential, as the limit its wait reports, or
   * null: a job claimed before another run paused them (its worktree, after_create or before_run
   * took that long) waits for the reset too, without starting its agent.
   */
  private async pauseInForce(job: Job): Promise<UsageLimit | null> {
    if (!job.adapter) return null;
    const paused = await this.store.pauses.live(job.adapter, job.credential ?? '');
    if (!paused) return null;
    return {
      resetAt: Date.parse(paused.until_at),
      window: paused.window,
      message: paused.message ?? 'usage limit',
    };
  }

  /** Reports a job held back by its adapter's pause (see {@link pauseInForce}): not a try. */
  private async heldBack(job: Job, limit: UsageLimit): Promise<void> {
    await this.report(job, { kind: 'usage_limited', runId: null, limit });
  }

  /**
   * Whether a run's worktree is this worker's: on this host, with its log in this home's logs
   * (a worktree and its task's logs live in one home). Only there is its uncommitted work.
   */
  private ranHere(run: AgentRun, task: Task): boolean {
    return (
      onThisHost(run.worker_id) &&
      run.log_path !== null &&
      dirname(run.log_path) === paths.logsDir(this.deps.ctx, task)
    );
  }

  /**
   * The current development run's review is recorded already (approved: a crash came after it).
   * With candidates, the approved run is the chosen one, which need not be the last that ran.
   */
  private async reviewRecorded(taskId: number): Promise<boolean> {
    const last = (await this.store.attemptsOfTask(taskId)).at(-1);
    if (last?.verdict !== 'approved') return false;
    const devRun = (await this.store.runsOfTask(taskId))
      .filter((r) => r.agent === 'developer' && r.outcome === 'ok')
      .at(-1);
    if (devRun === undefined) return false;
    if (last.dev_run_id === devRun.id) return true;
    const ran =
      (await candidatesOfTask(this.store, taskId)).get(last.n)?.candidates.map((c) => c.runId) ?? [];
    return ran.includes(devRun.id) && ran.includes(last.dev_run_id);
  }

  private async stillHeld(job: Job): Promise<boolean> {
    const current = await this.store.getJob(job.id);
    return current?.status === 'running' && current.lease_owner === this.deps.workerId;
  }

  /** Commits a stage's work; the worktree is clean afterwards, until something else runs there. */
  private async commit(worktree: string, message: string): Promise<void> {
    await commitAll(worktree, message);
    this.leftClean.set(worktree, null);
  }

  private async launchAgent(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    plan: StagePlan,
    worktree: string,
    signal: AbortSignal,
    resumeSessionId: string | null,
    /** The development candidate it is; the task's attempts when the caller read them already. */
    known: { candidate?: number; attempts?: number | undefined } = {},
  ): Promise<LaunchResult> {
    const { candidate } = known;
    const role = plan.role!;
    const budget = taskBudget(rt, task);
    // Independent reads, issued together: the attempts (unless known), and what the task spent.
    const [attempts, spent] = await Promise.all([
      known.attempts ?? this.store.attemptsOfTask(task.id).then((a) => a.length),
      budget.maxUsd === null ? null : this.store.taskSpend(task.id),
    ]);
    // A review of candidates shows the reviewer each passing one's diff to choose from.
    const candidates =
      job.stage === 'review' ? (await candidatesOfTask(this.store, task.id)).get(attempts + 1) : undefined;
    const promptAppendix = candidates ? await reviewerAppendix(rt.project.root_path, candidates) : undefined;
    const inLoop = job.stage === 'development' || job.stage === 'review';
    const attempt = inLoop ? attempts + 1 : null;
    const remainingUsd =
      budget.maxUsd === null || spent === null ? null : Math.max(0, budget.maxUsd - spent.usd);
    return launchRun({
      ctx: this.deps.ctx,
      rt,
      task,
      job,
      role,
      stage: plan,
      attempt,
      // Stages outside the loop see the latest attempt number (1 before any).
      contractAttempt: attempt ?? Math.max(1, attempts),
      worktree,
      workerId: this.deps.workerId,
      signal,
      log: this.deps.log,
      remainingUsd,
      resumeSessionId,
      ...(candidate ? { candidate } : {}),
      ...(promptAppendix ? { promptAppendix } : {}),
      ...(plan.template ? { promptTemplate: plan.template } : {}),
      ...(this.deps.limits ? { limits: this.deps.limits } : {}),
      onEvent: (runId, event) => {
        if (event.type === 'started')
          this.deps.emit({ kind: 'run_started', key: task.key, role, stage: job.stage, runId, attempt });
        this.deps.onAgentEvent?.(runId, event);
      },
      ...(this.deps.onAgentLine ? { onLine: this.deps.onAgentLine } : {}),
    });
  }

  private emitFinished(task: Task, role: string, stage: string, res: LaunchResult, outcome: string): void {
    this.deps.emit({
      kind: 'run_finished',
      key: task.key,
      role,
      stage,
      runId: res.runId,
      outcome,
      durationMs: res.durationMs,
      tokens: (res.usage?.inputTokens ?? 0) + (res.usage?.outputTokens ?? 0),
      costUsd: res.usage?.costUsd ?? null,
    });
  }

  /** A run that did not end cleanly never advances: the writer retries it, or escalates. */
  private async runEnded(job: Job, res: LaunchResult, signal: AbortSignal): Promise<void> {
    const reason = signal.aborted ? (signal.reason as AbortReason) : null;
    // A cancelled job is closed already; a lost lease is another worker's to count.
    if (reason === 'cancel' || reason === 'lease_lost') return;
    if (reason === 'shutdown' || reason === 'reaped' || reason === 'redirect') {
      const cause = reason === 'redirect' ? 'human_message' : reason;
      await this.report(job, { kind: 'interrupted', cause, runId: res.runId });
      return;
    }
    // The provider's usage limit: the adapter pauses until the reset; the try is not counted.
    if (res.outcome === 'usage_limited' && res.usageLimit) {
      this.deps.log.warn(`run ${res.runId} hit a usage limit: ${res.usageLimit.message}`);
      await this.report(job, { kind: 'usage_limited', runId: res.runId, limit: res.usageLimit });
      return;
    }
    await this.report(job, {
      kind: 'run_failed',
      outcome: res.outcome,
      runId: res.runId,
      error: res.error ?? res.outcome,
    });
  }

  /**
   * The review's verdict on the current development run, as an attempt. Returns true when the
   * verdict was an approval and the stage's other gates still have their say.
   */
  private async review(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    plan: StagePlan,
    run: { id: number; resultText: string | null } | null,
    worktree: string,
  ): Promise<boolean> {
    const runs = await this.store.runsOfTask(task.id);
    let devRun = runs.filter((r) => r.agent === 'developer' && r.outcome === 'ok').at(-1);
    // Recorded before a crash: the approval of this development run stands, and is not reviewed again.
    if (await this.reviewRecorded(task.id)) return true;
    const reviewRun = runs.find((r) => r.id === run?.id);
    const n = (await this.store.attemptsOfTask(task.id)).length + 1;
    let verdict = parseVerdict(run?.resultText ?? null);
    // Candidates: the verdict names the passing one that goes on (the task branch moves to it),
    // and the attempt counts all of their runs.
    const record = (await candidatesOfTask(this.store, task.id)).get(n);
    let judgedRuns = [devRun, reviewRun];
    if (record) {
      const passing = record.candidates.filter((c) => c.result === 'passed');
      const choice = chooseCandidate(
        verdict,
        passing.map((c) => c.n),
      );
      verdict = choice;
      const pick = passing.find((c) => c.n === choice.chosen) ?? passing[0];
      devRun = runs.find((r) => r.id === pick?.runId);
      judgedRuns = [...runs.filter((r) => record.candidates.some((c) => c.runId === r.id)), reviewRun];
      if (choice.chosen !== null && pick) {
        await adoptCandidate(worktree, pick.ref);
        this.leftClean.delete(worktree);
        this.deps.log.info(`${task.key}: the reviewer chose candidate ${pick.n} of attempt ${n}`);
      }
    }
    const hash = devRun?.diff_hash ?? (await diffHash(worktree, rt.project.base_branch));
    const feedback = verdictFeedback(verdict);
    const attempt: AttemptRecord = {
      n,
      diffHash: hash,
      verdict: verdict.verdict,
      feedback,
      ...runTotals(judgedRuns.filter((r): r is AgentRun => r !== undefined)),
      reason: verdict.parseError,
    };
    this.deps.emit({ kind: 'verdict', key: task.key, attempt: n, verdict: attempt.verdict, diffHash: hash });
    if (plan.gates.includes('check_reviewer_verdict'))
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
    const outcome = await this.report(job, { kind: 'reviewed', attempt }, worktree, {
      dev: devRun?.id ?? null,
      review: run?.id ?? null,
    });
    return outcome.decision.kind === 'continue';
  }

  /** Runs the stage's gates in order and reports the first failure, or that all passed. */
  private async runGates(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    plan: StagePlan,
    worktree: string,
    signal: AbortSignal,
  ): Promise<void> {
    const needs = (gate: string) => plan.gates.includes(gate as GateRef);
    const approved =
      needs('check_human_approval') && (await this.store.isApproved(this.store.db, task.id, plan.name));
    const lastVerdict = needs('check_reviewer_verdict')
      ? ((await this.store.attemptsOfTask(task.id)).at(-1)?.verdict ?? null)
      : null;
    const development = job.stage === 'development' ? await this.developmentFacts(task, rt, worktree) : null;
    for (const ref of plan.gates) {
      if (signal.aborted) return this.abandoned(job, signal);
      if (runsCommand(ref)) this.leftClean.delete(worktree);
      const gate = await runGate(
        this.deps.ctx,
        rt,
        task,
        plan.name,
        ref,
        worktree,
        { approved, lastVerdict },
        { signal, workerId: this.deps.workerId, jobId: job.id },
      );
      // Stopped before it could decide (shutdown, cancel, a lost lease): neither passed nor failed.
      if (gate.interrupted) return this.abandoned(job, signal);
      this.deps.emit({ kind: 'gate', key: task.key, name: gate.name, passed: gate.passed });
      if (!gate.passed) {
        await this.report(
          job,
          {
            kind: 'gate_failed',
            gate: gate.name,
            output: gate.output,
            diffHash: development?.diffHash ?? null,
            ...(development ? { totals: development.totals } : {}),
          },
          worktree,
          development ? { dev: development.runId, review: null } : undefined,
        );
        return;
      }
    }
    if (signal.aborted) return this.abandoned(job, signal);
    await this.report(
      job,
      {
        kind: 'stage_passed',
        ...(development ? { diffHash: development.diffHash, totals: development.totals } : {}),
      },
      worktree,
      development ? { dev: development.runId, review: null } : undefined,
    );
  }

  /** Runs one of the project's hooks for this job (null when it has none). */
  private hook(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    name: 'after_create' | 'before_run' | 'after_run',
    worktree: string,
    signal: AbortSignal,
    role: string,
  ): Promise<HookResult | null> {
    return runHook(this.deps.ctx, rt, task, name, worktree, {
      stage: job.stage,
      role,
      signal,
      workerId: this.deps.workerId,
      jobId: job.id,
    });
  }

  /**
   * Runs `hooks.after_create` unless it already succeeded in this worktree (a marker in the
   * worktree's git directory). False when it failed: the try is over, and reported.
   */
  private async afterCreate(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    worktree: string,
    signal: AbortSignal,
    role: string,
  ): Promise<boolean> {
    const command = rt.raw.hooks.after_create;
    if (command === undefined || afterCreateDone(worktree, command)) return true;
    const hook = await this.hook(task, job, rt, 'after_create', worktree, signal, role);
    if (!hook || hook.ok) {
      markAfterCreateDone(worktree, command);
      return true;
    }
    await this.hookFailed(task, job, hook, signal);
    return false;
  }

  /**
   * A failed `after_create` or `before_run` fails the try like a failed run (counted against
   * `retry.max_retries`), with the hook's output as the feedback; one stopped by orch decided nothing.
   */
  private async hookFailed(task: Task, job: Job, hook: HookResult, signal: AbortSignal): Promise<void> {
    if (hook.interrupted || signal.aborted) return this.abandoned(job, signal);
    this.deps.log.warn(`${task.key}: ${hook.summary}`);
    await this.report(job, {
      kind: 'run_failed',
      outcome: hook.timedOut ? 'timeout' : 'failed',
      runId: null,
      error: hook.summary,
      feedback: hook.output,
    });
  }

  /**
   * A job stopped between steps: shutdown (and a person's message that came as its run ended)
   * gives its try back; a cancel or a lost lease leaves it be.
   */
  private async abandoned(job: Job, signal: AbortSignal): Promise<void> {
    const reason = signal.reason as AbortReason;
    if (reason === 'shutdown' || reason === 'reaped' || reason === 'redirect')
      await this.report(job, {
        kind: 'interrupted',
        cause: reason === 'redirect' ? 'human_message' : reason,
        runId: null,
      });
  }

  /** What an attempt judged by the development stage's own gates records: the diff and the run's figures. */
  private async developmentFacts(task: Task, rt: ProjectRuntime, worktree: string) {
    const devRun = (await this.store.runsOfTask(task.id))
      .filter((r) => r.agent === 'developer' && r.outcome === 'ok')
      .at(-1);
    return {
      runId: devRun?.id ?? null,
      diffHash: devRun?.diff_hash ?? (await diffHash(worktree, rt.project.base_branch)),
      totals: runTotals(devRun ? [devRun] : []),
    };
  }

  /**
   * The landing, a step of its own after the last stage: the branch lands on the base branch
   * here, or through a pull request when the project has a forge. A cancel recorded before the
   * merge stops it; CI still running is polled again later, without holding a worker.
   */
  private async land(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    worktree: string,
    signal: AbortSignal,
  ): Promise<void> {
    const startedAt = new Date().toISOString();
    this.leftClean.delete(worktree);
    const stillWanted = () => this.deps.transitions.beginLanding(job, this.deps.workerId);
    const landing = rt.raw.forge
      ? await this.landThroughForge(task, job, rt, worktree, signal, stillWanted)
      : await this.landOnBase(task, rt, worktree, stillWanted);
    if (landing.kind === 'cancelled') return;
    if (landing.kind === 'pending') {
      await this.report(job, { kind: 'land_pending', detail: landing.detail, pollMs: landing.pollMs });
      return;
    }
    if (landing.kind === 'changes_requested') {
      const { kind: _kind, ...review } = landing;
      await this.report(job, { kind: 'changes_requested', ...review });
      return;
    }
    const stage = rt.pipeline.stages.at(-1)?.name ?? job.stage;
    await recordGate(this.deps.ctx, task, stage, landing.gate, startedAt);
    this.deps.emit({ kind: 'gate', key: task.key, name: landing.gate.name, passed: landing.gate.passed });
    if (landing.kind === 'failed') {
      await this.report(job, {
        kind: 'land_failed',
        gate: landing.gate.name,
        output: landing.gate.output,
        feedback: landing.feedback,
      });
      return;
    }
    if (landing.pr) await this.recordPullRequest(task, landing.pr);
    const done = await this.report(job, { kind: 'landed' });
    if (done.applied && rt.pipeline.removeWorktrees)
      await removeTaskWorktree(this.deps.ctx, rt, task, worktree, this.deps.log, {
        workerId: this.deps.workerId,
        jobId: job.id,
      });
  }

  /** Lands the branch on the base branch with the project's merge strategy. */
  private async landOnBase(
    task: Task,
    rt: ProjectRuntime,
    worktree: string,
    stillWanted: () => Promise<boolean>,
  ): Promise<Landing> {
    const base = rt.project.base_branch;
    const merged = await landBranch(
      rt.project.root_path,
      worktree,
      taskBranch(task.key),
      base,
      rt.pipeline.mergeStrategy,
      stillWanted,
    );
    if (merged.ok)
      return {
        kind: 'landed',
        gate: {
          name: 'check_merge_clean',
          passed: true,
          output: `landed on ${base} at ${merged.commit.slice(0, 12)} (${rt.pipeline.mergeStrategy})`,
        },
      };
    if (merged.cancelled) return { kind: 'cancelled' };
    // Other landings kept moving origin's base: the work is fine, so the landing itself is tried
    // again a little later (a jittered wait, so the contenders spread out), not sent back.
    if (merged.contended)
      return {
        kind: 'pending',
        detail: `${base} on origin kept moving under the landing (other landings): landing again shortly`,
        pollMs: 500 + Math.floor(Math.random() * 2_000),
      };
    const output = merged.conflicts.length
      ? `The merge of ${base} is in progress in your worktree: resolve the conflict markers in ${merged.conflicts.join(', ')}, then finish the change.`
      : merged.message;
    return {
      kind: 'failed',
      gate: { name: 'check_merge_clean', passed: false, output },
      feedback: `The branch does not merge onto ${base}. ${output} Rework the change onto the new base.`,
    };
  }

  /** Lands the branch through the project's forge (orch.yaml `forge:`): a pull request, its CI, and the forge's merge. */
  private async landThroughForge(
    task: Task,
    job: Job,
    rt: ProjectRuntime,
    worktree: string,
    signal: AbortSignal,
    stillWanted: () => Promise<boolean>,
  ): Promise<Landing> {
    const cfg = rt.raw.forge!;
    // The reviews and comments the last rework answered, if not answered on the pull request yet.
    const asked = await this.store.lastEventOf(task.id, 'review_changes_requested');
    const answered = await this.store.lastEventOf(task.id, 'review_answered');
    const handled = asked && (!answered || answered.id < asked.id) ? (asked.payload.handled as string[]) : [];
    const outcome = await landViaForge({
      repo: rt.project.root_path,
      worktree,
      branch: taskBranch(task.key),
      base: rt.project.base_branch,
      forge: createForge(cfg, this.deps.ctx.env),
      config: cfg,
      title: `${task.key}: ${task.title}`,
      body: pullRequestBody(task),
      signal,
      // The CI wait is counted from when the landing was first queued, across polls.
      since: Date.parse(job.created_at),
      stillWanted,
      onPullRequest: (pr) => this.recordPullRequest(task, pr),
      answer: {
        handled,
        onAnswered: () =>
          this.store.tx((tx) => this.store.appendEvent(tx, task.id, 'review_answered', { handled })),
      },
    });
    if (outcome.ok)
      return {
        kind: 'landed',
        gate: { name: 'check_merge_clean', passed: true, output: outcome.detail },
        pr: outcome.pr,
      };
    if (outcome.pending) return { kind: 'pending', detail: outcome.message, pollMs: outcome.pollMs };
    if (outcome.cancelled) return { kind: 'cancelled' };
    if (outcome.changesRequested)
      return { kind: 'changes_requested', url: outcome.pr.url, ...outcome.changesRequested };
    return {
      kind: 'failed',
      gate: { name: outcome.gate, passed: false, output: outcome.message },
      feedback: `The pull request did not land. ${outcome.message} Fix the cause on the branch.`,
    };
  }

  /** A `pull_request` event each time the task's pull request is seen in a new state (opened, merged). */
  private async recordPullRequest(task: Task, pr: PullRequest): Promise<void> {
    await this.store.tx(async (tx) => {
      if (await this.store.hasEvent(tx, task.id, 'pull_request', prPayload(pr))) return;
      await this.store.appendEvent(tx, task.id, 'pull_request', prPayload(pr));
    });
  }
}
