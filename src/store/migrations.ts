/**
 * Versioned migrations, the same for SQLite and PostgreSQL. Append only:
 * never edit a migration that has shipped.
 */
import { sql, type Kysely, type CreateTableBuilder, type RawBuilder } from 'kysely';
import type { Migration, MigrationProvider } from 'kysely/migration';

export type Dialect = 'sqlite' | 'postgres';

const id = <T extends string>(t: CreateTableBuilder<T, never>, dialect: Dialect) =>
  dialect === 'postgres'
    ? t.addColumn('id', 'serial', (c) => c.primaryKey())
    : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());

function m0001(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await id(db.schema.createTable('projects'), dialect)
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('root_path', 'text', (c) => c.notNull())
        .addColumn('base_branch', 'text', (c) => c.notNull())
        .addColumn('key_prefix', 'text', (c) => c.notNull())
        .addColumn('next_task_number', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await id(db.schema.createTable('tasks'), dialect)
        .addColumn('project_id', 'integer', (c) => c.notNull().references('projects.id'))
        .addColumn('key', 'text', (c) => c.notNull().unique())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('labels', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('stage', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('terminal_reason', 'text')
        .addColumn('status_detail', 'text')
        .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('feedback', 'text')
        .addColumn('budget_json', 'text')
        .addColumn('loop_run_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema
        .createIndex('tasks_project_stage')
        .on('tasks')
        .columns(['project_id', 'stage'])
        .execute();

      await id(db.schema.createTable('agent_runs'), dialect)
        .addColumn('task_id', 'integer', (c) => c.notNull())
        .addColumn('job_id', 'integer')
        .addColumn('agent', 'text', (c) => c.notNull())
        .addColumn('stage', 'text')
        .addColumn('attempt', 'integer')
        .addColumn('adapter', 'text')
        .addColumn('model', 'text')
        .addColumn('effort', 'text')
        .addColumn('timeout_s', 'integer')
        .addColumn('pid', 'integer')
        .addColumn('pgid', 'integer')
        .addColumn('worker_id', 'text')
        .addColumn('status', 'text', (c) => c.notNull().defaultTo('running'))
        .addColumn('outcome', 'text')
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('exit_code', 'integer')
        .addColumn('input_tokens', 'integer')
        .addColumn('output_tokens', 'integer')
        .addColumn('cache_read_tokens', 'integer')
        .addColumn('cache_write_tokens', 'integer')
        .addColumn('cost_usd', dialect === 'postgres' ? 'double precision' : 'real')
        .addColumn('session_id', 'text')
        .addColumn('num_turns', 'integer')
        .addColumn('log_path', 'text')
        .addColumn('result_text', 'text')
        .addColumn('error', 'text')
        .addColumn('diff_hash', 'text')
        .execute();
      await db.schema.createIndex('agent_runs_task').on('agent_runs').columns(['task_id', 'id']).execute();
      await db.schema.createIndex('agent_runs_status').on('agent_runs').column('status').execute();

      await id(db.schema.createTable('jobs'), dialect)
        .addColumn('task_id', 'integer', (c) => c.notNull())
        .addColumn('project_id', 'integer', (c) => c.notNull())
        .addColumn('agent', 'text', (c) => c.notNull())
        .addColumn('repo', 'text', (c) => c.notNull())
        .addColumn('stage', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('run_id', 'integer')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('run_after', 'text', (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', 'text')
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('jobs_runnable')
        .on('jobs')
        .columns(['status', 'run_after', 'id'])
        .execute();
      await db.schema.createIndex('jobs_task').on('jobs').columns(['task_id', 'status']).execute();

      await id(db.schema.createTable('attempts'), dialect)
        .addColumn('task_id', 'integer', (c) => c.notNull())
        .addColumn('n', 'integer', (c) => c.notNull())
        .addColumn('diff_hash', 'text', (c) => c.notNull())
        .addColumn('verdict', 'text', (c) => c.notNull())
        .addColumn('feedback', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('input_tokens', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('output_tokens', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('cost_usd', dialect === 'postgres' ? 'double precision' : 'real')
        .addColumn('duration_ms', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('reason', 'text')
        .addColumn('dev_run_id', 'integer')
        .addColumn('review_run_id', 'integer')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('attempts_task_n', ['task_id', 'n'])
        .execute();

      await id(db.schema.createTable('gate_results'), dialect)
        .addColumn('task_id', 'integer', (c) => c.notNull())
        .addColumn('stage', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('passed', 'integer', (c) => c.notNull())
        .addColumn('output_tail', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('gate_results_task')
        .on('gate_results')
        .columns(['task_id', 'id'])
        .execute();

      await id(db.schema.createTable('events'), dialect)
        .addColumn('task_id', 'integer')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('events_task').on('events').columns(['task_id', 'id']).execute();
    },
  };
}

/**
 * The PostgreSQL channel notified when a job becomes runnable (inserted or put back as `queued`),
 * and when a running one is cancelled or asked to stop its run (migration 0013).
 */
export const JOBS_CHANNEL = 'orch_jobs';

/**
 * Scale-out: the adapter a job needs (workers claim only the adapters in their
 * labels), the project's git remote (workers clone it), and on PostgreSQL a
 * trigger that notifies idle workers the moment a job becomes runnable.
 */
function m0002(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('projects').addColumn('remote_url', 'text').execute();
      await db.schema.alterTable('jobs').addColumn('adapter', 'text').execute();
      if (dialect !== 'postgres') return;
      // The payload is the job's adapter, so a worker can ignore jobs it has no label for.
      await sql`
        CREATE FUNCTION orch_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify(${sql.lit(JOBS_CHANNEL)}, COALESCE(NEW.adapter, ''));
          RETURN NULL;
        END $$`.execute(db);
      await sql`
        CREATE TRIGGER jobs_notify_runnable
        AFTER INSERT OR UPDATE OF status ON jobs
        FOR EACH ROW WHEN (NEW.status = 'queued')
        EXECUTE FUNCTION orch_jobs_notify()`.execute(db);
    },
  };
}

/**
 * Trackers and notifications: tasks remember where they were imported from;
 * events are fanned out into an outbox of deliveries (one per event and
 * channel) that survives crashes and is retried; chat channels keep the
 * message they edit; webhook deliveries are remembered for idempotency.
 */
function m0003(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      for (const col of [
        'external_source',
        'external_id',
        'external_key',
        'external_url',
        'external_updated_at',
      ])
        await db.schema.alterTable('tasks').addColumn(col, 'text').execute();
      await db.schema
        .createIndex('tasks_external')
        .on('tasks')
        .columns(['project_id', 'external_source', 'external_id'])
        .unique()
        .execute();

      // Events written before this migration are history, not news: they are never sent.
      await db.schema
        .alterTable('events')
        .addColumn('fanned_out', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await sql`UPDATE events SET fanned_out = 1`.execute(db);
      await db.schema.createIndex('events_fan_out').on('events').columns(['fanned_out', 'id']).execute();

      await id(db.schema.createTable('outbox'), dialect)
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('event_id', 'integer', (c) => c.notNull())
        .addColumn('task_id', 'integer', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'text', (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', 'text')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('sent_at', 'text')
        .addUniqueConstraint('outbox_channel_event', ['channel', 'event_id'])
        .execute();
      await db.schema
        .createIndex('outbox_due')
        .on('outbox')
        .columns(['status', 'next_attempt_at', 'id'])
        .execute();
      await db.schema
        .createIndex('outbox_channel_task')
        .on('outbox')
        .columns(['channel', 'task_id', 'status', 'id'])
        .execute();

      await db.schema
        .createTable('channel_refs')
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('task_id', 'integer', (c) => c.notNull())
        .addColumn('ref', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('channel_refs_pk', ['channel', 'task_id'])
        .execute();

      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('delivery_id', 'text', (c) => c.notNull())
        .addColumn('received_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('webhook_deliveries_pk', ['source', 'delivery_id'])
        .execute();
    },
  };
}

/** The statuses of a job that is still live: waiting to be claimed, or held by a worker. */
export const LIVE_JOB_STATUSES = ['queued', 'running'] as const;

/**
 * The pipeline state machine: a job counts its failed tries apart from its claims (the rest of
 * its tries were cut off), says whether it works a stage or lands the task, and a task counts
 * the failure routes it took. One live job per task becomes a rule of the store: older duplicates
 * (a chain that forked) are closed, then a unique partial index keeps it so.
 */
function m0004(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('jobs')
        .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .alterTable('jobs')
        .addColumn('step', 'text', (c) => c.notNull().defaultTo('work'))
        .execute();
      await db.schema
        .alterTable('tasks')
        .addColumn('loops', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
      await sql`
        UPDATE jobs SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL,
          last_error = 'superseded: a task has one live job'
        WHERE status IN ('queued', 'running')
          AND id NOT IN (SELECT max(id) FROM jobs WHERE status IN ('queued', 'running') GROUP BY task_id)`.execute(
        db,
      );
      await sql`CREATE UNIQUE INDEX jobs_one_live_per_task ON jobs (task_id) WHERE status IN ('queued', 'running')`.execute(
        db,
      );
    },
  };
}

/**
 * Outcome analytics: the A/B variant stamped on each run beside model and
 * effort, and the indexes `StatsStore` reads through (runs by start, so a
 * window reads only its runs; a task's interventions by kind and time, without
 * touching the table), so its figures stay fast at 100 k runs.
 */
function m0007(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('agent_runs').addColumn('variant', 'text').execute();
      await db.schema.createIndex('agent_runs_started').on('agent_runs').column('started_at').execute();
      await db.schema
        .createIndex('events_kind_task')
        .on('events')
        .columns(['kind', 'task_id', 'created_at'])
        .execute();
    },
  };
}

/**
 * Task lists that stay as fast at 100 k tasks as at 1 k: the tasks still in
 * the pipeline (the board, `orch task list`) through a partial index that
 * holds only them, and a status or stage filter (the newest finished tasks)
 * through `(column, id)`, in the order the lists page by.
 */
function m0010(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE INDEX tasks_open ON tasks (id) WHERE stage NOT IN ('done', 'cancelled')`.execute(db);
      await db.schema.createIndex('tasks_status').on('tasks').columns(['status', 'id']).execute();
      await db.schema.createIndex('tasks_stage').on('tasks').columns(['stage', 'id']).execute();
    },
  };
}

/**
 * Task dependencies: an edge says a task waits for another. An edge imported
 * from a tracker may name a task not imported yet (by the tracker's id and
 * key): it is kept, and resolved to the task when it arrives.
 */
function m0006(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await id(db.schema.createTable('task_dependencies'), dialect)
        .addColumn('project_id', 'integer', (c) => c.notNull())
        .addColumn('task_id', 'integer', (c) => c.notNull())
        .addColumn('blocker_task_id', 'integer')
        .addColumn('blocker_source', 'text')
        .addColumn('blocker_external_id', 'text')
        .addColumn('blocker_external_key', 'text')
        .addColumn('origin', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      // NULLs are distinct in both databases: a pending edge does not collide with a resolved one.
      await db.schema
        .createIndex('task_dependencies_edge')
        .on('task_dependencies')
        .columns(['task_id', 'blocker_task_id'])
        .unique()
        .execute();
      await db.schema
        .createIndex('task_dependencies_external')
        .on('task_dependencies')
        .columns(['task_id', 'blocker_source', 'blocker_external_id'])
        .unique()
        .execute();
      await db.schema
        .createIndex('task_dependencies_blocker')
        .on('task_dependencies')
        .column('blocker_task_id')
        .execute();
      await db.schema
        .createIndex('task_dependencies_pending')
        .on('task_dependencies')
        .columns(['project_id', 'blocker_source', 'blocker_external_id'])
        .execute();
    },
  };
}

/**
 * Processes orch starts besides agent runs (gates, command stages, hooks): each process group is
 * recorded while it runs, so a restart after a crash can end what a dead orch left running
 * instead of starting it a second time beside the first (runtime/process-recovery.ts).
 */
function m0005(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await id(db.schema.createTable('processes'), dialect)
        .addColumn('task_id', 'integer')
        .addColumn('job_id', 'integer')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('pid', 'integer', (c) => c.notNull())
        .addColumn('pgid', 'integer', (c) => c.notNull())
        .addColumn('identity', 'text')
        .addColumn('worker_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text')
        .addColumn('exit_code', 'integer')
        .addColumn('detail', 'text')
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema.createIndex('processes_status').on('processes').columns(['status', 'id']).execute();
      await db.schema.createIndex('processes_task').on('processes').columns(['task_id', 'id']).execute();
    },
  };
}

/**
 * `orch task say --now`: the message a running job is asked to stop for. The worker holding the
 * job reads it with its heartbeat; a claim clears it, so one message stops at most one run.
 */
function m0008(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('jobs').addColumn('interrupt_message_id', 'integer').execute();
    },
  };
}

/**
 * Usage limits: an adapter (per credential) paused until its provider's reset. Jobs carry the
 * credential of their role's agent, so a pause holds back exactly the work that would hit it.
 */
function m0009(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('jobs').addColumn('credential', 'text').execute();
      await db.schema
        .createTable('adapter_pauses')
        .addColumn('adapter', 'text', (c) => c.notNull())
        .addColumn('credential', 'text', (c) => c.notNull())
        .addColumn('until_at', 'text', (c) => c.notNull())
        .addColumn('strikes', 'integer', (c) => c.notNull())
        .addColumn('window', 'text')
        .addColumn('message', 'text')
        .addColumn('task_key', 'text')
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('adapter_pauses_pk', ['adapter', 'credential'])
        .execute();
    },
  };
}

/**
 * Outcome analytics at 100 k runs in one pass each: a run's wall time stored when it finishes
 * (`duration_ms`, filled here for the runs already finished, with the expression the figures
 * used to compute it), and one index holding every column `StatsStore` reads of a window's
 * runs, so a window is read from the index alone. It starts with `started_at`, so it serves
 * whatever `agent_runs_started` served, which it replaces.
 */
function m0011(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('agent_runs').addColumn('duration_ms', 'bigint').execute();
      await sql`UPDATE agent_runs SET duration_ms = ${runDurationMs(dialect, sql`finished_at`, sql`started_at`)}
        WHERE finished_at IS NOT NULL AND started_at IS NOT NULL`.execute(db);
      await db.schema
        .createIndex('agent_runs_window')
        .on('agent_runs')
        .columns([...RUN_WINDOW_COLUMNS])
        .execute();
      await db.schema.dropIndex('agent_runs_started').execute();
    },
  };
}

/**
 * Claims in the order a team expects: a task's priority (`task add --priority`) first, then the
 * oldest task, so the work of tasks already started finishes before new tasks start (depth
 * first). A job carries its task's priority, copied when it is queued (a task's priority is
 * set once, when it is created). `jobs_claim` replaces `jobs_runnable (status, run_after, id)`:
 * by status, then in claim order, with the due time last so a claim reads it from the index.
 * With both, SQLite's planner took the due-time range and sorted every due job at each claim.
 */
function m0012(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('jobs')
        .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await sql`UPDATE jobs SET priority = (SELECT t.priority FROM tasks t WHERE t.id = jobs.task_id)
        WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.id = jobs.task_id AND t.priority <> 0)`.execute(db);
      await db.schema
        .createIndex('jobs_claim')
        .on('jobs')
        .columns(['status', 'priority desc', 'task_id', 'id', 'run_after'])
        .execute();
      await db.schema.dropIndex('jobs_runnable').execute();
    },
  };
}

/**
 * A running job cancelled, or asked to stop its agent's run (`say --now`), notifies the jobs
 * channel as a queued one does: its worker, woken, looks at the jobs it works at once instead of
 * at its next heartbeat (`Scheduler.lookSoon`). On SQLite the database's directory is watched and
 * sees these writes already.
 */
function m0013(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      if (dialect !== 'postgres') return;
      await sql`
        CREATE TRIGGER jobs_notify_stop
        AFTER UPDATE OF status, interrupt_message_id ON jobs
        FOR EACH ROW WHEN (
          (OLD.status = 'running' AND NEW.status = 'cancelled')
          OR (NEW.interrupt_message_id IS NOT NULL
              AND NEW.interrupt_message_id IS DISTINCT FROM OLD.interrupt_message_id))
        EXECUTE FUNCTION orch_jobs_notify()`.execute(db);
    },
  };
}

/** The function that claims jobs on PostgreSQL (`Store.claimJobs`). */
export const CLAIM_FUNCTION = 'orch_claim_jobs';

/**
 * Claims on PostgreSQL read the queue in order whatever the statistics say. The planner knows a
 * table only from ANALYZE: for a burst of jobs queued since (a fresh table, or one analyzed when
 * nearly every job was done) it takes `status = 'queued'` for a handful of rows and, at each claim,
 * reads every queued job and sorts them all for the first few: 5–30 ms a claim with 5 000 queued
 * instead of 0.2 ms, in claims that are serial with each other's locks. PostgreSQL has no hint
 * for one statement, but a function may carry settings: the claim (the statement `Store.claimJobs`
 * sent itself before; SQLite still does) runs in `orch_claim_jobs`, where sorting and bitmap scans
 * are off, so the pick walks `jobs_claim` in claim order and stops at its limit, and the taken
 * jobs are found by their ids. `p_adapters` null means any job; `p_job` null means any job, else
 * that one only (`ClaimFilter.jobId`).
 */
function m0014(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      if (dialect !== 'postgres') return;
      const clock = (ms: string) =>
        `to_char((clock_timestamp() + ${ms} * interval '1 millisecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
      await sql`
        CREATE FUNCTION ${sql.raw(CLAIM_FUNCTION)}(p_owner text, p_lease_ms float8, p_limit integer, p_adapters text[], p_job integer)
        RETURNS SETOF jobs LANGUAGE plpgsql VOLATILE
        SET enable_sort = off
        SET enable_bitmapscan = off
        AS $$
        BEGIN
          RETURN QUERY UPDATE jobs SET
            status = 'running',
            lease_owner = p_owner,
            lease_expires_at = ${sql.raw(clock('p_lease_ms'))},
            started_at = ${sql.raw(clock('0'))},
            attempts = attempts + 1,
            interrupt_message_id = NULL
          -- ARRAY(…) makes the pick an InitPlan, run once: with a plain IN (…) PostgreSQL may run the
          -- LIMITed pick again per row and claim more than asked. The pick locked the rows, re-checked
          -- as queued: no second status test here (one the planner might read every queued row for).
          WHERE id = ANY(ARRAY(
            SELECT id FROM jobs
            WHERE status = 'queued'
              AND run_after <= ${sql.raw(clock('0'))}
              AND (p_adapters IS NULL OR adapter IS NULL OR adapter = ANY(p_adapters))
              AND (p_job IS NULL OR id = p_job)
            ORDER BY priority DESC, task_id, id
            LIMIT p_limit
            FOR UPDATE SKIP LOCKED))
          RETURNING *;
        END
        $$`.execute(db);
    },
  };
}

/** The columns of `agent_runs_window`, the start first: everything the analytics read of a run. */
export const RUN_WINDOW_COLUMNS = [
  'started_at',
  'agent',
  'adapter',
  'model',
  'effort',
  'variant',
  'task_id',
  'status',
  'outcome',
  'duration_ms',
  'input_tokens',
  'output_tokens',
  'cost_usd',
  'id',
] as const;

/**
 * Milliseconds from `start` to `end` (ISO text on both databases), rounded: what `duration_ms`
 * holds, written with the run's end (`Store.finishRun`).
 */
export function runDurationMs(
  dialect: Dialect,
  end: RawBuilder<unknown>,
  start: RawBuilder<unknown>,
): RawBuilder<number> {
  return dialect === 'postgres'
    ? sql<number>`round(extract(epoch from ((${end})::timestamptz - (${start})::timestamptz)) * 1000)`
    : sql<number>`round((unixepoch(${end}, 'subsec') - unixepoch(${start}, 'subsec')) * 1000)`;
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    getMigrations: async () => ({
      '0001_initial': m0001(dialect),
      '0002_scale_out': m0002(dialect),
      '0003_outbox_trackers': m0003(dialect),
      '0004_state_machine': m0004(),
      '0005_processes': m0005(dialect),
      '0006_dependencies': m0006(dialect),
      '0007_stats': m0007(),
      '0008_say_now': m0008(),
      '0009_usage_limits': m0009(),
      '0010_task_lists': m0010(),
      '0011_run_durations': m0011(dialect),
      '0012_claim_order': m0012(),
      '0013_stop_wakes': m0013(dialect),
      '0014_claim_function': m0014(dialect),
    }),
  };
}
