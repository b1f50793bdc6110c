/**
 * The event feed behind `GET /api/events`: every row of the `events` table
 * after a cursor (resumable with `Last-Event-ID`), the start and finish of
 * runs (derived from `agent_runs`, so runs of any process are seen), and the
 * log lines of running agents (tailed from their log files). Everything is
 * read from the database and the files, never from one process's memory.
 */
import { elapsedMs } from '../core/stages.ts';
import type { OrchContext } from '../runtime/context.ts';
import type { AgentRun } from '../store/schema.ts';
import type { EventWithTask } from '../store/report-store.ts';
import { fileSize, readBytes, splitLines, type LogLine } from './log-lines.ts';

/** One server-sent event; only rows of the `events` table carry an `id`. */
export interface FeedEvent {
  id?: string;
  event: string;
  data: Record<string, unknown>;
}

export interface FeedOptions {
  /** Resume after this event id; null starts live (after the newest event). */
  after: number | null;
  /** Only this task's events (its id). */
  taskId?: number | undefined;
  /** Include log lines of running agents. */
  logs: boolean;
}

/** How far back run starts and finishes are looked for, to absorb clock skew and slow commits. */
const RUN_WINDOW_MS = 10_000;
/** At most this much of one log is read per poll, so one chatty agent cannot starve the rest. */
const MAX_LOG_READ_BYTES = 256 * 1024;
const EVENTS_PER_POLL = 500;

interface Tail {
  run: AgentRun & { task_key: string };
  offset: number;
}

/** What both run events say of a run: which it is, and its launch stamp. */
const runIdentity = (r: AgentRun & { task_key: string }) => ({
  run_id: r.id,
  task: r.task_key,
  role: r.agent,
  stage: r.stage,
  attempt: r.attempt,
  model: r.model,
  effort: r.effort,
});

export function runStartedData(r: AgentRun & { task_key: string }): Record<string, unknown> {
  return { ...runIdentity(r), started_at: r.started_at };
}

export function runFinishedData(r: AgentRun & { task_key: string }): Record<string, unknown> {
  return {
    ...runIdentity(r),
    outcome: r.outcome,
    exit_code: r.exit_code,
    duration_ms: elapsedMs(r),
    input_tokens: r.input_tokens,
    output_tokens: r.output_tokens,
    cost_usd: r.cost_usd,
    finished_at: r.finished_at,
  };
}

export function eventRowData(e: EventWithTask): Record<string, unknown> {
  let payload: unknown;
  try {
    payload = JSON.parse(e.payload);
  } catch {
    payload = { raw: e.payload };
  }
  return { id: e.id, kind: e.kind, task: e.task_key, payload, created_at: e.created_at };
}

export class EventFeed {
  private readonly ctx: OrchContext;
  private readonly opts: FeedOptions;
  private cursor = 0;
  private sinceIso = '';
  private started = false;
  private readonly sentStarted = new Set<number>();
  private readonly sentFinished = new Set<number>();
  private readonly tails = new Map<number, Tail>();

  constructor(ctx: OrchContext, opts: FeedOptions) {
    this.ctx = ctx;
    this.opts = opts;
  }

  /** The id of the last `events` row delivered (or skipped by the task filter). */
  get lastEventId(): number {
    return this.cursor;
  }

  private async begin(): Promise<void> {
    const now = new Date().toISOString();
    if (this.opts.after === null) {
      this.cursor = await this.ctx.store.reports.lastEventId();
      this.sinceIso = now;
    } else {
      this.cursor = this.opts.after;
      // Runs that started or finished after the resumed event are replayed too.
      const at = this.opts.after > 0 ? await this.ctx.store.reports.eventById(this.opts.after) : undefined;
      this.sinceIso = at?.created_at ?? (this.opts.after > 0 ? now : '');
    }
    this.started = true;
  }

