/**
 * A task's budget and its terminal packet as the store holds them: used by the
 * engine when it writes the packet next to the ledger, and by the tracker
 * channel when it posts the packet as the escalation comment.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { paths, type OrchContext, type ProjectRuntime } from './context.ts';
import { diffStat } from './git.ts';
import { LEDGER_FILE } from './ledger.ts';
import type { Attempt, Task } from '../store/schema.ts';
import type { AttemptRecord, TaskBudget, TerminalReason } from '../core/build-loop.ts';
import { renderTerminalPacket } from '../core/terminal-packet.ts';

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
  });
}
