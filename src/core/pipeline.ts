/**
 * The pipeline as a state machine. Every decision about where a task goes
 * next is made here, by one pure function: {@link decide} takes the project's
 * plan, the task's state and one event, and returns a
 * {@link Decision}. The runtime does the work (runs agents, gates, landings),
 * turns what happened into an event, and hands the decision to its one
 * writer, which applies it in one transaction. No I/O, no clock, no database.
 *
 * Words:
 * - **plan**: the enabled stages in order, each with its kind, role, adapter,
 *   failure route and approval, plus the caps that bound every loop.
 * - **job**: "work stage S of task T" (step `work`), or "land task T" (step
 *   `land`, after the last stage). A task has at most one live job.
 * - **try**: one claim of a job. Tries are counted when claimed, so a try
 *   whose worker died still counts; a graceful shutdown gives its try back.
 * - **failure**: a try that ended with a recorded failure (the agent failed,
 *   a command exited non-zero, git refused the commit).
 * - **interruption**: a try that ended without one (reaped, its orchestrator
 *   died, its lease was lost, orch itself threw): tries − failures − 1 at a
 *   claim.
 * - **attempt**: one development run and its judgment (the review's verdict,
 *   or the development stage's gates), recorded once.
 * - **late failure**: a gate, CI or landing failure after the attempt was
 *   judged: it sends the task back to development with feedback and is paid
 *   for by the next attempt, not recorded as one.
 * - **loop**: a failure route to a stage other than development; each route
 *   is capped by {@link Plan.maxLoops}.
 */
import { WORK_STAGES, type Role, type Stage, type TaskStatus, type WorkStage } from './stages.ts';
import { backoffMs, type RetryPolicy } from './backoff.ts';
import {
  budgetExhausted,
  judgeAttempt,
  type AttemptRecord,
  type Spend,
  type TaskBudget,
  type TerminalReason,
} from './build-loop.ts';
import type { RunOutcome } from './run-outcome.ts';
import type { Readiness } from './dependencies.ts';

export type StageKind = 'agent' | 'command' | 'human';

/** What the decisions need to know of a stage. */
export interface StageRoute {
  name: WorkStage;
  kind: StageKind;
  /** The role whose agent works an agent stage (a command stage may name one for its environment). */
  role: Role | null;
  /** The adapter an agent stage's jobs need (`agents.<role>.adapter`): workers claim by it. */
  adapter: string | null;
  /** Which of the adapter's credentials the role uses ('' for orch's own environment): a usage limit pauses one. */
  credential?: string;
  /** Where a failing gate sends the task. */
  onFail: 'escalate' | WorkStage;
  /** Wait for `orch task approve` before working the stage. */
  approval: boolean;
}

export interface Plan {
  /** The enabled stages, in pipeline order. */
  stages: readonly StageRoute[];
  /** Backoff and the cap on failed tries of one job (`retry.*`). */
  retry: RetryPolicy;
  /** Interrupted tries of one job (reaped, crashed, lease lost, orch's own error) before the task escalates. */
  maxInterruptions: number;
  /** Times a task may take one failure route to a stage other than development. */
  maxLoops: number;
  /** Daily USD limit of the project, or null. */
  projectUsdPerDay: number | null;
}

/** Defaults of the caps that are not part of the retry policy. */
export const DEFAULT_MAX_INTERRUPTIONS = 3;
export const DEFAULT_MAX_LOOPS = 3;

export type JobStep = 'work' | 'land';

/** A job to queue: what the writer inserts. Role and adapter come from the plan, here, and nowhere else. */
export interface JobSpec {
  stage: Stage;
  step: JobStep;
  /** The role to run, `command` for a command stage, `orch` for work without an agent. */
  agent: string;
  /** The adapter the job needs (workers with labels claim only theirs); null when any worker may. */
  adapter: string | null;
  /** The credential of the role's agent, for an adapter's job ('' or absent: orch's own environment). */
  credential?: string;
}

/** The job a decision is about, as claimed. */
export interface JobState {
  stage: Stage;
  step: JobStep;
  /** Claims of this job so far, this one included (a graceful shutdown gives one back). */
  tries: number;
  /** Tries that ended with a recorded failure. */
  failures: number;
  /** Tries a graceful shutdown gave back so far (each one cut off a run or a gate); read for a shutdown only. */
  givenBack?: number;
}

