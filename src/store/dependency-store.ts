/**
 * Task dependencies' reads and writes: the edges "a task waits for another",
 * added by people (`origin: orch`) or imported from a tracker (`origin:
 * tracker`, replaced whole by each import of the dependent). An imported edge
 * may name a blocker that is not imported yet: it is kept with the tracker's
 * id and key, and resolved when that task arrives. Deciding what may be
 * added (cycles) and whether a task may start is core/dependencies.ts's.
 */
import { sql, type Kysely } from 'kysely';
import type { Dialect } from './migrations.ts';
import type { Database } from './schema.ts';
import type { Executor } from './schema.ts';

const nowIso = (): string => new Date().toISOString();

export type DependencyOrigin = 'orch' | 'tracker';

/** An edge's row as {@link DependencyStore.dependsOn} selects it (its blocker left-joined). */
export interface DependencyRow {
  key: string | null;
  blocker_external_key: string | null;
  title: string | null;
  stage: string | null;
  status: string | null;
  terminal_reason: string | null;
  origin: string;
}

/** The blocker an edge's row names. */
export const linkedTask = (r: DependencyRow): LinkedTask => ({
  key: r.key ?? r.blocker_external_key ?? '?',
  title: r.title,
  stage: r.stage,
  status: r.status,
  terminal_reason: r.terminal_reason,
  origin: r.origin as DependencyOrigin,
});

/** The blockers not done yet. */
export const unfinished = (blockers: LinkedTask[]): LinkedTask[] =>
  blockers.filter((b) => b.stage !== 'done');

/** The task at the other end of an edge, as `task show` and the API show it. */
export interface LinkedTask {
  /** orch's key (`T-3`), or the tracker's key (`acme/app#3`) while the blocker is not imported. */
  key: string;
  /** Null while the blocker is not imported. */
  title: string | null;
  stage: string | null;
  status: string | null;
  terminal_reason: string | null;
  origin: DependencyOrigin;
}

/** A blocker a tracker names for a task: imported already (its task id) or not yet. */
export interface ImportedBlocker {
  blockerTaskId: number | null;
  /** The tracker's kind. */
  source: string;
  externalId: string;
  externalKey: string;
}

