/**
 * Task services shared by the CLI and the HTTP API: pick a project, add a
 * task, and a person's commands on one (cancel, retry, approve), which the
 * state machine's writer decides and applies.
 */
import { paths, type OrchContext } from './context.ts';
import { taskBranch } from './git.ts';
import { removeTaskWorktree } from './hooks.ts';
import {
  hasControlCharacters,
  MAX_DESCRIPTION_CHARS,
  MAX_MESSAGE_CHARS,
  MAX_TITLE_CHARS,
} from '../core/text.ts';
import { OrchError } from '../errors.ts';
import type { Project, Task } from '../store/schema.ts';
import { killProcessGroup, processGroupAlive } from './process/run-agent-process.ts';
import { diedOnThisHost } from './worker-id.ts';
import { Transitions, type BudgetRaise } from './transitions.ts';

const quiet = { info: () => {}, warn: () => {} };
const writer = (ctx: OrchContext) => new Transitions({ ctx, log: quiet });

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
  opts: {
    description?: string;
    project?: string;
    priority?: number;
    labels?: string[];
    /** Ids of tasks of the same project it waits for (checked by the caller). */
    dependsOn?: readonly number[];
  },
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
    ...(opts.dependsOn?.length ? { dependsOn: opts.dependsOn } : {}),
  });
}

/**
 * Cancels a task: final. Its stage becomes `cancelled` and its jobs end; a run or gate in flight
 * is stopped by the worker running it, which learns of the cancel within about a quarter of a
 * second (`Scheduler.lookSoon`; its heartbeat at the latest), and whatever it finishes later is
 * recorded and ignored. Only a run whose worker died on this host is killed here: a process group
 * id recorded on another host (or in another PID namespace) names none of ours, and a live worker
 * ends its own runs without this command waiting out their kill grace.
 */
export async function cancelTask(ctx: OrchContext, key: string): Promise<Task> {
  const task = await writer(ctx).cancel(key);
  const rt = await ctx.projectRuntime(task.project_id);
  for (const run of await ctx.store.runsOfTask(task.id)) {
    if (
      run.status === 'running' &&
      run.pgid &&
      diedOnThisHost(run.worker_id) &&
      processGroupAlive(run.pgid)
    ) {
      await killProcessGroup(run.pgid, rt.config.timeouts.agentKillGraceSeconds);
    }
  }
  // The worktree goes too, unless it holds uncommitted work (its commits stay on orch/<KEY>).
  const project = await ctx.store.getProject(task.project_id);
  if (rt.pipeline.removeWorktrees) {
    const cancelled = await ctx.store.getTask(task.id);
    await removeTaskWorktree(ctx, rt, cancelled, paths.worktree(ctx, project, task), {
      info: () => {},
      warn: (m) => process.emitWarning(m, 'OrchHook'),
    });
  }
  return ctx.store.getTask(task.id);
}

/**
 * Retries an escalated task with an optionally raised budget. A task stopped
 * by the build loop resumes at the next attempt (the ledger is kept); one
 * stopped elsewhere works its stage again.
 */
export function retryTask(ctx: OrchContext, key: string, raise: BudgetRaise): Promise<Task> {
  return writer(ctx).retry(key, raise);
}

/** Approves a task waiting for a person: the stage is queued again. */
/** What `orch task say` and `POST /api/tasks/{key}/messages` return: the message as recorded. */
export interface SaidMessage {
  key: string;
  id: number;
  text: string;
  by: string;
  created_at: string;
  /** With `now`: whether a running agent run was asked to stop for it (false: none was running). */
  interrupted: boolean;
  /** The run asked to stop, or null. */
  interrupted_run_id: number | null;
}

/**
 * A person's message to a task: recorded now (a `human_message` event), put in front of the
 * task's next agent run (runtime/launcher.ts), once. With `now`, the task's running agent run is
 * stopped (by its worker, at its next heartbeat) and its stage runs again at once with the
 * message, resuming the stopped run's CLI session where the adapter can; without a running agent
 * it is recorded like any message. Refused: an empty or over-long text, one with control
 * characters, an unknown task, a task done or cancelled.
 */
export async function sayToTask(
  ctx: OrchContext,
  key: string,
  text: string,
  by: string,
  opts: { now?: boolean } = {},
): Promise<SaidMessage> {
  if (!text.trim()) throw new OrchError('invalid_argument', 'a message needs a non-empty text');
  if (text.length > MAX_MESSAGE_CHARS)
    throw new OrchError(
      'invalid_argument',
      `a message is at most ${MAX_MESSAGE_CHARS} characters (got ${text.length})`,
    );
  if (hasControlCharacters(text))
    throw new OrchError(
      'invalid_argument',
      'a message may not hold control characters (NUL, escape sequences); tab and newlines are fine',
    );
  const said = await writer(ctx).say(key, text, by, opts.now ?? false);
  return {
    key: said.task.key,
    id: said.id,
    text,
    by,
    created_at: said.created_at,
    interrupted: said.stopping !== null,
    interrupted_run_id: said.stopping?.id ?? null,
  };
}

export function approveTask(ctx: OrchContext, key: string, by = 'cli'): Promise<Task> {
  return writer(ctx).approve(key, by);
}

/**
 * A review came by webhook on the pull request of branch `head`: the task's landing, polling
 * for the review, looks now instead of at its next poll. Returns whether one was found.
 */
export async function landingReviewed(ctx: OrchContext, projectId: number, head: string): Promise<boolean> {
  for (const task of await ctx.store.listTasks({ projectId, status: 'waiting' })) {
    if (taskBranch(task.key) !== head) continue;
    const job = await ctx.store.liveJobOf(task.id);
    return job?.step === 'land' ? ctx.store.dueNow(job.id) : false;
  }
  return false;
}