/** The task as the decisions see it. */
export interface TaskState {
  key: string;
  stage: Stage;
  status: TaskStatus;
  /** Recorded attempts, oldest first. */
  attempts: readonly AttemptRecord[];
  /** The budget the task runs with (the project's, raised by `orch task retry`). */
  budget: TaskBudget;
  spend: Spend;
  /** Failure routes taken so far, by `from>to`. */
  loops: Readonly<Record<string, number>>;
  /** An approval of the current stage is recorded (since the task last entered it). */
  approved: boolean;
  /** Why an escalated task stopped. */
  terminalReason: TerminalReason | null;
  /** The task has a queued or running job. */
  hasLiveJob: boolean;
  /** Its landing is moving the base now (past the last point a cancel could call it off). */
  landing?: boolean;
  /** Whether every task it depends on is done. */
  readiness: Readiness;
}

/**
 * What the last run of a claimed job left: a job whose run ended ok but was never decided resumes
 * at its gates, when its work is at hand (`here`: the run's worktree is this worker's). A run that
 * ended ok in another worker's worktree left its work there, uncommitted: the stage runs again.
 */
export type LastRun = { outcome: RunOutcome | null; here: boolean } | null;

/** Why a try stopped without a result of its own. */
export type InterruptCause =
  /** orch is stopping (SIGTERM, SIGINT): the try is given back. */
  | 'shutdown'
  /** This worker lost the job's lease: another holds it now. */
  | 'lease_lost'
  /** The reaper ended a run older than `ORCH_REAPER_MAX_RUNNING_S`. */
  | 'reaped'
  /** The worker holding the job died (found at start, or by its lease running out). */
  | 'worker_lost'
  /** A person's message asked to stop the run now (`orch task say --now`): not a try at all. */
  | 'human_message';

export type PipelineEvent =
  /** A worker claimed the job. */
  | { kind: 'claimed'; job: JobState; lastRun: LastRun; reviewDone?: boolean }
  /** The stage's run (an agent or a command) ended without success, or the work failed with feedback (git refused the commit). */
  | {
      kind: 'run_failed';
      job: JobState;
      outcome: RunOutcome;
      runId: number | null;
      error: string;
      /** Shown to the next run of the stage (git's refusal, say). */
      feedback?: string;
    }
  /**
   * The provider refused the run until a reset (a usage limit): not a try, not a failure. The
   * writer has worked out how long the adapter pauses (`pause`).
   */
  | { kind: 'usage_limited'; job: JobState; runId: number | null; adapter: string; pause: UsagePause }
  /** The try was cut off: the run (if any) is already recorded with its outcome. */
  | { kind: 'interrupted'; job: JobState; cause: InterruptCause; runId: number | null }
  /** orch itself threw while working the job. */
  | { kind: 'internal_error'; job: JobState; message: string }
  /** The reviewer's verdict on the current development run, as an attempt. */
  | { kind: 'reviewed'; job: JobState; attempt: AttemptRecord }
  /** A gate of the stage failed. `diffHash` is the task's diff when the stage is development. */
  | {
      kind: 'gate_failed';
      job: JobState;
      gate: string;
      output: string;
      diffHash: string | null;
      totals?: AttemptTotals;
    }
  /** Every gate of the stage passed. `totals` are the development run's figures when the stage is development. */
  | { kind: 'stage_passed'; job: JobState; diffHash?: string | null; totals?: AttemptTotals }
  /**
   * The development stage's candidates (`pipeline.development.candidates` > 1) ran, each judged by
   * the stage's gates in its own worktree. `totals` are all their runs' figures.
   */
  | { kind: 'candidates_ran'; job: JobState; candidates: readonly CandidateResult[]; totals: AttemptTotals }
  /** The branch landed (the merge, or the pull request's). */
  | { kind: 'landed'; job: JobState }
  /** The landing cannot finish yet (CI pending, a review awaited): poll again later. */
  | { kind: 'land_pending'; job: JobState; detail: string; pollMs: number }
  /** The landing failed: a conflict, red CI, a refused merge. */
  | { kind: 'land_failed'; job: JobState; gate: string; output: string; feedback: string }
  /** A person asked for changes on the pull request (a review, or comments on lines of the diff). */
  | { kind: 'changes_requested'; job: JobState; url: string; feedback: string; handled: readonly string[] }
  /** A task it depends on settled (done, escalated, cancelled) or an edge was removed: look again. */
  | { kind: 'blockers_changed' }
  /** A person approved the task's waiting stage. */
  | { kind: 'approve'; by: string }
  /** A person retried an escalated task, maybe with a raised budget. */
  | { kind: 'retry' }
  /** A person cancelled the task. */
  | { kind: 'cancel' };

