/**
 * Task dependencies as the CLI, the API and the tracker import make them:
 * people add edges (`orch task add --after`, `orch task depend`, the API),
 * trackers bring theirs with every import. Each change is one transaction
 * that holds the project's graph, refuses a cycle by naming it, and writes
 * the edges. Whether a dependent may start is the pipeline's to ask
 * (`dependencyReadiness` in core/dependencies.ts, over
 * `store.dependencies.unfinishedBlockers`).
 */
import type { OrchContext } from './context.ts';
import { addTask, pickProject } from './tasks.ts';
import {
  cycleMessage,
  dependencyReadiness,
  findCycle,
  type DependencyEdge,
  type Readiness,
} from '../core/dependencies.ts';
import { OrchError } from '../errors.ts';
import { Transitions } from './transitions.ts';
import type { Task } from '../store/schema.ts';
import type { Executor } from '../store/store.ts';
import type { LinkedTask } from '../store/dependency-store.ts';
import type { ExternalBlocker } from '../trackers/types.ts';

/** What a task waits for and what waits for it, as `task show --json` and the API show them. */
export interface TaskDependencies {
  depends_on: LinkedTask[];
  blocks: LinkedTask[];
}

export async function taskDependencies(ctx: OrchContext, task: Pick<Task, 'id'>): Promise<TaskDependencies> {
  const [dependsOn, blocks] = await Promise.all([
    ctx.store.dependencies.dependsOn(task.id),
    ctx.store.dependencies.blocks(task.id),
  ]);
  return { depends_on: dependsOn, blocks: blocks.map(({ task_id: _id, ...b }) => b) };
}

/**
 * Whether a task may start now: every task it waits for is done. Not ready
 * names each unfinished one and where it stands, and says whether only a
 * person can change that (a blocker escalated or was cancelled).
 */
export async function taskReadiness(ctx: OrchContext, taskId: number, ex?: Executor): Promise<Readiness> {
  return dependencyReadiness(await ctx.store.dependencies.unfinishedBlockers(taskId, ex));
}

/** The tasks named by `keys` (each once), all in `task`'s project; refused otherwise. */
async function blockersOf(ctx: OrchContext, task: Pick<Task, 'key' | 'project_id'>, keys: readonly string[]) {
  const blockers: Task[] = [];
  for (const key of [...new Set(keys.map((k) => k.trim()).filter(Boolean))]) {
    const b = await ctx.store.getTaskByKey(key);
    if (b.project_id !== task.project_id)
      throw new OrchError(
        'invalid_argument',
        `${b.key} is in another project than ${task.key}: a task can depend only on tasks of its own project`,
      );
    if (b.key === task.key) throw new OrchError('invalid_argument', cycleMessage([task.key, task.key]));
    blockers.push(b);
  }
  if (blockers.length === 0) throw new OrchError('invalid_argument', 'name at least one task to depend on');
  return blockers;
}

/**
 * Makes `key` wait for each of `on` (task keys of its project), in one
 * transaction; a cycle is refused with the cycle named, and nothing is added.
 */
export async function addDependencies(ctx: OrchContext, key: string, on: readonly string[]): Promise<Task> {
  const task = await ctx.store.getTaskByKey(key);
  const blockers = await blockersOf(ctx, task, on);
  await ctx.store.tx(async (tx) => {
    const deps = ctx.store.dependencies;
    await deps.lockProject(tx, task.project_id);
    const now = await ctx.store.lockTask(tx, task.id);
    if (now.status === 'done' || now.status === 'cancelled')
      throw new OrchError('invalid_state', `${task.key} is ${now.status}: a finished task waits for nothing`);
    const added: DependencyEdge[] = blockers.map((b) => [task.key, b.key]);
    const cycle = findCycle(await deps.edgesOfProject(tx, task.project_id), added);
    if (cycle) throw new OrchError('invalid_argument', cycleMessage(cycle), { context: { cycle } });
    await deps.add(
      tx,
      task.project_id,
      blockers.map((b) => ({ taskId: task.id, blockerTaskId: b.id })),
    );
  });
  return task;
}