export class DependencyStore {
  private readonly db: Kysely<Database>;
  private readonly dialect: Dialect;
  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.db = db;
    this.dialect = dialect;
  }

  /**
   * Holds the project's graph for a check-then-add: PostgreSQL locks the
   * project's row until the transaction ends; SQLite's transactions hold the
   * write lock from their start already.
   */
  async lockProject(tx: Executor, projectId: number): Promise<void> {
    if (this.dialect !== 'postgres') return;
    await sql`SELECT id FROM projects WHERE id = ${projectId} FOR UPDATE`.execute(tx);
  }

  /** Adds "task waits for blocker" edges made by a person; an edge there already stays, now theirs. */
  async add(
    tx: Executor,
    projectId: number,
    edges: readonly { taskId: number; blockerTaskId: number }[],
  ): Promise<void> {
    if (edges.length === 0) return;
    const now = nowIso();
    await tx
      .insertInto('task_dependencies')
      .values(
        edges.map((e) => ({
          project_id: projectId,
          task_id: e.taskId,
          blocker_task_id: e.blockerTaskId,
          origin: 'orch',
          created_at: now,
        })),
      )
      // An imported edge a person adds again is theirs: the next import does not drop it.
      .onConflict((oc) => oc.columns(['task_id', 'blocker_task_id']).doUpdateSet({ origin: 'orch' }))
      .execute();
  }

  /** The resolved edges among a project's tasks, as `[dependent key, blocker key]`. */
  async edgesOfProject(ex: Executor, projectId: number): Promise<[string, string][]> {
    const rows = await ex
      .selectFrom('task_dependencies as d')
      .innerJoin('tasks as t', 't.id', 'd.task_id')
      .innerJoin('tasks as b', 'b.id', 'd.blocker_task_id')
      .select(['t.key as task', 'b.key as blocker'])
      .where('d.project_id', '=', projectId)
      .orderBy('d.id')
      .execute();
    return rows.map((r) => [r.task, r.blocker]);
  }

  /** What a task waits for, in the order the edges were made. */
  async dependsOn(taskId: number, ex: Executor = this.db): Promise<LinkedTask[]> {
    const rows = await ex
      .selectFrom('task_dependencies as d')
      .leftJoin('tasks as b', 'b.id', 'd.blocker_task_id')
      .select([
        'b.key',
        'd.blocker_external_key',
        'b.title',
        'b.stage',
        'b.status',
        'b.terminal_reason',
        'd.origin',
      ])
      .where('d.task_id', '=', taskId)
      .orderBy('d.id')
      .execute();
    return rows.map(linkedTask);
  }

  /** The tasks waiting for this one, in the order the edges were made. */
  async blocks(taskId: number, ex: Executor = this.db): Promise<(LinkedTask & { task_id: number })[]> {
    const rows = await ex
      .selectFrom('task_dependencies as d')
      .innerJoin('tasks as t', 't.id', 'd.task_id')
      .select(['t.id', 't.key', 't.title', 't.stage', 't.status', 't.terminal_reason', 'd.origin'])
      .where('d.blocker_task_id', '=', taskId)
      .orderBy('d.id')
      .execute();
    return rows.map((r) => ({
      task_id: r.id,
      key: r.key,
      title: r.title,
      stage: r.stage,
      status: r.status,
      terminal_reason: r.terminal_reason,
      origin: r.origin as DependencyOrigin,
    }));
  }

  /** What a task still waits for: blockers not done, and those not imported yet. */
  async unfinishedBlockers(taskId: number, ex: Executor = this.db): Promise<LinkedTask[]> {
    return unfinished(await this.dependsOn(taskId, ex));
  }

  /** Replaces the edges imported for a task with what its tracker says now; a person's edges stay. */
  async replaceImported(
    tx: Executor,
    task: { id: number; project_id: number },
    blockers: readonly ImportedBlocker[],
  ): Promise<void> {
    await tx
      .deleteFrom('task_dependencies')
      .where('task_id', '=', task.id)
      .where('origin', '=', 'tracker')
      .execute();
    if (blockers.length === 0) return;
    const now = nowIso();
    await tx
      .insertInto('task_dependencies')
      .values(
        blockers.map((b) => ({
          project_id: task.project_id,
          task_id: task.id,
          blocker_task_id: b.blockerTaskId,
          blocker_source: b.source,
          blocker_external_id: b.externalId,
          blocker_external_key: b.externalKey,
          origin: 'tracker',
          created_at: now,
        })),
      )
      // A person's edge to the same blocker is kept as theirs.
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  /**
   * Points the edges waiting for a tracker's task (`source`, `externalId`) at
   * the task it was imported as; answers them as `[dependent key, blocker key]`
   * with their ids, for a cycle check.
   */
  async resolvePending(
    tx: Executor,
    projectId: number,
    source: string,
    externalId: string,
    blockerTaskId: number,
  ): Promise<{ id: number; task_id: number }[]> {
    return tx
      .updateTable('task_dependencies')
      .set({ blocker_task_id: blockerTaskId })
      .where('project_id', '=', projectId)
      .where('blocker_source', '=', source)
      .where('blocker_external_id', '=', externalId)
      .where('blocker_task_id', 'is', null)
      .where('task_id', '!=', blockerTaskId)
      .returning(['id', 'task_id'])
      .execute();
  }

  /** Removes edges by id (an imported edge that would close a cycle). */
  async remove(tx: Executor, ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await tx
      .deleteFrom('task_dependencies')
      .where('id', 'in', [...ids])
      .execute();
  }

  /** Removes the person-made edge "task waits for blocker"; false when there was none. */
  async removeEdge(tx: Executor, taskId: number, blockerTaskId: number): Promise<boolean> {
    const res = await tx
      .deleteFrom('task_dependencies')
      .where('task_id', '=', taskId)
      .where('blocker_task_id', '=', blockerTaskId)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}