/** How long an adapter's credential pauses for a usage limit, as the writer worked it out. */
export interface UsagePause {
  credential: string;
  /** From now until dispatch for it resumes. */
  ms: number;
  /** When that is, and now (ISO-8601 UTC), for the task's status line. */
  resumesAt: string;
  now: string;
  /** Limits in a row (for the doubling pause when no reset is named). */
  strikes: number;
  window: string | null;
  message: string;
}

/** "usage limit of claude-code (five_hour): resumes at 13:13 UTC" (with the date when not within a day). */
export function usagePauseDetail(adapter: string, pause: UsagePause): string {
  const at = new Date(pause.resumesAt);
  const hhmm = at.toISOString().slice(11, 16);
  const soon = Date.parse(pause.resumesAt) - Date.parse(pause.now) < 24 * 3_600_000;
  const when = soon ? `${hhmm} UTC` : `${at.toISOString().slice(0, 10)} ${hhmm} UTC`;
  return `usage limit of ${adapter}${pause.window ? ` (${pause.window})` : ''}: resumes at ${when}`;
}

/** The review on the forge a decision answers: its pull request and the reviews and comments handled. */
export interface ReviewNote {
  url: string;
  handled: readonly string[];
}

/** How one development candidate ended: its run failed, a gate failed, or every gate passed. */
export interface CandidateResult {
  /** 1-based, as the reviewer names it. */
  n: number;
  runId: number | null;
  result: 'passed' | 'gate_failed' | 'run_failed';
  /** The failed gate (gate_failed), or the run's outcome (run_failed). */
  gate: string | null;
  /** The gate's output or the run's error. */
  output: string;
  diffHash: string | null;
}

/** Tokens, cost and time of a development run, for an attempt judged by the development stage's gates. */
export interface AttemptTotals {
  inputTokens: number;
  outputTokens: number;
  costUsd: number | null;
  durationMs: number;
}

export type RetryCount =
  /** A failed try: counts against `retry.max_retries`. */
  | 'failure'
  /** A cut-off try: already counted by its claim, against the interruption cap. */
  | 'interruption'
  /** Not a try at all (a graceful shutdown, a poll): its claim is given back. */
  | 'none';

export type Decision =
  /** The job is stale (the task moved on, or ended): close it, change nothing else. */
  | { kind: 'drop'; detail: string }
  /** Do the job's work; `from: 'gates'` when its run already ended ok (a crash came before the decision). */
  | { kind: 'work'; from: 'run' | 'gates' }
  /** Record the attempt, then go on with the same job (the review's other gates). */
  | { kind: 'continue'; attempt: AttemptRecord }
  /**
   * Wait: for a person (`requeueInMs` null: no job until they act) or for the outside world (the
   * job polls again). With `pause`, the adapter's credential is paused for a usage limit too.
   */
  | {
      kind: 'wait';
      status: 'waiting' | 'blocked';
      detail: string;
      requeueInMs: number | null;
      pause?: UsagePause & { adapter: string };
    }
  /** The same job again after a delay. */
  | {
      kind: 'retry';
      delayMs: number;
      count: RetryCount;
      detail: string;
      feedback?: string;
      /** The try was stopped for a person's message: its claim is given back, and not as a shutdown's. */
      redirected?: boolean;
    }
  /** To another stage, with a job for it. */
  | {
      kind: 'advance';
      to: WorkStage;
      job: JobSpec;
      feedback: string | null;
      attempt?: AttemptRecord;
      /** The last recorded attempt, judged again (a person's review on the forge rejected it). */
      amend?: AttemptRecord;
      review?: ReviewNote;
      /** The failure route taken (`from>to`), counted against {@link Plan.maxLoops}. */
      loop?: string;
    }
  /** The last stage passed: queue the landing. */
  | { kind: 'land'; job: JobSpec; attempt?: AttemptRecord }
  | { kind: 'done' }
  | {
      kind: 'escalate';
      reason: TerminalReason;
      detail: string;
      feedback?: string;
      attempt?: AttemptRecord;
      amend?: AttemptRecord;
      review?: ReviewNote;
    }
  /** The job is no longer ours (another worker holds it now): write nothing. */
  | { kind: 'release' }
  /** A person's command: the task resumes at `stage` with a new job. */
  | { kind: 'resume'; job: JobSpec }
  | { kind: 'cancel' }
  /** A person's command that does not apply to the task as it is. */
  | { kind: 'refuse'; message: string };