  /** Everything new since the last poll. */
  async poll(): Promise<FeedEvent[]> {
    const first = !this.started;
    if (first) await this.begin();
    const out: FeedEvent[] = [];
    const rows = await this.ctx.store.reports.eventsAfter(this.cursor, EVENTS_PER_POLL, this.opts.taskId);
    for (const row of rows) {
      // Runs are announced from the runs table below, with their model, tokens and cost.
      if (row.kind === 'run_started' || row.kind === 'run_finished') continue;
      out.push({ id: String(row.id), event: row.kind, data: eventRowData(row) });
    }
    if (rows.length) this.cursor = rows.at(-1)!.id;
    else if (this.opts.taskId !== undefined) {
      // Filtered feeds still move past other tasks' events, so a resume skips them.
      this.cursor = Math.max(this.cursor, await this.ctx.store.reports.lastEventId());
    }
    // A run's start comes before its lines, and its last lines before its finish.
    const runs = await this.runEvents();
    out.push(...runs.started);
    if (this.opts.logs) out.push(...(await this.logEvents(first)));
    out.push(...runs.finished);
    return out;
  }

  private async runEvents(): Promise<{ started: FeedEvent[]; finished: FeedEvent[] }> {
    const pollIso = new Date(Date.now() - RUN_WINDOW_MS).toISOString();
    const since = this.sinceIso;
    const runs = await this.ctx.store.reports.runsTouchedSince(since, this.opts.taskId);
    const started: FeedEvent[] = [];
    const finished: FeedEvent[] = [];
    const seen = new Set<number>();
    for (const r of runs) {
      seen.add(r.id);
      if (r.started_at && r.started_at >= since && !this.sentStarted.has(r.id)) {
        this.sentStarted.add(r.id);
        started.push({ event: 'run_started', data: runStartedData(r) });
      }
      if (r.status !== 'running' && r.finished_at && r.finished_at >= since && !this.sentFinished.has(r.id)) {
        this.sentFinished.add(r.id);
        finished.push({ event: 'run_finished', data: runFinishedData(r) });
      }
    }
    // A run outside the window can never come back into it: forget it.
    for (const id of this.sentStarted) if (!seen.has(id)) this.sentStarted.delete(id);
    for (const id of this.sentFinished) if (!seen.has(id)) this.sentFinished.delete(id);
    if (pollIso > this.sinceIso) this.sinceIso = pollIso;
    return { started, finished };
  }

  private async logEvents(first: boolean): Promise<FeedEvent[]> {
    const running = await this.ctx.store.reports.runningRunsWithTask(this.opts.taskId);
    const runningIds = new Set(running.map((r) => r.id));
    for (const run of running) {
      if (this.tails.has(run.id) || !run.log_path) continue;
      // Agents already running at the first poll are followed from their current end (the
      // client reads earlier lines with a range read); agents started since, from their start.
      this.tails.set(run.id, { run, offset: first ? await fileSize(run.log_path) : 0 });
    }
    const out: FeedEvent[] = [];
    for (const [id, tail] of this.tails) {
      const finished = !runningIds.has(id);
      for (const line of await this.readTail(tail, finished))
        out.push({ event: 'log', data: logData(tail.run, line) });
      if (finished) this.tails.delete(id);
    }
    return out;
  }

  private async readTail(tail: Tail, final: boolean): Promise<LogLine[]> {
    const path = tail.run.log_path;
    const size = await fileSize(path);
    if (!path || size <= tail.offset) return [];
    const buf = await readBytes(path, tail.offset, Math.min(size - tail.offset, MAX_LOG_READ_BYTES));
    const atEnd = tail.offset + buf.length >= size;
    const { lines, consumed } = splitLines(buf, tail.offset, final && atEnd);
    tail.offset += consumed;
    return lines;
  }
}

function logData(run: AgentRun & { task_key: string }, line: LogLine): Record<string, unknown> {
  return { run_id: run.id, task: run.task_key, role: run.agent, ...line };
}

/**
 * Wakes waiting event streams: every stream polls on its own timer, and a
 * `notify()` (a scheduler in the same process saw progress) makes them poll now.
 */
export class Pulse {
  private waiters = new Set<() => void>();
  private closedFlag = false;

  get closed(): boolean {
    return this.closedFlag;
  }

  notify(): void {
    const ws = this.waiters;
    this.waiters = new Set();
    for (const w of ws) w();
  }

  /** Resolves after `ms`, on {@link notify}, on {@link close}, or when `signal` aborts. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.closedFlag || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Ends every stream (server shutdown). */
  close(): void {
    this.closedFlag = true;
    this.notify();
  }
}
