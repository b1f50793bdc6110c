/**
 * Table types. Timestamps are ISO-8601 UTC text (`toISOString()`), which sorts
 * and compares correctly as text on SQLite and PostgreSQL alike.
 */
import type { Generated, Insertable, Kysely, Selectable, Transaction, Updateable } from 'kysely';
import type { Stage, TaskStatus } from '../core/stages.ts';
import type { TerminalReason } from '../core/build-loop.ts';
import type { JobStep } from '../core/pipeline.ts';
import type { RunOutcome } from '../core/run-outcome.ts';

/** queued (waiting to be claimed), running (held under a lease), done, failed, cancelled. */
export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface ProjectsTable {
  id: Generated<number>;
  name: string;
  root_path: string;
  base_branch: string;
  key_prefix: string;
  next_task_number: number;
  created_at: string;
  /** The `origin` URL of the repository when it was registered; workers on other machines clone it. */
  remote_url: string | null;
}

export interface TasksTable {
  id: Generated<number>;
  project_id: number;
  key: string;
  title: string;
  description: string;
  priority: number;
  labels: string;
  stage: Stage;
  status: TaskStatus;
  /** Why the task stopped (escalated or cancelled), one of the terminal reasons. */
  terminal_reason: TerminalReason | null;
  status_detail: string | null;
  /** Bumped on every stage change: the compare-and-set token. */
  version: number;
  /** The current build-loop attempt number (0 before the first development run). */
  attempt: number;
  /** Feedback for the next development run (review comments, gate output). */
  feedback: string | null;
  /** Budget overrides as JSON (raised by `orch task retry`). */
  budget_json: string | null;
  loop_run_id: string | null;
  /** Failure routes taken to stages other than development, as JSON `{"from>to": times}`. */
  loops: Generated<string>;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** For a task imported from a tracker: the tracker's kind (`github`, `linear`…), else null. */
  external_source: string | null;
  /** The tracker's id of the task (`ExternalTask.id`). */
  external_id: string | null;
  /** The key people know it by in the tracker (`acme/app#12`, `ENG-42`). */
  external_key: string | null;
  /** The task's page in the tracker. */
  external_url: string | null;
  /** The tracker's `updatedAt` when last imported: a re-import with the same value changes nothing. */
  external_updated_at: string | null;
}

export interface AgentRunsTable {
  id: Generated<number>;
  task_id: number;
  job_id: number | null;
  /** The role (the seed's column name). */
  agent: string;
  stage: string | null;
  attempt: number | null;
  adapter: string | null;
  model: string | null;
  effort: string | null;
  /** The A/B variant of the role the task was assigned (`agents.<role>.variants`), else null. */
  variant: string | null;
  timeout_s: number | null;
  pid: number | null;
  pgid: number | null;
  worker_id: string | null;
  status: 'running' | 'finished';
  /** How the run ended; null while it runs. */
  outcome: RunOutcome | null;
  started_at: string | null;
  finished_at: string | null;
  /** Wall time from start to finish in ms, written when the run finishes; null while it runs. */
  duration_ms: number | null;
  exit_code: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cache_read_tokens: number | null;
  cache_write_tokens: number | null;
  cost_usd: number | null;
  session_id: string | null;
  num_turns: number | null;
  log_path: string | null;
  result_text: string | null;
  error: string | null;
  /** For development runs: hash of the task's diff against the base after the run. */
  diff_hash: string | null;
}

export interface JobsTable {
  id: Generated<number>;
  task_id: number;
  project_id: number;
  /** The role to run, or the stage kind for stages without an agent. */
  agent: string;
  /** The project's name (the seed's column). */
  repo: string;
  /** The adapter the role's agent needs (`agents.<role>.adapter`); null for stages without an agent. */
  adapter: string | null;
  /** Which of the adapter's credentials the role's agent uses ('' for orch's own environment); null without an adapter. */
  credential: Generated<string | null>;
  stage: Stage;
  /** `work` works the stage; `land` lands the task after its last stage. */
  step: Generated<JobStep>;
  status: JobStatus;
  /** Its task's priority, copied when the job is queued: claims take higher first (migration 0012). */
  priority: Generated<number>;
  run_id: number | null;
  /** Tries of this job: counted at each claim (so a try whose worker died counts), given back by a graceful shutdown. */
  attempts: number;
  /** Tries that ended with a recorded failure; the other tries before the current one were cut off. */
  failures: Generated<number>;
  /**
   * A person's message (`human_message` event id) the running try is asked to stop for
   * (`orch task say --now`); the holder's heartbeat reads it, a claim clears it.
   */
  interrupt_message_id: number | null;
  run_after: string;
  lease_owner: string | null;
  lease_expires_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  last_error: string | null;
  created_at: string;
}

export interface AttemptsTable {
  id: Generated<number>;
  task_id: number;
  n: number;
  diff_hash: string;
  verdict: 'approved' | 'rejected';
  feedback: string;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number | null;
  duration_ms: number;
  reason: string | null;
  dev_run_id: number | null;
  review_run_id: number | null;
  created_at: string;
}

export interface GateResultsTable {
  id: Generated<number>;
  task_id: number;
  stage: string;
  name: string;
  passed: number;
  output_tail: string;
  started_at: string;
  finished_at: string;
}