const TERMINAL: readonly TaskStatus[] = ['done', 'cancelled', 'escalated'];

export const stageOf = (plan: Plan, stage: Stage): StageRoute | undefined =>
  plan.stages.find((s) => s.name === stage);

/** The enabled stage after `stage` (`created` comes before all), or `done`. */
export function nextStage(plan: Plan, stage: Stage): WorkStage | 'done' {
  const from = stage === 'created' ? -1 : WORK_STAGES.indexOf(stage as WorkStage);
  const enabled = new Set(plan.stages.map((s) => s.name));
  return WORK_STAGES.slice(from + 1).find((s) => enabled.has(s)) ?? 'done';
}

/** The job that works `stage` (or lands the task): its role and adapter, from the plan. */
export function jobFor(plan: Plan, stage: Stage, step: JobStep = 'work'): JobSpec {
  const s = stageOf(plan, stage);
  if (step === 'land' || !s || s.kind === 'human') return { stage, step, agent: 'orch', adapter: null };
  if (s.kind === 'command') return { stage, step, agent: 'command', adapter: null };
  return {
    stage,
    step,
    agent: s.role ?? 'orch',
    adapter: s.adapter,
    ...(s.credential ? { credential: s.credential } : {}),
  };
}

/**
 * The job that enters `stage`. A stage that waits for an approval first is anyone's to claim (its
 * adapter null): the claim only records the wait, so it must not need a worker with the role's
 * labels; the approval queues the job with its role's adapter.
 */
export function arrivalJob(plan: Plan, stage: Stage, approved = false): JobSpec {
  const spec = jobFor(plan, stage);
  return stageOf(plan, stage)?.approval && !approved ? { ...spec, adapter: null } : spec;
}

/** Which stage judges an attempt: review when it is enabled, else development's own gates. */
const judge = (plan: Plan): 'review' | 'development' => (stageOf(plan, 'review') ? 'review' : 'development');

const loopKey = (from: Stage, to: Stage): string => `${from}>${to}`;

/** The budget that ran out, or null. */
const exhausted = (plan: Plan, task: TaskState): string | null =>
  budgetExhausted(task.budget, task.spend, plan.projectUsdPerDay);

/** The only decision function. Pure: the same inputs give the same decision. */
export function decide(plan: Plan, task: TaskState, event: PipelineEvent): Decision {
  switch (event.kind) {
    case 'approve':
      return onApprove(plan, task);
    case 'retry':
      return onRetry(plan, task);
    case 'cancel':
      if (task.stage === 'done' || task.stage === 'cancelled')
        return { kind: 'refuse', message: `${task.key} is already ${task.stage}` };
      return task.landing
        ? {
            kind: 'refuse',
            message: `${task.key} is landing: its branch is being merged into the base now, so it can no longer be called off`,
          }
        : { kind: 'cancel' };
    case 'blockers_changed':
      return onBlockersChanged(plan, task);
    default:
      break;
  }
  const job = event.job;
  if (event.kind === 'interrupted' && event.cause === 'lease_lost') return { kind: 'release' };
  if (TERMINAL.includes(task.status)) return { kind: 'drop', detail: `task is ${task.stage}/${task.status}` };
  if (task.stage !== job.stage) return { kind: 'drop', detail: `stage already advanced to ${task.stage}` };
  switch (event.kind) {
    case 'claimed':
      return onClaimed(plan, task, event);
    case 'run_failed':
      return onRunFailed(plan, task, event);
    case 'interrupted':
      return onInterrupted(plan, event);
    case 'internal_error': {
      // Its claim counted the try; it ends now without a result of its own.
      const over = interruptionsOver(plan, job, 1);
      if (over) return { kind: 'escalate', reason: 'internal_error', detail: `${event.message} (${over})` };
      return {
        kind: 'retry',
        delayMs: 5_000,
        count: 'interruption',
        detail: `internal error: ${event.message}`,
      };
    }
    case 'reviewed':
      return onReviewed(plan, task, event.attempt);
    case 'gate_failed':
      return onGateFailed(plan, task, event);
    case 'stage_passed':
      return onStagePassed(plan, task, event);
    case 'candidates_ran':
      return onCandidatesRan(plan, task, event);
    case 'landed':
      return { kind: 'done' };
    case 'land_pending':
      return { kind: 'wait', status: 'waiting', detail: event.detail, requeueInMs: event.pollMs };
    case 'usage_limited':
      // Not the agent's failure nor the task's: the same job waits for the reset, uncounted.
      return {
        kind: 'wait',
        status: 'waiting',
        detail: usagePauseDetail(event.adapter, event.pause),
        requeueInMs: event.pause.ms,
        pause: { adapter: event.adapter, ...event.pause },
      };
    case 'land_failed':
      return backToDevelopment(plan, task, job.stage, event.gate, event.feedback);
    case 'changes_requested':
      return onChangesRequested(plan, task, event);
  }
}

