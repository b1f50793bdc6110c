/**
 * Human approval: a stage of kind `human`, or any stage with `approval: true`,
 * waits (status `waiting`) until `orch task approve KEY` records the approval
 * and queues the stage again.
 */
import type { OrchContext } from './context.ts';
import type { Task } from '../store/schema.ts';
import { OrchError } from '../errors.ts';
import type { Executor } from '../store/store.ts';

/** When the task last entered `stage` (approvals older than that belong to an earlier pass). */
export async function enteredStageAt(ex: Executor, taskId: number, stage: string): Promise<string> {
  const events = await ex
    .selectFrom('events')
    .select(['payload', 'created_at'])
    .where('task_id', '=', taskId)
    .where('kind', '=', 'stage_changed')
    .orderBy('id', 'desc')
    .execute();
  const entry = events.find((e) => (JSON.parse(e.payload) as { to?: string }).to === stage);
  return entry?.created_at ?? '';
}

export async function isApproved(ex: Executor, task: Pick<Task, 'id'>, stage: string): Promise<boolean> {
  const since = await enteredStageAt(ex, task.id, stage);
  const row = await ex
    .selectFrom('gate_results')
    .select('id')
    .where('task_id', '=', task.id)
    .where('stage', '=', stage)
    .where('name', '=', 'check_human_approval')
    .where('passed', '=', 1)
    .where('finished_at', '>=', since)
    .executeTakeFirst();
  return row !== undefined;
}

export async function approveTask(ctx: OrchContext, key: string, by = 'cli'): Promise<Task> {
  const task = await ctx.store.getTaskByKey(key);
  if (task.status !== 'waiting') {
    throw new OrchError(
      'invalid_state',
      `${key} is not waiting for an approval (it is ${task.status} at ${task.stage})`,
    );
  }
  const project = await ctx.store.getProject(task.project_id);
  const now = new Date().toISOString();
  await ctx.store.tx(async (tx) => {
    const current = await ctx.store.getTask(task.id, tx);
    if (current.status !== 'waiting') throw new OrchError('invalid_state', `${key} is no longer waiting`);
    await ctx.store.recordGate(tx, {
      task_id: task.id,
      stage: task.stage,
      name: 'check_human_approval',
      passed: 1,
      output_tail: `approved by ${by}`,
      started_at: now,
      finished_at: now,
    });
    await ctx.store.updateTask(tx, task.id, { status: 'queued', status_detail: null });
    await ctx.store.enqueueJob(tx, { task, stage: task.stage, agent: 'orch', repo: project.name });
    await ctx.store.appendEvent(tx, task.id, 'approved', { stage: task.stage, by });
  });
  return ctx.store.getTask(task.id);
}