export interface EventsTable {
  id: Generated<number>;
  task_id: number | null;
  kind: string;
  payload: string;
  created_at: string;
  /** 1 once the outbox pump has turned the event into deliveries (one per routed channel). */
  fanned_out: Generated<number>;
}

/**
 * One delivery of one event to one channel (a chat, a webhook, the project's
 * tracker). Written in the same database as the state it reports, so nothing
 * is lost when a process dies; retried with backoff until sent or dead.
 */
export interface OutboxTable {
  id: Generated<number>;
  /** `<project>/<channel name>`, e.g. `app/team-chat`, or `<project>/tracker`. */
  channel: string;
  event_id: number;
  /** 0 for events about no task (deliveries for one task go out in order). */
  task_id: number;
  kind: string;
  payload: string;
  /** pending, sent, dead (a permanent failure; `last_error` says why). */
  status: string;
  attempts: number;
  next_attempt_at: string;
  lease_owner: string | null;
  lease_expires_at: string | null;
  last_error: string | null;
  created_at: string;
  sent_at: string | null;
}

/** What a channel remembers about a task between deliveries: the chat message it edits in place. */
export interface ChannelRefsTable {
  channel: string;
  task_id: number;
  /** JSON owned by the channel (Telegram `{chat_id, message_id}`, Slack `{channel, ts}`). */
  ref: string;
  updated_at: string;
}

/** Webhook deliveries already acted on, so a duplicate delivery has no second effect. */
export interface WebhookDeliveriesTable {
  source: string;
  delivery_id: string;
  received_at: string;
}

/**
 * "`task_id` waits for `blocker_task_id`": a task is not dispatched before
 * every task it depends on is done. An edge imported from a tracker may name
 * a blocker not imported yet (`blocker_task_id` null, the tracker's id and
 * key kept); it is resolved when that task is imported.
 */
export interface TaskDependenciesTable {
  id: Generated<number>;
  project_id: number;
  /** The dependent task. */
  task_id: number;
  /** The task it waits for; null while that task is not imported. */
  blocker_task_id: number | null;
  /** For an imported edge: the tracker's kind (`github`, `linear`…). */
  blocker_source: string | null;
  /** The blocker's `ExternalTask.id`, for an imported edge. */
  blocker_external_id: string | null;
  /** The blocker's key on the tracker (`acme/app#3`), shown while it is not imported. */
  blocker_external_key: string | null;
  /** `orch` (added with the CLI, the API or the dashboard) or `tracker` (imported, replaced by each import). */
  origin: string;
  created_at: string;
}

/**
 * A process group orch started besides an agent run (a gate's command, a command stage, a hook),
 * recorded while it runs so a restart can end what a dead orch left behind.
 */
export interface ProcessesTable {
  id: Generated<number>;
  task_id: number | null;
  job_id: number | null;
  /** gate, command (a command stage), hook. */
  kind: string;
  /** The gate's name, the stage's name, the hook's name. */
  name: string;
  pid: number;
  pgid: number;
  /** `<boot id>:<start time in clock ticks>` of the group's leader (Linux), so a reused pgid is never signalled; null elsewhere. */
  identity: string | null;
  /** The worker (`<host>:<pid>:<random>`) that started it: only a process on that host can end it. */
  worker_id: string;
  /** running, finished. */
  status: string;
  /** ok, failed, timeout, interrupted, spawn_error. */
  outcome: string | null;
  exit_code: number | null;
  /** Why it was finalized by someone else than its owner (recovery). */
  detail: string | null;
  started_at: string;
  finished_at: string | null;
}

/** An adapter (with one credential) paused until its provider's usage limit resets. */
export interface AdapterPausesTable {
  adapter: string;
  /** '' for the credential in orch's own environment; a fingerprint for one set in a role's env. */
  credential: string;
  /** The database's time when dispatch for it resumes. */
  until_at: string;
  /** Limits in a row, for the doubling pause when the provider names no reset. */
  strikes: number;
  /** The limit's window as the provider names it (`five_hour`, `seven_day`). */
  window: string | null;
  message: string | null;
  /** The task whose run hit the limit. */
  task_key: string | null;
  started_at: string;
}

export interface Database {
  projects: ProjectsTable;
  tasks: TasksTable;
  agent_runs: AgentRunsTable;
  jobs: JobsTable;
  attempts: AttemptsTable;
  gate_results: GateResultsTable;
  events: EventsTable;
  outbox: OutboxTable;
  channel_refs: ChannelRefsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  task_dependencies: TaskDependenciesTable;
  processes: ProcessesTable;
  adapter_pauses: AdapterPausesTable;
}

export type Project = Selectable<ProjectsTable>;
export type Task = Selectable<TasksTable>;
export type NewTask = Insertable<TasksTable>;
export type TaskUpdate = Updateable<TasksTable>;
export type AgentRun = Selectable<AgentRunsTable>;
export type Job = Selectable<JobsTable>;
export type Attempt = Selectable<AttemptsTable>;
export type GateResult = Selectable<GateResultsTable>;
export type OrchEvent = Selectable<EventsTable>;
export type OutboxItem = Selectable<OutboxTable>;
export type TaskDependency = Selectable<TaskDependenciesTable>;

/** Where a statement runs: the database, or one transaction of it. */
export type Executor = Kysely<Database> | Transaction<Database>;
export type ProcessRow = Selectable<ProcessesTable>;
export type AdapterPause = Selectable<AdapterPausesTable>;