/**
 * A person's "changes requested" on the pull request is the final judgment of the last attempt:
 * it is rejected after all, with their words as the feedback, and judged as a review's rejection
 * is (the same diff twice is no progress, A B A oscillation, budgets and attempts apply).
 */
function onChangesRequested(
  plan: Plan,
  task: TaskState,
  event: Extract<PipelineEvent, { kind: 'changes_requested' }>,
): Decision {
  const review: ReviewNote = { url: event.url, handled: event.handled };
  const last = task.attempts.at(-1);
  if (!last) {
    const d = backToDevelopment(plan, task, event.job.stage, 'review', event.feedback);
    return d.kind === 'advance' || d.kind === 'escalate' ? { ...d, review } : d;
  }
  const rejected: AttemptRecord = {
    ...last,
    verdict: 'rejected',
    feedback: event.feedback,
    reason: 'changes_requested',
  };
  const d = judged(plan, task.attempts.slice(0, -1), task, rejected, 'amend');
  return d.kind === 'advance' || d.kind === 'escalate' ? { ...d, review } : d;
}

/**
 * A task it depends on settled: a blocked task with no job resumes at its stage once every
 * blocker is done; otherwise it stays blocked, saying why now.
 */
function onBlockersChanged(plan: Plan, task: TaskState): Decision {
  if (task.status !== 'blocked' || task.hasLiveJob)
    return { kind: 'refuse', message: `${task.key} is not blocked` };
  if (!task.readiness.ready)
    return { kind: 'wait', status: 'blocked', detail: task.readiness.detail, requeueInMs: null };
  return { kind: 'resume', job: jobFor(plan, task.stage) };
}

/**
 * How many interruptions this job has had past the cap, as a sentence, or null within it.
 * `pending` counts a try that is ending now without being recorded as a failure.
 */
function interruptionsOver(plan: Plan, job: JobState, pending: number): string | null {
  const interrupted = job.tries - job.failures - 1 + pending;
  if (interrupted <= plan.maxInterruptions) return null;
  return `${interrupted} tries of ${job.stage} were cut off without a result, over retry.max_interruptions (${plan.maxInterruptions})`;
}