/** Drops the edge "`key` waits for `on`"; refused when there is none. A task blocked by it may go now. */
export async function removeDependency(ctx: OrchContext, key: string, on: string): Promise<Task> {
  const task = await ctx.store.getTaskByKey(key);
  const blocker = await ctx.store.getTaskByKey(on);
  const removed = await ctx.store.tx((tx) => ctx.store.dependencies.removeEdge(tx, task.id, blocker.id));
  if (!removed) throw new OrchError('invalid_state', `${task.key} does not depend on ${blocker.key}`);
  await new Transitions({ ctx, log: { info: () => {}, warn: () => {} } }).blockersChanged(task.key);
  return ctx.store.getTask(task.id);
}

/**
 * Adds a task that waits for the tasks `after` names: they are checked
 * before the task is made (a new task has no dependents, so no cycle).
 */
export async function addTaskAfter(
  ctx: OrchContext,
  title: string,
  opts: Parameters<typeof addTask>[2],
  after: readonly string[],
): Promise<Task> {
  if (after.length === 0) return addTask(ctx, title, opts);
  // Without a project named, the first blocker's is the new task's.
  const first = await ctx.store.getTaskByKey(after[0]!.trim());
  const project = await pickProject(ctx, opts.project ?? (await ctx.store.getProject(first.project_id)).name);
  const blockers = await blockersOf(ctx, { key: '(the new task)', project_id: project.id }, after);
  // The edges are made with the task, in its transaction: its first job never runs before them.
  return addTask(ctx, title, { ...opts, project: project.name, dependsOn: blockers.map((b) => b.id) });
}

/**
 * Records what the tracker says a task waits for (its `blockedBy`, from
 * `kind`), replacing what the last import said, and points the edges that
 * were waiting for this task's import at it. An imported edge that would
 * close a cycle is dropped; the answer says which, for the log.
 */
export async function importBlockers(
  ctx: OrchContext,
  kind: string,
  task: Task,
  blockedBy: readonly ExternalBlocker[],
): Promise<string[]> {
  const deps = ctx.store.dependencies;
  const result = await ctx.store.tx(async (tx: Executor) => {
    await deps.lockProject(tx, task.project_id);
    const dropped: string[] = [];
    // The graph without this task's imported edges, which are about to be replaced.
    const own = new Set(
      (await deps.dependsOn(task.id, tx)).filter((l) => l.origin === 'tracker').map((l) => l.key),
    );
    const graph: DependencyEdge[] = (await deps.edgesOfProject(tx, task.project_id)).filter(
      ([from, to]) => from !== task.key || !own.has(to),
    );
    const rows = [];
    for (const b of blockedBy) {
      const blocker = await ctx.store.taskByExternal(tx, task.project_id, kind, b.id);
      if (blocker) {
        const edge: DependencyEdge = [task.key, blocker.key];
        const cycle = findCycle(graph, [edge]);
        if (cycle) {
          dropped.push(`${task.key} → ${blocker.key} (from ${b.key}) not imported: ${cycleMessage(cycle)}`);
          continue;
        }
        graph.push(edge);
      }
      rows.push({ blockerTaskId: blocker?.id ?? null, source: kind, externalId: b.id, externalKey: b.key });
    }
    await deps.replaceImported(tx, task, rows);
    if (task.external_id) {
      const resolved = await deps.resolvePending(tx, task.project_id, kind, task.external_id, task.id);
      for (const edge of resolved) {
        const all = await deps.edgesOfProject(tx, task.project_id);
        const dependent = await ctx.store.getTask(edge.task_id, tx);
        const rest = all.filter(([from, to]) => !(from === dependent.key && to === task.key));
        const cycle = findCycle(rest, [[dependent.key, task.key]]);
        if (cycle) {
          await deps.remove(tx, [edge.id]);
          dropped.push(`${dependent.key} → ${task.key} not imported: ${cycleMessage(cycle)}`);
        }
      }
    }
    return dropped;
  });
  // Its edges may have gone (a blocker closed on the tracker): a task blocked on them may go now.
  const writer = new Transitions({ ctx, log: { info: () => {}, warn: () => {} } });
  const fresh = await ctx.store.getTask(task.id);
  if (fresh.status === 'blocked') await writer.blockersChanged(fresh.key);
  return result;
}
