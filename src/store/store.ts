/**
 * Every read and write of orch's state. Each state change is one transaction;
 * a stage advance is a compare-and-set on the task's version.
 */
import { sql, type ExpressionBuilder, type Kysely, type RawBuilder } from 'kysely';
import { CLAIM_FUNCTION, runDurationMs, type Dialect } from './migrations.ts';
import type {
  AgentRun,
  Attempt,
  Database,
  GateResult,
  Job,
  JobStatus,
  OrchEvent,
  Project,
  Task,
} from './schema.ts';
import type { Usage } from '../agents/events.ts';
import { mergeReportedModel } from '../core/model.ts';
import { OrchError } from '../errors.ts';
import { OutboxStore } from './outbox-store.ts';
import { ReportStore } from './report-store.ts';
import { StatsStore } from './stats-store.ts';
import {
  DependencyStore,
  linkedTask,
  unfinished,
  type DependencyRow,
  type LinkedTask,
} from './dependency-store.ts';
import { elapsedMs, type Stage, type TaskStatus } from '../core/stages.ts';
import type { JobSpec } from '../core/pipeline.ts';
import type { RunOutcome } from '../core/run-outcome.ts';
import { ProcessStore } from './process-store.ts';
import { PauseStore } from './pause-store.ts';

export type { Executor } from './schema.ts';
import type { Executor } from './schema.ts';

const nowIso = (): string => new Date().toISOString();

/** A person's message to a task (`orch task say`), and the agent run it was put in front of. */
export interface HumanMessage {
  /** The id of its `human_message` event. */
  id: number;
  text: string;
  by: string;
  created_at: string;
  /** The run whose prompt carried it; null until one did. */
  delivered_run_id: number | null;
}

export interface NewTaskInput {
  projectId: number;
  title: string;
  description?: string;
  priority?: number;
  labels?: string[];
  /** Where the task was imported from; a task already imported from there is returned as is. */
  external?: ExternalRef;
  /** Tasks of the same project it waits for: their edges are made with it, before its first job can run. */
  dependsOn?: readonly number[];
}

export interface ExternalRef {
  source: string;
  id: string;
  key: string;
  url: string;
  updatedAt: string;
}

export interface RunFinish {
  exitCode: number | null;
  outcome: RunOutcome;
  resultText: string | null;
  error: string | null;
}

export interface RunningAgent {
  run_id: number;
  job_id: number | null;
  task_key: string | null;
  agent: string;
  stage: string | null;
  model: string | null;
  effort: string | null;
  pid: number | null;
  pgid: number | null;
  started_at: string | null;
  timeout_s: number | null;
  worker_id: string | null;
}

/** What claims may take: no adapters (or an empty list) means any job. */
export interface ClaimFilter {
  /** Adapters this worker can run (its labels); jobs without an adapter are always claimable. */
  adapters?: readonly string[] | null;
  /** This job only, if it is runnable: the worker that stopped its run for a person's message claims it again first. */
  jobId?: number;
}

/** What a task has spent on runs so far. */
export interface TaskSpendRow {
  tokens: number;
  usd: number;
}

/** The condition "a worker with these adapters may claim the job", or null for any job. */
function claimableAdapters(filter: ClaimFilter) {
  const adapters = filter.adapters?.length ? [...filter.adapters] : null;
  if (!adapters) return null;
  return (eb: ExpressionBuilder<Database, 'jobs'>) =>
    eb.or([eb('adapter', 'is', null), eb('adapter', 'in', adapters)]);
}

/** Whether a job is still its holder's, and the message its running agent is asked to stop for. */
export interface LeaseState {
  held: boolean;
  interruptMessageId: number | null;
}

/**
 * A job's `interrupt_message_id` while its agent runs, else null: a message that came as the run
 * ended waits for the next run (the job's gates and landing are never stopped for it).
 */
const RUNNING_AGENT_INTERRUPT = sql<
  number | null
>`CASE WHEN EXISTS (SELECT 1 FROM agent_runs r WHERE r.id = jobs.run_id AND r.status = 'running') THEN interrupt_message_id ELSE NULL END`.as(
  'interrupt_message_id',
);

/** The claim's order (`Store.claimJobs`): priority, higher first, then the oldest task, then the job. */
const claimOrder = (a: Job, b: Job): number =>
  b.priority - a.priority || a.task_id - b.task_id || a.id - b.id;

/** PostgreSQL's deadlock_detected: the transaction was rolled back and may simply be run again. */
const PG_DEADLOCK = '40P01';
const TX_RETRIES = 3;

/**
 * Runs a PostgreSQL transaction (or a statement that writes several rows) again when it was
 * aborted to break a deadlock. Writers lock rows in different orders (a cancel locks the task,
 * then its jobs; a failed run its job, then the task). PostgreSQL breaks such a cycle by aborting
 * one side; the aborted side wrote nothing.
 */
async function retryDeadlock<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await fn();
    } catch (error) {
      if ((error as { code?: unknown }).code !== PG_DEADLOCK || attempt >= TX_RETRIES) throw error;
    }
  }
}

/** A run's log path named after its id, which the store draws: `before`, the id, then `after`. */
export interface RunLogPath {
  before: string;
  after: string;
}