function onClaimed(
  plan: Plan,
  task: TaskState,
  event: Extract<PipelineEvent, { kind: 'claimed' }>,
): Decision {
  const { job } = event;
  const over = interruptionsOver(plan, job, 0);
  if (over) return { kind: 'escalate', reason: 'runs_interrupted', detail: over };
  // A task waits for the tasks it depends on before any of its work (not before its landing).
  if (job.step === 'work' && !task.readiness.ready)
    return { kind: 'wait', status: 'blocked', detail: task.readiness.detail, requeueInMs: null };
  if (job.stage === 'created') return { kind: 'work', from: 'run' };
  const stage = stageOf(plan, job.stage);
  // A stage disabled by a config edit since its job was queued is passed over.
  if (!stage) return forward(plan, job.stage);
  if (job.step === 'land') return { kind: 'work', from: 'run' };
  if ((stage.approval || stage.kind === 'human') && !task.approved)
    return {
      kind: 'wait',
      status: 'waiting',
      detail: `waiting for approval of ${stage.name}: orch task approve ${task.key}`,
      requeueInMs: null,
    };
  if (stage.kind === 'human') return { kind: 'work', from: 'run' };
  // A run that ended ok but was never decided (orch died in between) is not run again, where its work is.
  const resumeAtGates =
    (event.lastRun?.outcome === 'ok' && event.lastRun.here) ||
    (job.stage === 'review' && event.reviewDone === true);
  if (resumeAtGates) return { kind: 'work', from: 'gates' };
  if (job.stage === 'development' && task.attempts.length >= task.budget.maxAttempts)
    return {
      kind: 'escalate',
      reason: 'max_attempts',
      detail: attemptsUsed(task),
    };
  const spent = exhausted(plan, task);
  if (spent) return { kind: 'escalate', reason: 'budget_exhausted', detail: spent };
  return { kind: 'work', from: 'run' };
}

/** "5 of 5 attempts used" and how the last one ended. */
function attemptsUsed(task: TaskState): string {
  const last = task.attempts.at(-1);
  const used = `${task.attempts.length} of ${task.budget.maxAttempts} attempts used`;
  if (!last) return used;
  if (last.verdict === 'approved') return `${used}; the last was approved, then failed later in the pipeline`;
  return `${used}, all rejected`;
}

function onRunFailed(
  plan: Plan,
  task: TaskState,
  event: Extract<PipelineEvent, { kind: 'run_failed' }>,
): Decision {
  const { job } = event;
  if (event.outcome === 'over_budget')
    return {
      kind: 'escalate',
      reason: 'budget_exhausted',
      detail: `run ${event.runId ?? '?'} was stopped when its cost crossed the task's remaining budget: ${event.error}`,
    };
  const failures = job.failures + 1;
  if (failures > plan.retry.maxRetries)
    return {
      kind: 'escalate',
      reason: 'agent_failure',
      detail: `${job.stage} failed ${failures} times; last: ${event.error}`,
      ...(event.feedback ? { feedback: event.feedback } : {}),
    };
  const delayMs = backoffMs(plan.retry, failures);
  return {
    kind: 'retry',
    delayMs,
    count: 'failure',
    detail: `retrying ${job.stage} in ${delayMs} ms: ${event.error}`,
    ...(event.feedback ? { feedback: event.feedback } : {}),
  };
}

function onInterrupted(plan: Plan, event: Extract<PipelineEvent, { kind: 'interrupted' }>): Decision {
  // A person stopped the run to say something: the stage runs again at once with their message,
  // and the try is given back (neither a failure nor an interruption). Each stop takes a message
  // a person typed (a job honours one stop per message), so this cannot loop on its own.
  if (event.cause === 'human_message')
    return {
      kind: 'retry',
      delayMs: 0,
      count: 'none',
      detail: `run ${event.runId ?? '?'} was stopped for a person's message: running ${event.job.stage} again with it`,
      redirected: true,
    };
  // A shutdown gives its try back, as many times as retry.max_interruptions allows a job; past
  // that, shutdowns count like any interruption, so a run that keeps stopping orch (an agent
  // that signals it) cannot be run again at every restart without end.
  if (event.cause === 'shutdown' && (event.job.givenBack ?? 0) < plan.maxInterruptions)
    return { kind: 'retry', delayMs: 0, count: 'none', detail: 'interrupted by shutdown' };
  const over = interruptionsOver(plan, event.job, 1);
  if (over) return { kind: 'escalate', reason: 'runs_interrupted', detail: over };
  return {
    kind: 'retry',
    delayMs: 0,
    count: 'interruption',
    detail: `run ${event.runId ?? '?'} was ${event.cause === 'reaped' ? 'reaped' : 'interrupted'}: trying again`,
  };
}

function onReviewed(plan: Plan, task: TaskState, attempt: AttemptRecord): Decision {
  return judged(plan, task.attempts, task, attempt, 'attempt');
}

/**
 * What the build loop makes of a judged attempt (`judgeAttempt`): an approval goes on with the
 * stage; a rejection goes back to development with its feedback, or stops the loop with the
 * reason it gives. `as` says whether the attempt is recorded new or amends the last one.
 */
