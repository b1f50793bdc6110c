/**
 * Task services shared by the CLI and the HTTP API: pick a project, add,
 * cancel and retry a task. Each state change is one store transaction.
 */
import { paths, type OrchContext } from './context.ts';
import { removeCleanWorktree } from './git.ts';
import { hasControlCharacters, MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS } from '../core/text.ts';
import { OrchError } from '../errors.ts';
import type { Project, Task } from '../store/schema.ts';
import { killProcessGroup, processGroupAlive } from './process/run-agent-process.ts';
import { STAGE_ROLE, type Stage } from '../core/stages.ts';

export async function pickProject(ctx: OrchContext, name?: string): Promise<Project> {
  const projects = await ctx.store.listProjects();
  if (name) {
    const p = projects.find((x) => x.name === name);
    if (!p)
      throw new OrchError(
        'unknown_project',
        `no project named ${JSON.stringify(name)} (known: ${projects.map((x) => x.name).join(', ') || 'none'})`,
      );
    return p;
  }
  if (projects.length === 1) return projects[0]!;
  if (projects.length === 0)
    throw new OrchError('not_initialized', 'no project registered: run `orch init` in a git repository');
  throw new OrchError(
    'ambiguous_project',
    `several projects are registered (${projects.map((x) => x.name).join(', ')}): choose one with --project`,
  );
}

export async function addTask(
  ctx: OrchContext,
  title: string,
  opts: { description?: string; project?: string; priority?: number; labels?: string[] },
): Promise<Task> {
  if (!title.trim()) throw new OrchError('invalid_argument', 'a task needs a non-empty title');
  if (title.length > MAX_TITLE_CHARS)
    throw new OrchError(
      'invalid_argument',
      `a task title is at most ${MAX_TITLE_CHARS} characters (got ${title.length})`,
    );
  const description = opts.description ?? '';
  if (description.length > MAX_DESCRIPTION_CHARS)
    throw new OrchError(
      'invalid_argument',
      `a task description is at most ${MAX_DESCRIPTION_CHARS} characters (got ${description.length})`,
    );
  for (const [what, text] of [
    ['title', title],
    ['description', description],
  ] as const)
    if (hasControlCharacters(text))
      throw new OrchError(
        'invalid_argument',
        `a task ${what} may not hold control characters (NUL, escape sequences); tab and newlines are fine`,
      );
  const project = await pickProject(ctx, opts.project);
  return ctx.store.createTask({
    projectId: project.id,
    title: title.trim(),
    description,
    priority: opts.priority ?? 0,
    labels: opts.labels ?? [],
  });
}

/** Cancels a task: its stage becomes `cancelled`, its jobs end, and its running agent is stopped. */
export async function cancelTask(ctx: OrchContext, key: string): Promise<Task> {
  const task = await ctx.store.getTaskByKey(key);
  if (task.stage === 'done' || task.stage === 'cancelled')
    throw new OrchError('invalid_state', `${key} is already ${task.stage}`);
  await ctx.store.tx(async (tx) => {
    const current = await ctx.store.getTask(task.id, tx);
    await ctx.store.advanceStage(tx, current, 'cancelled', {
      status: 'cancelled',
      terminal_reason: 'cancelled',
      finished_at: new Date().toISOString(),
    });
    await ctx.store.cancelJobsOfTask(tx, task.id);
  });
  const rt = await ctx.projectRuntime(task.project_id);
  for (const run of await ctx.store.runsOfTask(task.id)) {
    if (run.status === 'running' && run.pgid && processGroupAlive(run.pgid)) {
      await killProcessGroup(run.pgid, rt.config.timeouts.agentKillGraceSeconds);
    }
  }
  // The worktree goes too, unless it holds uncommitted work (its commits stay on orch/<KEY>).
  const project = await ctx.store.getProject(task.project_id);
  if (rt.pipeline.removeWorktrees)
    await removeCleanWorktree(project.root_path, paths.worktree(ctx, project, task), { info: () => {} });
  return ctx.store.getTask(task.id);
}

/**
 * Retries an escalated task with an optionally raised budget. A task stopped
 * in the build loop resumes at the next attempt (the ledger is kept); one
 * stopped elsewhere reruns its stage.
 */
export async function retryTask(
  ctx: OrchContext,
  key: string,
  raise: { maxAttempts?: number; maxUsd?: number; maxTokens?: number; maxWallS?: number },
): Promise<Task> {
  const task = await ctx.store.getTaskByKey(key);
  if (task.status !== 'escalated')
    throw new OrchError('invalid_state', `${key} is ${task.status}; only an escalated task can be retried`);
  const project = await ctx.store.getProject(task.project_id);
  const budget = { ...(task.budget_json ? (JSON.parse(task.budget_json) as Record<string, number>) : {}) };
  if (raise.maxAttempts !== undefined) budget.maxAttempts = raise.maxAttempts;
  if (raise.maxUsd !== undefined) budget.maxUsd = raise.maxUsd;
  if (raise.maxTokens !== undefined) budget.maxTokens = raise.maxTokens;
  if (raise.maxWallS !== undefined) budget.maxWallS = raise.maxWallS;
  const stage: Stage = task.stage === 'review' ? 'development' : (task.stage as Stage);
  await ctx.store.tx(async (tx) => {
    const current = await ctx.store.getTask(task.id, tx);
    const changes = {
      status: 'queued',
      terminal_reason: null,
      status_detail: null,
      finished_at: null,
    } as const;
    if (stage !== current.stage) await ctx.store.advanceStage(tx, current, stage, changes);
    await ctx.store.updateTask(tx, task.id, { ...changes, budget_json: JSON.stringify(budget) });
    await ctx.store.enqueueJob(tx, { task, stage, agent: STAGE_ROLE[stage] ?? 'orch', repo: project.name });
    await ctx.store.appendEvent(tx, task.id, 'task_retried', { stage, budget });
  });
  return ctx.store.getTask(task.id);
}
