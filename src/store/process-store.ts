/**
 * The process groups orch starts besides agent runs — gates' commands, command
 * stages, hooks — recorded from spawn to end. A row left `running` by an orch
 * that died names a group a restart on the same host must end
 * (runtime/process-recovery.ts), so a gate never runs twice side by side.
 */
import type { Kysely } from 'kysely';
import type { Database, ProcessRow } from './schema.ts';

/** What kind of process a row is. */
export type ProcessKind = 'gate' | 'command' | 'hook';

/** How a recorded process ended. */
export type ProcessOutcome = 'ok' | 'failed' | 'timeout' | 'interrupted' | 'spawn_error';

export interface NewProcess {
  taskId: number | null;
  jobId: number | null;
  kind: ProcessKind;
  name: string;
  pid: number;
  pgid: number;
  /** The leader's identity (process-group.ts `processIdentity`), or null where /proc cannot tell. */
  identity: string | null;
  workerId: string;
}

export interface ProcessEnd {
  outcome: ProcessOutcome;
  exitCode: number | null;
  /** Said when someone other than the owner finalizes it (recovery). */
  detail?: string;
}

export class ProcessStore {
  private readonly db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.db = db;
  }

  /** Records a process that has just started; returns its row id. */
  async start(p: NewProcess): Promise<number> {
    const row = await this.db
      .insertInto('processes')
      .values({
        task_id: p.taskId,
        job_id: p.jobId,
        kind: p.kind,
        name: p.name,
        pid: p.pid,
        pgid: p.pgid,
        identity: p.identity,
        worker_id: p.workerId,
        status: 'running',
        outcome: null,
        exit_code: null,
        detail: null,
        started_at: new Date().toISOString(),
        finished_at: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  /** Marks a running process finished; false when it already was (finalized by recovery, say). */
  async finish(id: number, end: ProcessEnd): Promise<boolean> {
    const r = await this.db
      .updateTable('processes')
      .set({
        status: 'finished',
        outcome: end.outcome,
        exit_code: end.exitCode,
        detail: end.detail ?? null,
        finished_at: new Date().toISOString(),
      })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Every process still recorded as running, oldest first. */
  running(): Promise<ProcessRow[]> {
    return this.db
      .selectFrom('processes')
      .selectAll()
      .where('status', '=', 'running')
      .orderBy('id')
      .execute();
  }

  /** A task's processes, oldest first. */
  ofTask(taskId: number): Promise<ProcessRow[]> {
    return this.db.selectFrom('processes').selectAll().where('task_id', '=', taskId).orderBy('id').execute();
  }
}
