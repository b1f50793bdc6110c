/**
 * Read-only queries for reports: the queue, run listings, the event feed and
 * the figures spend and metrics are computed from. What the API, the
 * dashboard and `/metrics` read beyond the tasks themselves; no writes.
 */
import type { Kysely } from 'kysely';
import type { AgentRun, Database, OrchEvent } from './schema.ts';

export interface QueuedJob {
  job_id: number;
  task: string;
  stage: string;
  role: string;
  status: string;
  /** Its task's priority: the claim takes higher first. */
  priority: number;
  /** Tries so far (a retried job counts each). */
  tries: number;
  run_after: string;
  last_error: string | null;
  created_at: string;
}

export interface RunFilter {
  status?: 'running' | 'finished' | undefined;
  taskId?: number | undefined;
  role?: string | undefined;
  limit: number;
}

export type EventWithTask = OrchEvent & { task_key: string | null };

export interface RunFigures {
  agent: string;
  model: string | null;
  status: string;
  outcome: string | null;
  started_at: string | null;
  finished_at: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cost_usd: number | null;
}

export class ReportStore {
  private readonly db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.db = db;
  }

  /**
   * Jobs waiting to be claimed, in claim order (`Store.claimJobs`: priority, the oldest task, the
   * job): what a worker takes next, once due.
   */

  async queuedJobs(limit = 200): Promise<QueuedJob[]> {
    const rows = await this.db
      .selectFrom('jobs')
      .innerJoin('tasks', 'tasks.id', 'jobs.task_id')
      .select([
        'jobs.id as job_id',
        'tasks.key as task',
        'jobs.stage',
        'jobs.agent as role',
        'jobs.status',
        'jobs.priority',
        'jobs.attempts as tries',
        'jobs.run_after',
        'jobs.last_error',
        'jobs.created_at',
      ])
      .where('jobs.status', '=', 'queued')
      .orderBy('jobs.priority', 'desc')
      .orderBy('jobs.task_id')
      .orderBy('jobs.id')
      .limit(limit)
      .execute();
    return rows;
  }

  /** Runs, newest first, each with its task's key. */

  async listRuns(f: RunFilter): Promise<(AgentRun & { task_key: string })[]> {
    let q = this.db
      .selectFrom('agent_runs')
      .innerJoin('tasks', 'tasks.id', 'agent_runs.task_id')
      .selectAll('agent_runs')
      .select('tasks.key as task_key');
    if (f.status) q = q.where('agent_runs.status', '=', f.status);
    if (f.taskId !== undefined) q = q.where('agent_runs.task_id', '=', f.taskId);
    if (f.role) q = q.where('agent_runs.agent', '=', f.role);
    return q.orderBy('agent_runs.id', 'desc').limit(f.limit).execute();
  }

  async runWithTask(id: number): Promise<(AgentRun & { task_key: string }) | undefined> {
    return this.db
      .selectFrom('agent_runs')
      .innerJoin('tasks', 'tasks.id', 'agent_runs.task_id')
      .selectAll('agent_runs')
      .select('tasks.key as task_key')
      .where('agent_runs.id', '=', id)
      .executeTakeFirst();
  }

  /** Runs started or finished at or after `sinceIso` (the event feed's window). */

  async runsTouchedSince(sinceIso: string, taskId?: number): Promise<(AgentRun & { task_key: string })[]> {
    return this.runsWithTaskKey(taskId)
      .where((eb) =>
        eb.or([eb('agent_runs.started_at', '>=', sinceIso), eb('agent_runs.finished_at', '>=', sinceIso)]),
      )
      .orderBy('agent_runs.id')
      .execute();
  }

  /** Runs still running, with their task's key. */

  async runningRunsWithTask(taskId?: number): Promise<(AgentRun & { task_key: string })[]> {
    return this.runsWithTaskKey(taskId)
      .where('agent_runs.status', '=', 'running')
      .orderBy('agent_runs.id')
      .execute();
  }

  /** Runs joined with their task's key, of one task when `taskId` is given. */

  private runsWithTaskKey(taskId?: number) {
    const q = this.db
      .selectFrom('agent_runs')
      .innerJoin('tasks', 'tasks.id', 'agent_runs.task_id')
      .selectAll('agent_runs')
      .select('tasks.key as task_key');
    return taskId === undefined ? q : q.where('agent_runs.task_id', '=', taskId);
  }

  /** Events after `afterId`, oldest first, each with its task's key. */

  async eventsAfter(afterId: number, limit: number, taskId?: number): Promise<EventWithTask[]> {
    let q = this.db
      .selectFrom('events')
      .leftJoin('tasks', 'tasks.id', 'events.task_id')
      .selectAll('events')
      .select('tasks.key as task_key')
      .where('events.id', '>', afterId);
    if (taskId !== undefined) q = q.where('events.task_id', '=', taskId);
    return q.orderBy('events.id').limit(limit).execute();
  }

  /** A task's events of one kind, oldest first. */
  eventsOfTask(taskId: number, kind: string): Promise<OrchEvent[]> {
    return this.db
      .selectFrom('events')
      .selectAll()
      .where('task_id', '=', taskId)
      .where('kind', '=', kind)
      .orderBy('id')
      .execute();
  }

  async lastEventId(): Promise<number> {
    const row = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  async eventById(id: number): Promise<OrchEvent | undefined> {
    return this.db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The figures of every run that spend and metrics are computed from. */

  async runFigures(sinceIso?: string): Promise<RunFigures[]> {
    let q = this.db
      .selectFrom('agent_runs')
      .select([
        'agent',
        'model',
        'status',
        'outcome',
        'started_at',
        'finished_at',
        'input_tokens',
        'output_tokens',
        'cost_usd',
      ]);
    if (sinceIso) q = q.where('started_at', '>=', sinceIso);
    return q.execute();
  }

  /** Gate results counted by gate, stage and outcome. */

  async gateCounts(): Promise<{ name: string; stage: string; passed: number; n: number }[]> {
    const rows = await this.db
      .selectFrom('gate_results')
      .select(['name', 'stage', 'passed', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['name', 'stage', 'passed'])
      .execute();
    return rows.map((r) => ({ ...r, passed: Number(r.passed), n: Number(r.n) }));
  }

  /** Payloads of every event of one kind (escalations, reaped runs), parsed. */

  async eventPayloads(kind: string): Promise<Record<string, unknown>[]> {
    const rows = await this.db.selectFrom('events').select('payload').where('kind', '=', kind).execute();
    return rows.map((r) => {
      try {
        return JSON.parse(r.payload) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
  }

  /** Tasks counted by stage and status. */

  async taskCounts(): Promise<{ stage: string; status: string; n: number }[]> {
    const rows = await this.db
      .selectFrom('tasks')
      .select(['stage', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['stage', 'status'])
      .execute();
    return rows.map((r) => ({ ...r, n: Number(r.n) }));
  }
}
