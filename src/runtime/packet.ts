/**
 * A task's budget, its attempt ledger file and its terminal packet as the
 * store holds them: written by the state machine's writer after every
 * attempt and every escalation, and read by the tracker channel when it
 * posts the packet as the escalation comment.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { paths, type OrchContext, type ProjectRuntime } from './context.ts';
import { diffStat } from './git.ts';
import { handoffText, LEDGER_FILE, ledgerHeader, syncLedger, type LedgerCandidate } from './ledger.ts';
import { candidatesOfTask } from './candidates.ts';
import { replaceFile } from '../io/worktree-files.ts';
import type { Attempt, Task } from '../store/schema.ts';
import type { AttemptRecord, TaskBudget, TerminalReason } from '../core/build-loop.ts';
import { elapsedMs } from '../core/stages.ts';
import { renderTerminalPacket, type PacketCandidate } from '../core/terminal-packet.ts';

/** The budget of a task: the project's, raised by `orch task retry` overrides. */
export function taskBudget(rt: ProjectRuntime, task: Task): TaskBudget {
  const overrides = task.budget_json ? (JSON.parse(task.budget_json) as Partial<TaskBudget>) : {};
  return { ...rt.config.budget, ...overrides };
}

export const attemptRecord = (a: Attempt): AttemptRecord => ({
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

/**
 * The terminal packet (Markdown) of an escalated task as the store holds it now, with the diff
 * stat of its worktree when this host has it (a worker on another host leaves it out).
 */
export async function terminalPacketText(ctx: OrchContext, task: Task, rt: ProjectRuntime): Promise<string> {
  const worktree = paths.worktree(ctx, rt.project, task);
  const attempts = (await ctx.store.attemptsOfTask(task.id)).map(attemptRecord);
  return renderTerminalPacket({
    taskKey: task.key,
    title: task.title,
    stage: task.stage,
    reason: (task.terminal_reason ?? 'agent_failure') as TerminalReason,
    detail: task.status_detail ?? '',
    attempts,
    lastFeedback: attempts.at(-1)?.feedback ?? task.feedback,
    diffStat: existsSync(worktree) ? await diffStat(worktree, rt.project.base_branch) : '',
    ledgerPath: join(paths.artifacts(rt.project, task), LEDGER_FILE),
    budget: taskBudget(rt, task),
    runs: (await ctx.store.runsOfTask(task.id)).map((r) => ({
      id: r.id,
      role: r.agent,
      stage: r.stage,
      outcome: r.outcome,
      tokens: (r.input_tokens ?? 0) + (r.output_tokens ?? 0),
      costUsd: r.cost_usd,
      durationMs: elapsedMs(r),
      error: r.error,
    })),
    failedGates: (await ctx.store.gatesOfTask(task.id))
      .filter((g) => !g.passed)
      .map((g) => ({ stage: g.stage, name: g.name, output: g.output_tail })),
    candidates: await taskCandidates(ctx, task.id),
  });
}

/**
 * The task's development candidates, attempt by attempt, each marked chosen when its run is the
 * one the attempt's approval went on with.
 */
async function taskCandidates(ctx: OrchContext, taskId: number): Promise<PacketCandidate[]> {
  const attempts = new Map((await ctx.store.attemptsOfTask(taskId)).map((a) => [a.n, a]));
  const out: PacketCandidate[] = [];
  for (const [n, record] of await candidatesOfTask(ctx.store, taskId)) {
    const a = attempts.get(n);
    for (const c of record.candidates)
      out.push({
        attempt: n,
        n: c.n,
        runId: c.runId,
        result: c.result,
        gate: c.gate,
        diffHash: c.diffHash,
        chosen: a?.verdict === 'approved' && c.runId !== null && a.dev_run_id === c.runId,
        ref: c.ref,
      });
  }
  return out;
}

/** Brings the task's ledger file in line with the database. Returns its path. */
export async function writeLedger(ctx: OrchContext, task: Task, rt: ProjectRuntime): Promise<string> {
  const fresh = await ctx.store.getTask(task.id);
  const dir = paths.artifacts(rt.project, fresh);
  // The architect's ADR is an agent's file: read as untrusted input (regular files only, capped).
  const handoff = await handoffText(paths.worktree(ctx, rt.project, fresh), fresh);
  const header = ledgerHeader(fresh, { budget: rt.config.budget, retry: rt.config.retry }, handoff);
  const byAttempt = new Map<number, LedgerCandidate[]>();
  for (const c of await taskCandidates(ctx, fresh.id)) {
    const list = byAttempt.get(c.attempt) ?? [];
    list.push({
      n: c.n,
      run_id: c.runId,
      result: c.result,
      gate: c.gate,
      diff_hash: c.diffHash,
      ref: c.ref,
      chosen: c.chosen,
    });
    byAttempt.set(c.attempt, list);
  }
  return syncLedger(dir, header, await ctx.store.attemptsOfTask(fresh.id), byAttempt);
}

/** Writes the ledger and the terminal packet of an escalated task. Returns the packet's path. */
export async function writeTerminalPacket(ctx: OrchContext, task: Task, rt: ProjectRuntime): Promise<string> {
  const dir = paths.artifacts(rt.project, task);
  mkdirSync(dir, { recursive: true });
  await writeLedger(ctx, task, rt);
  const path = join(dir, 'terminal-packet.md');
  await replaceFile(path, await terminalPacketText(ctx, task, rt));
  return path;
}