export class Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** Deliveries of events to chats, webhooks and trackers. */
  readonly outbox: OutboxStore;
  /** Read-only queries for the API, the dashboard and `/metrics`. */
  readonly reports: ReportStore;
  /** Outcome analytics per role, adapter, model, effort and variant; the launch stamp. */
  readonly stats: StatsStore;
  /** Which tasks wait for which. */
  readonly dependencies: DependencyStore;
  /** Gate, command-stage and hook processes, recorded while they run. */
  readonly processes: ProcessStore;
  /** Adapters paused until their provider's usage limit resets. */
  readonly pauses: PauseStore;
  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.db = db;
    this.dialect = dialect;
    this.outbox = new OutboxStore(db, dialect, (fn) => this.tx(fn));
    this.reports = new ReportStore(db);
    this.stats = new StatsStore(db, dialect);
    this.dependencies = new DependencyStore(db, dialect);
    this.processes = new ProcessStore(db);
    this.pauses = new PauseStore(db, (ms) => this.clock(ms));
  }

  /**
   * The database's clock, `ms` from now, as ISO-8601 UTC text (what `toISOString()` writes).
   * Claims, leases and due times are all taken from it, so on PostgreSQL a worker whose own
   * clock is off can neither take a live job nor keep a dead one.
   */
  private clock(ms = 0): RawBuilder<string> {
    if (this.dialect === 'postgres')
      return sql<string>`to_char((clock_timestamp() + ${ms}::float8 * interval '1 millisecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
    return sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${`${ms >= 0 ? '+' : ''}${ms / 1000} seconds`})`;
  }

  /** The database's time now (ISO-8601 UTC). */
  async now(ex: Executor = this.db): Promise<string> {
    const row = await sql<{ now: string }>`SELECT ${this.clock()} AS now`.execute(ex);
    return row.rows[0]!.now;
  }

  /**
   * Runs `fn` in one write transaction. On SQLite the transaction takes the
   * write lock up front (BEGIN IMMEDIATE), so concurrent processes wait on the
   * busy timeout instead of failing on a lock upgrade.
   */
  async tx<T>(fn: (tx: Executor) => Promise<T>): Promise<T> {
    if (this.dialect === 'postgres') return retryDeadlock(() => this.db.transaction().execute(fn));
    return this.db.connection().execute(async (conn) => {
      await sql`BEGIN IMMEDIATE`.execute(conn);
      try {
        const result = await fn(conn);
        await sql`COMMIT`.execute(conn);
        return result;
      } catch (error) {
        await sql`ROLLBACK`.execute(conn).catch(() => {});
        throw error;
      }
    });
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  // ---------------------------------------------------------------- projects

  async upsertProject(p: {
    name: string;
    rootPath: string;
    baseBranch: string;
    keyPrefix: string;
    /** The repository's `origin` URL; undefined keeps the one recorded. */
    remoteUrl?: string | null;
  }): Promise<Project> {
    const existing = await this.db
      .selectFrom('projects')
      .selectAll()
      .where('name', '=', p.name)
      .executeTakeFirst();
    const changes = {
      root_path: p.rootPath,
      base_branch: p.baseBranch,
      key_prefix: p.keyPrefix,
      ...(p.remoteUrl !== undefined ? { remote_url: p.remoteUrl } : {}),
    };
    if (existing) {
      await this.db.updateTable('projects').set(changes).where('id', '=', existing.id).execute();
      return { ...existing, ...changes };
    }
    return this.db
      .insertInto('projects')
      .values({ name: p.name, ...changes, next_task_number: 1, created_at: nowIso() })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  listProjects(): Promise<Project[]> {
    return this.db.selectFrom('projects').selectAll().orderBy('id').execute();
  }

  getProjectByName(name: string): Promise<Project | undefined> {
    return this.db.selectFrom('projects').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async getProject(id: number): Promise<Project> {
    const p = await this.db.selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
    if (!p) throw new OrchError('unknown_project', `no project with id ${id}`);
    return p;
  }

  // ------------------------------------------------------------------- tasks

  /** Creates a task at stage `created` and queues its first job, in one transaction. */
  async createTask(input: NewTaskInput): Promise<Task> {
    return this.tx(async (tx) => {
      const ext = input.external;
      if (ext) {
        const existing = await this.taskByExternal(tx, input.projectId, ext.source, ext.id);
        if (existing) return existing;
      }
      const project = await tx
        .updateTable('projects')
        .set((eb) => ({ next_task_number: eb('next_task_number', '+', 1) }))
        .where('id', '=', input.projectId)
        .returning(['name', 'key_prefix', 'next_task_number'])
        .executeTakeFirst();
      if (!project) throw new OrchError('unknown_project', `no project with id ${input.projectId}`);
      const now = nowIso();
      const task = await tx
        .insertInto('tasks')
        .values({
          project_id: input.projectId,
          key: `${project.key_prefix}-${project.next_task_number - 1}`,
          title: input.title,
          description: input.description ?? '',
          priority: input.priority ?? 0,
          labels: JSON.stringify(input.labels ?? []),
          stage: 'created',
          status: 'queued',
          version: 0,
          attempt: 0,
          created_at: now,
          updated_at: now,
          ...(ext
            ? {
                external_source: ext.source,
                external_id: ext.id,
                external_key: ext.key,
                external_url: ext.url,
                external_updated_at: ext.updatedAt,
              }
            : {}),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.enqueueJob(tx, {
        task,
        spec: { stage: 'created', step: 'work', agent: 'orch', adapter: null },
        repo: project.name,
      });
      await this.dependencies.add(
        tx,
        input.projectId,
        (input.dependsOn ?? []).map((blockerTaskId) => ({ taskId: task.id, blockerTaskId })),
      );
      await this.appendEvent(tx, task.id, 'task_created', { key: task.key, title: task.title });
      return task;
    });
  }

  /** The task imported from `source` with the tracker's id `externalId`, if any. */
  taskByExternal(
    ex: Executor,
    projectId: number,
    source: string,
    externalId: string,
  ): Promise<Task | undefined> {
    return ex
      .selectFrom('tasks')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('external_source', '=', source)
      .where('external_id', '=', externalId)
      .executeTakeFirst();
  }

  async getTaskByKey(key: string, ex: Executor = this.db): Promise<Task> {
    const t = await ex.selectFrom('tasks').selectAll().where('key', '=', key).executeTakeFirst();
    if (!t)
      throw new OrchError('unknown_task', `no task with key ${JSON.stringify(key)}`, { context: { key } });
    return t;
  }

  async getTask(id: number, ex: Executor = this.db): Promise<Task> {
    const t = await ex.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
    if (!t) throw new OrchError('unknown_task', `no task with id ${id}`);
    return t;
  }

  /**
   * The task, read inside a transaction that is about to change it: on PostgreSQL its row is
   * locked (`FOR UPDATE`), so two writers of one task take turns; SQLite's write lock is held
   * from the transaction's start already.
   */
  async lockTask(tx: Executor, id: number): Promise<Task> {
    let q = tx.selectFrom('tasks').selectAll().where('id', '=', id);
    if (this.dialect === 'postgres') q = q.forUpdate();
    const t = await q.executeTakeFirst();
    if (!t) throw new OrchError('unknown_task', `no task with id ${id}`);
    return t;
  }

  /**
   * Tasks in id order (oldest first; `newest`: newest first), filtered. A
   * page: the `limit` tasks after the task with id `after` in that order (a
   * cursor that stays valid while tasks are added); no limit returns them
   * all. `open`: only tasks not at `done` or `cancelled`, read through the
   * partial index `tasks_open`, so finding them costs nothing per finished
   * task; the status and stage filters have their `(column, id)` indexes.
   */
  listTasks(
    filter: {
      projectId?: number;
      status?: TaskStatus;
      stage?: Stage;
      open?: boolean;
      newest?: boolean;
      after?: number;
      limit?: number;
    } = {},
  ): Promise<Task[]> {
    let q = this.db.selectFrom('tasks').selectAll();
    if (filter.projectId !== undefined) q = q.where('project_id', '=', filter.projectId);
    if (filter.status) q = q.where('status', '=', filter.status);
    if (filter.stage) q = q.where('stage', '=', filter.stage);
    // Literals, not parameters: a planner uses a partial index only for a condition it can match.
    if (filter.open) q = q.where(sql<boolean>`stage NOT IN ('done', 'cancelled')`);
    if (filter.after !== undefined) q = q.where('id', filter.newest ? '<' : '>', filter.after);
    q = q.orderBy('id', filter.newest ? 'desc' : 'asc');
    return (filter.limit !== undefined ? q.limit(filter.limit) : q).execute();
  }

  /**
   * Compare-and-set of a task's stage: succeeds only if the task is still at
   * `from` with `version`. Returns false when another writer got there first.
   */
  async advanceStage(
    tx: Executor,
    task: Pick<Task, 'id' | 'stage' | 'version'>,
    to: Stage,
    changes: Partial<
      Pick<
        Task,
        'status' | 'attempt' | 'feedback' | 'terminal_reason' | 'status_detail' | 'finished_at' | 'loops'
      >
    > = {},
  ): Promise<boolean> {
    const res = await tx
      .updateTable('tasks')
      .set({ ...changes, stage: to, version: task.version + 1, updated_at: nowIso() })
      .where('id', '=', task.id)
      .where('stage', '=', task.stage)
      .where('version', '=', task.version)
      .executeTakeFirst();
    const ok = Number(res.numUpdatedRows) === 1;
    if (ok) await this.appendEvent(tx, task.id, 'stage_changed', { from: task.stage, to });
    if (ok && to === 'done') await this.appendEvent(tx, task.id, 'done', {});
    return ok;
  }

  async updateTask(
    tx: Executor,
    taskId: number,
    changes: Partial<
      Pick<
        Task,
        | 'status'
        | 'terminal_reason'
        | 'status_detail'
        | 'feedback'
        | 'attempt'
        | 'budget_json'
        | 'loop_run_id'
        | 'started_at'
        | 'finished_at'
        | 'title'
        | 'description'
        | 'external_url'
        | 'external_updated_at'
        | 'loops'
      >
    >,
  ): Promise<void> {
    await tx
      .updateTable('tasks')
      .set({ ...changes, updated_at: nowIso() })
      .where('id', '=', taskId)
      .execute();
  }

  // -------------------------------------------------------------------- jobs

  /**
   * Queues a job. Its role and adapter come from the pipeline plan (`jobFor` in core/pipeline.ts);
   * a task has at most one live job, which the store enforces (a unique partial index).
   */
  async enqueueJob(
    tx: Executor,
    j: { task: Pick<Task, 'id' | 'project_id'>; spec: JobSpec; repo: string; runAfterMs?: number },
  ): Promise<Job> {
    const job = await tx
      .insertInto('jobs')
      .values(({ selectFrom, fn, lit }) => ({
        task_id: j.task.id,
        project_id: j.task.project_id,
        agent: j.spec.agent,
        repo: j.repo,
        adapter: j.spec.adapter,
        credential: j.spec.adapter === null ? null : (j.spec.credential ?? ''),
        stage: j.spec.stage,
        step: j.spec.step,
        status: 'queued',
        attempts: 0,
        run_after: this.clock(j.runAfterMs ?? 0),
        // The claim's order (`claimJobs`), read from the task in the same statement.
        priority: fn.coalesce(selectFrom('tasks').select('priority').where('id', '=', j.task.id), lit(0)),
        created_at: nowIso(),
      }))
      .returningAll()
      .executeTakeFirstOrThrow();
    if (job.adapter === null) return job;
    // Work for an adapter paused by a usage limit waits for the reset (store/pause-store.ts).
    // (The row returned keeps the due time it was inserted with.)
    await this.pauses.hold(tx, job.id);
    return job;
  }

  /** Claims the first runnable job in claim order (`claimJobs`) under a lease, atomically. */
  async claimJob(owner: string, leaseMs: number, filter: ClaimFilter = {}): Promise<Job | null> {
    return (await this.claimJobs(owner, leaseMs, 1, filter))[0] ?? null;
  }

  /**
   * Claims up to `limit` runnable jobs under a lease, in claim order: the task's
   * priority, higher first, then the oldest task, so a task already started
   * goes on before a newer one starts (depth first: with every task queued at
   * once, the first is done after its own stages, not after every task's first
   * stage), then the job's id. Due time only decides whether a job may be
   * claimed, not its place. In one statement: on PostgreSQL `UPDATE … WHERE id =
   * ANY(ARRAY(SELECT … LIMIT n FOR UPDATE SKIP LOCKED)) RETURNING *`, in the
   * function `orch_claim_jobs` (migration 0014, which says why), so concurrent
   * claimers pass over each other's rows instead of waiting for them, and a row
   * is locked (and re-checked as queued) before it is taken. SQLite serializes
   * writers, so `id IN (SELECT … LIMIT n)` gives the same guarantee there. Each
   * claim counts a try. Due times and leases are the database's clock.
   */
  async claimJobs(owner: string, leaseMs: number, limit: number, filter: ClaimFilter = {}): Promise<Job[]> {
    if (limit < 1) return [];
    if (this.dialect === 'postgres') {
      const adapters = filter.adapters?.length ? [...filter.adapters] : null;
      // The same statement, in a function that keeps the planner to the claim order's index
      // whatever the table's statistics say (migration 0014).
      const claimed =
        await sql<Job>`SELECT * FROM ${sql.raw(CLAIM_FUNCTION)}(${owner}, ${leaseMs}::float8, ${limit}::integer, ${adapters}::text[], ${filter.jobId ?? null}::integer)`.execute(
          this.db,
        );
      return claimed.rows.sort(claimOrder);
    }
    let pick = this.db
      .selectFrom('jobs')
      .select('id')
      .where('status', '=', 'queued')
      .where('run_after', '<=', this.clock())
      .orderBy('priority', 'desc')
      .orderBy('task_id')
      .orderBy('id')
      .limit(limit);
    const adapters = claimableAdapters(filter);
    if (adapters) pick = pick.where(adapters);
    if (filter.jobId !== undefined) pick = pick.where('id', '=', filter.jobId);
    const claimed = await this.db
      .updateTable('jobs')
      .set((eb) => ({
        status: 'running',
        lease_owner: owner,
        lease_expires_at: this.clock(leaseMs),
        started_at: this.clock(),
        attempts: eb('attempts', '+', 1),
        // A stop asked of an earlier try is not this one's.
        interrupt_message_id: null,
      }))
      .where(sql<boolean>`id IN (${pick})`)
      .where('status', '=', 'queued')
      .returningAll()
      .execute();
    return claimed.sort(claimOrder);
  }

  /** Extends a lease; false when the job is no longer ours (reclaimed or cancelled). */
  async heartbeat(jobId: number, owner: string, leaseMs: number): Promise<boolean> {
    return (await this.renewLease(jobId, owner, leaseMs)).held;
  }

  /**
   * Extends a lease, in one statement, and reads what the holder must act on: whether the job is
   * still ours, and the person's message its running try is asked to stop for (`say --now`).
   */
  async renewLease(jobId: number, owner: string, leaseMs: number): Promise<LeaseState> {
    const row = await this.db
      .updateTable('jobs')
      .set({ lease_expires_at: this.clock(leaseMs) })
      .where('id', '=', jobId)
      .where('lease_owner', '=', owner)
      .where('status', '=', 'running')
      .returning(RUNNING_AGENT_INTERRUPT)
      .executeTakeFirst();
    return { held: row !== undefined, interruptMessageId: row?.interrupt_message_id ?? null };
  }

  /**
   * What `renewLease` reads, for several jobs, without renewing anything: a scheduler woken by a
   * change to the database looks whether a job it works was cancelled or asked to stop its run,
   * instead of waiting for its next heartbeat. A job missing from the answer is not held.
   */
  async leaseStates(jobIds: readonly number[], owner: string): Promise<Map<number, LeaseState>> {
    const states = new Map<number, LeaseState>(
      jobIds.map((id) => [id, { held: false, interruptMessageId: null }]),
    );
    if (jobIds.length === 0) return states;
    const rows = await this.db
      .selectFrom('jobs')
      .select('id')
      .select(RUNNING_AGENT_INTERRUPT)
      .where('id', 'in', [...jobIds])
      .where('lease_owner', '=', owner)
      .where('status', '=', 'running')
      .execute();
    for (const r of rows)
      states.set(r.id, { held: true, interruptMessageId: r.interrupt_message_id ?? null });
    return states;
  }

  /**
   * Asks the task's running job to stop its try for a person's message (`say --now`), when the
   * job is running an agent now. Returns that run, or null when no agent is running for the task.
   */
  async requestInterrupt(tx: Executor, taskId: number, messageId: number): Promise<AgentRun | null> {
    const job = await this.liveJobOf(taskId, tx);
    if (job?.status !== 'running' || job.run_id === null) return null;
    const run = await tx
      .selectFrom('agent_runs')
      .selectAll()
      .where('id', '=', job.run_id)
      .where('job_id', '=', job.id)
      .where('status', '=', 'running')
      // An agent's: a command stage reads no message.
      .where('adapter', '!=', 'command-stage')
      // A run of this try (a run of an earlier try of the job may be left running by a dead worker).
      .where('started_at', '>=', job.started_at ?? '')
      .executeTakeFirst();
    if (!run) return null;
    await tx.updateTable('jobs').set({ interrupt_message_id: messageId }).where('id', '=', job.id).execute();
    return run;
  }

  async finishJob(
    tx: Executor,
    jobId: number,
    status: 'done' | 'failed' | 'cancelled',
    lastError: string | null = null,
  ): Promise<void> {
    await tx
      .updateTable('jobs')
      .set({
        status,
        finished_at: nowIso(),
        lease_owner: null,
        lease_expires_at: null,
        last_error: lastError,
      })
      .where('id', '=', jobId)
      .execute();
  }

  /**
   * Puts a job back in the queue to run after `delayMs`. `count` says what the ended try was:
   * a `failure` (counted apart from interruptions), an `interruption` (its claim counted it
   * already), or `none` (a graceful shutdown or a poll: its claim is given back).
   */
  async requeueJob(
    tx: Executor,
    jobId: number,
    delayMs: number,
    lastError: string | null,
    count: 'failure' | 'interruption' | 'none' = 'interruption',
  ): Promise<void> {
    await tx
      .updateTable('jobs')
      .set((eb) => ({
        status: 'queued',
        run_after: this.clock(delayMs),
        lease_owner: null,
        lease_expires_at: null,
        last_error: lastError,
        interrupt_message_id: null,
        ...(count === 'failure' ? { failures: eb('failures', '+', 1) } : {}),
        ...(count === 'none' ? { attempts: eb('attempts', '-', 1) } : {}),
      }))
      .where('id', '=', jobId)
      .execute();
    await this.pauses.hold(tx, jobId);
  }

  /** Running jobs whose lease ran out (their worker stopped heartbeating), by the database's clock. */
  expiredJobs(): Promise<Job[]> {
    return this.db
      .selectFrom('jobs')
      .selectAll()
      .where('status', '=', 'running')
      .where('lease_expires_at', '<', this.clock())
      .orderBy('id')
      .execute();
  }

  /** Jobs held under a lease, optionally only those of one worker. */
  runningJobs(owner?: string): Promise<Job[]> {
    let q = this.db.selectFrom('jobs').selectAll().where('status', '=', 'running');
    if (owner !== undefined) q = q.where('lease_owner', '=', owner);
    return q.orderBy('id').execute();
  }

  /** The task's queued or running job, if it has one (it has at most one). */
  liveJobOf(taskId: number, ex: Executor = this.db): Promise<Job | undefined> {
    return ex
      .selectFrom('jobs')
      .selectAll()
      .where('task_id', '=', taskId)
      .where('status', 'in', ['queued', 'running'] satisfies JobStatus[])
      .executeTakeFirst();
  }

  async cancelJobsOfTask(tx: Executor, taskId: number, lastError: string | null = null): Promise<void> {
    await tx
      .updateTable('jobs')
      .set({
        status: 'cancelled',
        finished_at: nowIso(),
        lease_owner: null,
        lease_expires_at: null,
        last_error: lastError,
      })
      .where('task_id', '=', taskId)
      .where('status', 'in', ['queued', 'running'] satisfies JobStatus[])
      .execute();
  }

  getJob(id: number, ex: Executor = this.db): Promise<Job | undefined> {
    return ex.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The earliest `run_after` of a queued job, to arm a wake-up timer. */
  async nextRunAfter(filter: ClaimFilter = {}): Promise<string | null> {
    let q = this.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.min('run_after').as('next'))
      .where('status', '=', 'queued');
    const adapters = claimableAdapters(filter);
    if (adapters) q = q.where(adapters);
    const row = await q.executeTakeFirst();
    return (row?.next as string | null | undefined) ?? null;
  }

  /** Jobs with this status; with a filter, only those the filter's adapters may claim. */
  async countJobs(status: 'queued' | 'running', filter: ClaimFilter = {}): Promise<number> {
    let q = this.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', status);
    const adapters = claimableAdapters(filter);
    if (adapters) q = q.where(adapters);
    const row = await q.executeTakeFirst();
    // pg returns count(*) as int8; whatever the driver, it is a number here.
    return Number(row?.n ?? 0);
  }

  // -------------------------------------------------------------------- runs

  /**
   * Records a run about to start: the run row (running), its job's link to it and its
   * `run_started` event, committed together, so a crash before the process exists leaves a
   * record the reaper can act on. A {@link RunLogPath} names the log after the run's id, written
   * with the row. On PostgreSQL it is one statement (one round trip; the id drawn from the
   * table's sequence first, so the log path can name it); on SQLite one transaction.
   */
  async createRun(r: {
    taskId: number;
    jobId: number | null;
    agent: string;
    stage: string;
    attempt: number | null;
    adapter: string;
    timeoutS: number;
    logPath: string | RunLogPath;
    workerId: string;
  }): Promise<number> {
    const event = { role: r.agent, stage: r.stage };
    if (this.dialect === 'postgres') {
      const logPath =
        typeof r.logPath === 'string'
          ? sql`${r.logPath}::text`
          : sql`${r.logPath.before}::text || (SELECT id FROM n)::text || ${r.logPath.after}::text`;
      // The event's payload as appendEvent writes it: JSON.stringify({ run_id, role, stage }).
      const payloadRest = `,${JSON.stringify(event).slice(1)}`;
      return retryDeadlock(async () => {
        const { rows } = await sql<{ id: number }>`
          WITH n AS (SELECT nextval(pg_get_serial_sequence('agent_runs', 'id'))::int AS id),
          r AS (
            INSERT INTO agent_runs
              (id, task_id, job_id, agent, stage, attempt, adapter, timeout_s, log_path, worker_id, status, started_at)
            VALUES ((SELECT id FROM n), ${r.taskId}, ${r.jobId}, ${r.agent}, ${r.stage}, ${r.attempt},
              ${r.adapter}, ${r.timeoutS}, ${logPath}, ${r.workerId}, 'running', ${this.clock()})
            RETURNING id
          ),
          j AS (UPDATE jobs SET run_id = (SELECT id FROM r) WHERE id = ${r.jobId}::int),
          e AS (
            INSERT INTO events (task_id, kind, payload, created_at)
            SELECT ${r.taskId}::int, 'run_started', '{"run_id":' || r.id::text || ${payloadRest}::text, ${nowIso()}::text
            FROM r
          )
          SELECT id FROM r`.execute(this.db);
        return rows[0]!.id;
      });
    }
    return this.tx(async (tx) => {
      const row = await tx
        .insertInto('agent_runs')
        .values({
          task_id: r.taskId,
          job_id: r.jobId,
          agent: r.agent,
          stage: r.stage,
          attempt: r.attempt,
          adapter: r.adapter,
          timeout_s: r.timeoutS,
          log_path: typeof r.logPath === 'string' ? r.logPath : '',
          worker_id: r.workerId,
          status: 'running',
          started_at: this.clock(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      if (typeof r.logPath !== 'string')
        await tx
          .updateTable('agent_runs')
          .set({ log_path: `${r.logPath.before}${row.id}${r.logPath.after}` })
          .where('id', '=', row.id)
          .execute();
      if (r.jobId !== null)
        await tx.updateTable('jobs').set({ run_id: row.id }).where('id', '=', r.jobId).execute();
      await this.appendEvent(tx, r.taskId, 'run_started', { run_id: row.id, ...event });
      return row.id;
    });
  }

  async setRunLogPath(runId: number, logPath: string): Promise<void> {
    await this.db.updateTable('agent_runs').set({ log_path: logPath }).where('id', '=', runId).execute();
  }

  /** A development run's diff hash against the base, taken after its commit. */
  async setRunDiffHash(runId: number, diffHash: string): Promise<void> {
    await this.db.updateTable('agent_runs').set({ diff_hash: diffHash }).where('id', '=', runId).execute();
  }

  /** Tokens and USD of all the task's runs, summed in the database. */
  async taskSpend(taskId: number, ex: Executor = this.db): Promise<TaskSpendRow> {
    const row = await ex
      .selectFrom('agent_runs')
      .select((eb) => [
        eb.fn.sum<number>(sql`coalesce(input_tokens, 0) + coalesce(output_tokens, 0)`).as('tokens'),
        eb.fn.sum<number>(sql`coalesce(cost_usd, 0)`).as('usd'),
      ])
      .where('task_id', '=', taskId)
      .executeTakeFirst();
    return { tokens: Number(row?.tokens ?? 0), usd: Number(row?.usd ?? 0) };
  }

  /**
   * What the state machine's writer reads of a task besides its row, in its transaction: its
   * spend, its attempts and the blockers it still waits for. On PostgreSQL one statement (one
   * round trip instead of three; the rows as JSON, parsed to the same values); on SQLite the
   * three reads of {@link taskSpend}, {@link attemptsOfTask} and `dependencies.unfinishedBlockers`.
   */
  async writerReads(
    ex: Executor,
    taskId: number,
  ): Promise<{ spend: TaskSpendRow; attempts: Attempt[]; blockers: LinkedTask[] }> {
    if (this.dialect !== 'postgres') {
      const spend = await this.taskSpend(taskId, ex);
      const attempts = await this.attemptsOfTask(taskId, ex);
      return { spend, attempts, blockers: await this.dependencies.unfinishedBlockers(taskId, ex) };
    }
    const { rows } = await sql<{
      tokens: number | null;
      usd: number | null;
      attempts: Attempt[];
      edges: DependencyRow[];
    }>`
      SELECT
        (SELECT sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) FROM agent_runs WHERE task_id = ${taskId}::int) AS tokens,
        (SELECT sum(coalesce(cost_usd, 0)) FROM agent_runs WHERE task_id = ${taskId}::int) AS usd,
        (SELECT coalesce(json_agg(a ORDER BY a.n), '[]') FROM attempts a WHERE a.task_id = ${taskId}::int) AS attempts,
        (SELECT coalesce(json_agg(json_build_object(
            'key', b.key, 'blocker_external_key', d.blocker_external_key, 'title', b.title, 'stage', b.stage,
            'status', b.status, 'terminal_reason', b.terminal_reason, 'origin', d.origin) ORDER BY d.id), '[]')
          FROM task_dependencies d LEFT JOIN tasks b ON b.id = d.blocker_task_id WHERE d.task_id = ${taskId}::int) AS edges`.execute(
      ex,
    );
    const row = rows[0]!;
    return {
      spend: { tokens: Number(row.tokens ?? 0), usd: Number(row.usd ?? 0) },
      attempts: row.attempts,
      blockers: unfinished(row.edges.map(linkedTask)),
    };
  }

  /** The launch stamp: model and effort in one update, so both are visible while the run lives. */
  async stampRun(runId: number, model: string, effort: string): Promise<void> {
    await this.db.updateTable('agent_runs').set({ model, effort }).where('id', '=', runId).execute();
  }

  async setRunProcess(runId: number, pid: number, pgid: number): Promise<void> {
    await this.db.updateTable('agent_runs').set({ pid, pgid }).where('id', '=', runId).execute();
  }

  /** The CLI's session id, as soon as the agent reports it: a run stopped early can still be resumed. */
  async setRunSession(runId: number, sessionId: string): Promise<void> {
    await this.db.updateTable('agent_runs').set({ session_id: sessionId }).where('id', '=', runId).execute();
  }

  /**
   * Records usage. A missing usage, or a missing model in it, keeps the launch
   * stamp; a reported model fills a blank stamp or refines a bare one.
   */
  async recordUsage(runId: number, usage: Partial<Usage> | null | undefined): Promise<void> {
    if (!usage) return;
    // A reported model replaces the stamp whatever it was; without one the stamp stays as it is,
    // so the stamp never needs reading first (one statement per run's end).
    const reported = mergeReportedModel(null, usage.model);
    await this.db
      .updateTable('agent_runs')
      .set({
        ...(reported !== null ? { model: reported } : {}),
        input_tokens: usage.inputTokens ?? null,
        output_tokens: usage.outputTokens ?? null,
        cache_read_tokens: usage.cacheReadTokens ?? null,
        cache_write_tokens: usage.cacheWriteTokens ?? null,
        cost_usd: usage.costUsd ?? null,
        ...(usage.sessionId ? { session_id: usage.sessionId } : {}),
        ...(usage.numTurns !== undefined && usage.numTurns !== null ? { num_turns: usage.numTurns } : {}),
      })
      .where('id', '=', runId)
      .execute();
  }

  /** Finalizes a run that is still running; false when it was already finalized. */
  async finishRun(tx: Executor, runId: number, f: RunFinish): Promise<boolean> {
    const res = await tx
      .updateTable('agent_runs')
      .set({
        status: 'finished',
        outcome: f.outcome,
        exit_code: f.exitCode,
        finished_at: this.clock(),
        result_text: f.resultText,
        error: f.error,
      })
      .where('id', '=', runId)
      .where('status', '=', 'running')
      .returningAll()
      .executeTakeFirst();
    if (!res) return false;
    // Its wall time, stored for the analytics (computed as the 0011 migration filled it).
    await tx
      .updateTable('agent_runs')
      .set({ duration_ms: runDurationMs(this.dialect, sql`finished_at`, sql`started_at`) })
      .where('id', '=', runId)
      .where('started_at', 'is not', null)
      .execute();
    // The usage travels with the event, so a webhook receiver needs no second call.
    await this.appendEvent(tx, res.task_id, 'run_finished', {
      run_id: runId,
      role: res.agent,
      stage: res.stage,
      outcome: f.outcome,
      model: res.model,
      effort: res.effort,
      duration_ms: elapsedMs(res),
      input_tokens: res.input_tokens,
      output_tokens: res.output_tokens,
      cost_usd: res.cost_usd,
    });
    return true;
  }

  /**
   * A run that ended ok whose work could not be kept (git refused to commit it): failed after
   * all, with why. A run with another outcome is left as it is.
   */
  async failFinishedRun(runId: number, error: string): Promise<void> {
    await this.db
      .updateTable('agent_runs')
      .set({ outcome: 'failed', error })
      .where('id', '=', runId)
      .where('outcome', '=', 'ok')
      .execute();
  }

  getRun(id: number): Promise<AgentRun | undefined> {
    return this.db.selectFrom('agent_runs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  runsOfTask(taskId: number): Promise<AgentRun[]> {
    return this.db.selectFrom('agent_runs').selectAll().where('task_id', '=', taskId).orderBy('id').execute();
  }

  /** Runs still marked running (in flight, or left by a process that died). */
  runningRuns(): Promise<AgentRun[]> {
    return this.db
      .selectFrom('agent_runs')
      .selectAll()
      .where('status', '=', 'running')
      .orderBy('id')
      .execute();
  }

  /** Agents in flight with their launch stamp (seed TC-10). */
  getRunningAgents(): Promise<RunningAgent[]> {
    return this.db
      .selectFrom('jobs')
      .innerJoin('agent_runs', 'agent_runs.id', 'jobs.run_id')
      .leftJoin('tasks', 'tasks.id', 'agent_runs.task_id')
      .select([
        'agent_runs.id as run_id',
        'jobs.id as job_id',
        'tasks.key as task_key',
        'agent_runs.agent',
        'agent_runs.stage',
        'agent_runs.model',
        'agent_runs.effort',
        'agent_runs.pid',
        'agent_runs.pgid',
        'agent_runs.started_at',
        'agent_runs.timeout_s',
        'agent_runs.worker_id',
      ])
      .where('jobs.status', '=', 'running')
      .orderBy('agent_runs.id')
      .execute();
  }

  // ---------------------------------------------------------------- attempts

  async recordAttempt(tx: Executor, a: Omit<Attempt, 'id' | 'created_at'>): Promise<Attempt> {
    return tx
      .insertInto('attempts')
      .values({ ...a, created_at: nowIso() })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** Makes a queued job due now (a review webhook came: the landing need not wait for its poll). */
  async dueNow(jobId: number): Promise<boolean> {
    const res = await this.db
      .updateTable('jobs')
      .set({ run_after: this.clock() })
      .where('id', '=', jobId)
      .where('status', '=', 'queued')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Judges a recorded attempt again (a person's review on the forge rejected it after all). */
  async amendAttempt(
    tx: Executor,
    taskId: number,
    n: number,
    judged: Pick<Attempt, 'verdict' | 'feedback' | 'reason'>,
  ): Promise<void> {
    await tx.updateTable('attempts').set(judged).where('task_id', '=', taskId).where('n', '=', n).execute();
  }

  /** The payload of the task's latest event of `kind`, with its id; undefined when there is none. */
  async lastEventOf(
    taskId: number,
    kind: string,
    ex: Executor = this.db,
  ): Promise<{ id: number; payload: Record<string, unknown> } | undefined> {
    const row = await ex
      .selectFrom('events')
      .select(['id', 'payload'])
      .where('task_id', '=', taskId)
      .where('kind', '=', kind)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? { id: row.id, payload: JSON.parse(row.payload) as Record<string, unknown> } : undefined;
  }

  attemptsOfTask(taskId: number, ex: Executor = this.db): Promise<Attempt[]> {
    return ex.selectFrom('attempts').selectAll().where('task_id', '=', taskId).orderBy('n').execute();
  }

  // ------------------------------------------------------------------- gates

  async recordGate(tx: Executor, g: Omit<GateResult, 'id'>): Promise<void> {
    await tx.insertInto('gate_results').values(g).execute();
  }

  /** When the task last entered `stage` (its latest `stage_changed` event to it), or '' if never. */
  async enteredStageAt(ex: Executor, taskId: number, stage: string): Promise<string> {
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

  /** A person approved `stage` since the task last entered it (older approvals were for an earlier pass). */
  async isApproved(ex: Executor, taskId: number, stage: string): Promise<boolean> {
    const since = await this.enteredStageAt(ex, taskId, stage);
    const row = await ex
      .selectFrom('gate_results')
      .select('id')
      .where('task_id', '=', taskId)
      .where('stage', '=', stage)
      .where('name', '=', 'check_human_approval')
      .where('passed', '=', 1)
      .where('finished_at', '>=', since)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** How many of a task's events of `kind` carry `payload`'s fields (compared as JSON values). */
  async countEvents(
    ex: Executor,
    taskId: number,
    kind: string,
    payload: Record<string, unknown>,
  ): Promise<number> {
    const wanted = Object.entries(payload);
    return (await this.eventPayloads(ex, taskId, kind)).filter((text) => {
      const got = JSON.parse(text) as Record<string, unknown>;
      return wanted.every(([k, v]) => got[k] === v);
    }).length;
  }

  /** Whether the task has an event of `kind` with exactly this payload (a pull request seen in a state before). */
  async hasEvent(
    ex: Executor,
    taskId: number,
    kind: string,
    payload: Record<string, unknown>,
  ): Promise<boolean> {
    const text = JSON.stringify(payload);
    return (await this.eventPayloads(ex, taskId, kind)).some((p) => p === text);
  }

  private async eventPayloads(ex: Executor, taskId: number, kind: string): Promise<string[]> {
    const rows = await ex
      .selectFrom('events')
      .select('payload')
      .where('task_id', '=', taskId)
      .where('kind', '=', kind)
      .execute();
    return rows.map((r) => r.payload);
  }

  gatesOfTask(taskId: number): Promise<GateResult[]> {
    return this.db
      .selectFrom('gate_results')
      .selectAll()
      .where('task_id', '=', taskId)
      .orderBy('id')
      .execute();
  }

  // ------------------------------------------------------------------ events

  async appendEvent(
    tx: Executor,
    taskId: number | null,
    kind: string,
    payload: Record<string, unknown>,
  ): Promise<void> {
    await this.insertEvent(tx, taskId, kind, payload);
  }

  /** Appends an event and returns it (its id and time). */
  async insertEvent(
    tx: Executor,
    taskId: number | null,
    kind: string,
    payload: Record<string, unknown>,
  ): Promise<{ id: number; created_at: string }> {
    return tx
      .insertInto('events')
      .values({ task_id: taskId, kind, payload: JSON.stringify(payload), created_at: nowIso() })
      .returning(['id', 'created_at'])
      .executeTakeFirstOrThrow();
  }

  /**
   * A person's messages to a task (`human_message` events), oldest first, each with the run it
   * went to (its `human_message_delivered` event), or null while it waits for the next run.
   */
  async humanMessages(taskId: number, ex: Executor = this.db): Promise<HumanMessage[]> {
    const rows = await ex
      .selectFrom('events')
      .select(['id', 'kind', 'payload', 'created_at'])
      .where('task_id', '=', taskId)
      .where('kind', 'in', ['human_message', 'human_message_delivered'])
      .orderBy('id')
      .execute();
    const messages = new Map<number, HumanMessage>();
    for (const row of rows) {
      const p = JSON.parse(row.payload) as Record<string, unknown>;
      if (row.kind === 'human_message')
        messages.set(row.id, {
          id: row.id,
          text: String(p.text ?? ''),
          by: String(p.by ?? ''),
          created_at: row.created_at,
          delivered_run_id: null,
        });
      else {
        const m = messages.get(Number(p.message_id));
        if (m && m.delivered_run_id === null) m.delivered_run_id = Number(p.run_id);
      }
    }
    return [...messages.values()];
  }

  eventsAfter(afterId: number, limit = 500): Promise<OrchEvent[]> {
    return this.db
      .selectFrom('events')
      .selectAll()
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit)
      .execute();
  }

  /** Sum of run cost for a project since `sinceIso` (daily budget). */
  async projectSpendSince(projectId: number, sinceIso: string, ex: Executor = this.db): Promise<number> {
    const row = await ex
      .selectFrom('agent_runs')
      .innerJoin('tasks', 'tasks.id', 'agent_runs.task_id')
      .select((eb) => eb.fn.sum<number>('agent_runs.cost_usd').as('usd'))
      .where('tasks.project_id', '=', projectId)
      .where('agent_runs.started_at', '>=', sinceIso)
      .executeTakeFirst();
    return Number(row?.usd ?? 0);
  }
}