function judged(
  plan: Plan,
  earlier: readonly AttemptRecord[],
  task: TaskState,
  attempt: AttemptRecord,
  as: 'attempt' | 'amend',
): Decision {
  const verdict = judgeAttempt(earlier, attempt, task.budget, task.spend, plan.projectUsdPerDay);
  if (verdict.kind === 'approved') return { kind: 'continue', attempt };
  if (verdict.kind === 'stop')
    return {
      kind: 'escalate',
      reason: verdict.reason,
      detail: verdict.detail,
      feedback: attempt.feedback,
      [as]: { ...attempt, reason: verdict.reason },
    };
  return {
    kind: 'advance',
    to: 'development',
    job: jobFor(plan, 'development'),
    feedback: verdict.feedback,
    [as]: { ...attempt },
  };
}

function onStagePassed(
  plan: Plan,
  task: TaskState,
  event: Extract<PipelineEvent, { kind: 'stage_passed' }>,
): Decision {
  const from = event.job.stage;
  let attempt: AttemptRecord | undefined;
  if (from === 'development' && judge(plan) === 'development') {
    // Without a review stage, the development stage's gates judge the attempt.
    attempt = {
      n: task.attempts.length + 1,
      diffHash: event.diffHash ?? '',
      verdict: 'approved',
      feedback: '',
      ...(event.totals ?? { inputTokens: 0, outputTokens: 0, costUsd: null, durationMs: 0 }),
      reason: null,
    };
  }
  if (from === 'development') {
    const spent = exhausted(plan, task);
    if (spent)
      return { kind: 'escalate', reason: 'budget_exhausted', detail: spent, ...(attempt ? { attempt } : {}) };
  }
  const fwd = forward(plan, from);
  return attempt && (fwd.kind === 'advance' || fwd.kind === 'land') ? { ...fwd, attempt } : fwd;
}

/**
 * The development candidates ran. One passing candidate is enough to go on to the review, which
 * chooses among the passing ones; with none, a gate that failed judges the attempt (the failures
 * of all candidates as its feedback), and when every run failed, the try failed.
 */
function onCandidatesRan(
  plan: Plan,
  task: TaskState,
  event: Extract<PipelineEvent, { kind: 'candidates_ran' }>,
): Decision {
  const { job, candidates } = event;
  const passing = candidates.filter((c) => c.result === 'passed');
  if (passing.length > 0) {
    // Only a reviewer chooses among candidates: without a review stage there is no one to.
    if (judge(plan) !== 'review')
      return {
        kind: 'escalate',
        reason: 'gate_failure',
        detail: `${passing.length} development candidates passed, but no review stage is enabled to choose one`,
      };
    return onStagePassed(plan, task, { kind: 'stage_passed', job, totals: event.totals });
  }
  const failedGates = candidates.filter((c) => c.result === 'gate_failed');
  if (failedGates.length === 0) {
    const overBudget = candidates.find((c) => c.gate === 'over_budget');
    return onRunFailed(plan, task, {
      kind: 'run_failed',
      job,
      outcome: overBudget ? 'over_budget' : 'failed',
      runId: overBudget?.runId ?? candidates.at(-1)?.runId ?? null,
      error: `all ${candidates.length} candidates failed: ${candidates.map((c) => `#${c.n} ${c.output}`).join('; ')}`,
    });
  }
  const output = failedGates
    .map((c) => `Candidate ${c.n}: the gate ${c.gate} failed. Its output:\n\n${c.output}`)
    .join('\n\n');
  return onGateFailed(plan, task, {
    kind: 'gate_failed',
    job,
    gate: failedGates[0]!.gate ?? 'gate',
    output,
    // The same candidates twice is no progress: the attempt's diff is all of theirs together.
    diffHash: failedGates.map((c) => c.diffHash ?? '').join('+'),
    totals: event.totals,
  });
}

/** To the stage after `from`, or to the landing after the last one. */
function forward(plan: Plan, from: Stage): Decision {
  const to = nextStage(plan, from);
  const last = plan.stages.at(-1)?.name ?? 'development';
  if (to === 'done') return { kind: 'land', job: jobFor(plan, from === 'created' ? last : from, 'land') };
  return { kind: 'advance', to, job: arrivalJob(plan, to), feedback: null };
}

