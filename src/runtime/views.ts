/**
 * The stable JSON shapes of tasks, runs and attempts, shared by the CLI's
 * `--json` output and the HTTP API. Documented in docs/cli.md.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { OrchContext } from './context.ts';
import { paths } from './context.ts';
import type { AgentRun, Attempt, GateResult, OrchEvent, Project, Task } from '../store/schema.ts';
import { LEDGER_FILE } from './ledger.ts';
import { taskBranch } from './git.ts';
import { taskDependencies } from './dependencies.ts';

export const runView = (r: AgentRun) => ({
  id: r.id,
  role: r.agent,
  stage: r.stage,
  attempt: r.attempt,
  adapter: r.adapter,
  status: r.status,
  outcome: r.outcome,
  exit_code: r.exit_code,
  model: r.model,
  effort: r.effort,
  variant: r.variant,
  timeout_s: r.timeout_s,
  pid: r.pid,
  input_tokens: r.input_tokens,
  output_tokens: r.output_tokens,
  cache_read_tokens: r.cache_read_tokens,
  cache_write_tokens: r.cache_write_tokens,
  cost_usd: r.cost_usd,
  session_id: r.session_id,
  num_turns: r.num_turns,
  diff_hash: r.diff_hash,
  started_at: r.started_at,
  finished_at: r.finished_at,
  log_path: r.log_path,
  error: r.error,
});

export const attemptView = (a: Attempt) => ({
  n: a.n,
  diff_hash: a.diff_hash,
  verdict: a.verdict,
  feedback: a.feedback,
  input_tokens: a.input_tokens,
  output_tokens: a.output_tokens,
  cost_usd: a.cost_usd,
  duration_ms: a.duration_ms,
  reason: a.reason,
  created_at: a.created_at,
});

export const gateView = (g: GateResult) => ({
  name: g.name,
  stage: g.stage,
  passed: g.passed === 1,
  output_tail: g.output_tail,
  started_at: g.started_at,
  finished_at: g.finished_at,
});

/** A hook's failure (a `hook_failed` event): which hook, how it ended, its output's tail, redacted. */
export function hookFailureView(e: OrchEvent) {
  const p = JSON.parse(e.payload) as Record<string, unknown>;
  const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return {
    id: e.id,
    hook: String(p.hook ?? ''),
    stage: text(p.stage),
    role: text(p.role),
    outcome: String(p.outcome ?? 'failed'),
    exit_code: typeof p.exit_code === 'number' ? p.exit_code : null,
    signal: text(p.signal),
    fatal: p.fatal === true,
    sandbox_role: text(p.sandbox_role),
    summary: String(p.summary ?? ''),
    log_path: text(p.log_path),
    output_tail: String(p.output_tail ?? ''),
    created_at: e.created_at,
  };
}

export const taskSummary = (t: Task, project?: Project) => ({
  key: t.key,
  title: t.title,
  project: project?.name ?? null,
  stage: t.stage,
  status: t.status,
  terminal_reason: t.terminal_reason,
  attempt: t.attempt,
  priority: t.priority,
  created_at: t.created_at,
  updated_at: t.updated_at,
});

export async function taskDetail(ctx: OrchContext, task: Task) {
  const project = await ctx.store.getProject(task.project_id);
  const [runs, attempts, gates, dependencies, messages, hookFailures] = await Promise.all([
    ctx.store.runsOfTask(task.id),
    ctx.store.attemptsOfTask(task.id),
    ctx.store.gatesOfTask(task.id),
    taskDependencies(ctx, task),
    ctx.store.humanMessages(task.id),
    ctx.store.reports.eventsOfTask(task.id, 'hook_failed'),
  ]);
  const dir = paths.artifacts(project, task);
  const packet = join(dir, 'terminal-packet.md');
  const ledger = join(dir, LEDGER_FILE);
  const totals = runs.reduce(
    (s, r) => ({
      input_tokens: s.input_tokens + (r.input_tokens ?? 0),
      output_tokens: s.output_tokens + (r.output_tokens ?? 0),
      cost_usd: s.cost_usd + (r.cost_usd ?? 0),
    }),
    { input_tokens: 0, output_tokens: 0, cost_usd: 0 },
  );
  return {
    ...taskSummary(task, project),
    description: task.description,
    labels: JSON.parse(task.labels) as string[],
    status_detail: task.status_detail,
    feedback: task.feedback,
    branch: taskBranch(task.key),
    started_at: task.started_at,
    finished_at: task.finished_at,
    totals,
    ...dependencies,
    runs: runs.map(runView),
    attempts: attempts.map(attemptView),
    gates: gates.map(gateView),
    hook_failures: hookFailures.map(hookFailureView),
    messages,
    artifacts: {
      ledger: existsSync(ledger) ? ledger : null,
      terminal_packet: existsSync(packet) ? packet : null,
    },
  };
}