function onGateFailed(
  plan: Plan,
  task: TaskState,
  event: Extract<PipelineEvent, { kind: 'gate_failed' }>,
): Decision {
  const from = event.job.stage as WorkStage;
  const stage = stageOf(plan, from);
  const feedback = `The gate ${event.gate} failed at ${from}. Its output:\n\n${event.output}`;
  const route = stage?.onFail ?? 'escalate';
  if (route === 'escalate')
    return {
      kind: 'escalate',
      reason: from === 'architecture' ? 'design_rejected' : 'gate_failure',
      detail: `${event.gate} failed at ${from}: ${event.output}`,
      feedback,
    };
  if (route === 'development' && from === 'development') {
    // The development stage's own gate judges the attempt.
    const attempt: AttemptRecord = {
      n: task.attempts.length + 1,
      diffHash: event.diffHash ?? '',
      verdict: 'rejected',
      feedback,
      ...(event.totals ?? { inputTokens: 0, outputTokens: 0, costUsd: null, durationMs: 0 }),
      reason: event.gate,
    };
    return judged(plan, task.attempts, task, attempt, 'attempt');
  }
  if (route === 'development') return backToDevelopment(plan, task, from, event.gate, feedback);
  // A route to another stage is a loop of its own, capped, and paid for from the task's budget.
  const key = loopKey(from, route);
  const taken = (task.loops[key] ?? 0) + 1;
  if (taken > plan.maxLoops)
    return {
      kind: 'escalate',
      reason: 'gate_failure',
      detail: `${event.gate} failed at ${from}; the route back to ${route} was taken ${taken - 1} times, the most budget.max_loops (${plan.maxLoops}) allows`,
      feedback,
    };
  const spent = exhausted(plan, task);
  if (spent) return { kind: 'escalate', reason: 'budget_exhausted', detail: spent, feedback };
  return { kind: 'advance', to: route, job: arrivalJob(plan, route), feedback, loop: key };
}

/**
 * A late failure (after the attempt was judged: a later gate, the landing, CI): back to
 * development with the feedback, paid for by the next attempt.
 */
function backToDevelopment(
  plan: Plan,
  task: TaskState,
  from: Stage,
  gate: string,
  feedback: string,
): Decision {
  if (task.attempts.length >= task.budget.maxAttempts)
    return {
      kind: 'escalate',
      reason: 'max_attempts',
      detail: `${gate} failed at ${from} and ${attemptsUsed(task)}`,
      feedback,
    };
  const spent = exhausted(plan, task);
  if (spent) return { kind: 'escalate', reason: 'budget_exhausted', detail: spent, feedback };
  return { kind: 'advance', to: 'development', job: jobFor(plan, 'development'), feedback };
}

function onApprove(plan: Plan, task: TaskState): Decision {
  if (task.status !== 'waiting' || task.hasLiveJob)
    return {
      kind: 'refuse',
      message: `${task.key} is not waiting for an approval (it is ${task.status} at ${task.stage})`,
    };
  const stage = stageOf(plan, task.stage);
  if (!stage || !(stage.approval || stage.kind === 'human'))
    return { kind: 'refuse', message: `${task.key} is waiting, but ${task.stage} needs no approval` };
  return { kind: 'resume', job: jobFor(plan, task.stage) };
}

function onRetry(plan: Plan, task: TaskState): Decision {
  if (task.status !== 'escalated')
    return {
      kind: 'refuse',
      message: `${task.key} is ${task.status}; only an escalated task can be retried`,
    };
  // A task stopped by the build loop's judgment (a review, or a late failure after one) resumes
  // at the next attempt's development; one stopped elsewhere works its stage again.
  const loopStop = ['max_attempts', 'no_progress', 'oscillation_detected'].includes(
    task.terminalReason ?? '',
  );
  const stage: Stage = task.stage === 'review' || loopStop ? 'development' : task.stage;
  if (stage === 'created' || stage === 'done' || stage === 'cancelled' || stageOf(plan, stage))
    return { kind: 'resume', job: arrivalJob(plan, stage, task.approved) };
  // The stage was disabled since: resume at the next one that is enabled.
  const next = nextStage(plan, stage);
  return next === 'done'
    ? { kind: 'resume', job: jobFor(plan, plan.stages.at(-1)?.name ?? 'development', 'land') }
    : { kind: 'resume', job: arrivalJob(plan, next) };
}
