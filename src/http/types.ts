/**
 * The JSON shapes the API returns, for clients in TypeScript (the dashboard
 * imports these types; they are derived from the views, never restated).
 */
import type { attemptView, gateView, runView, taskDetail, taskSummary } from '../runtime/views.ts';
import type { StatusData } from '../runtime/status.ts';
import type { LogLine } from './log-lines.ts';
import type { QueuedJob } from '../store/report-store.ts';
import type { OrchContext } from '../runtime/context.ts';
import type { Pulse } from './events.ts';

export type TaskSummaryJson = ReturnType<typeof taskSummary>;
export type TaskDetailJson = Awaited<ReturnType<typeof taskDetail>>;
export type RunJson = ReturnType<typeof runView> & { task: string; label: string | null };
export type AttemptJson = ReturnType<typeof attemptView>;
export type GateJson = ReturnType<typeof gateView>;
export type StatusJson = StatusData & {
  server: { workers: number; version: string };
};
export type { CostReport, SpendRow } from './costs.ts';
export type { GroupStats, StatsReport, VariantComparison } from '../core/stats.ts';
export type { LogLine, LogLineKind, LogRange } from './log-lines.ts';
export type { QueuedJob } from '../store/report-store.ts';
export type { ErrorBody } from './errors.ts';

export interface ProjectJson {
  name: string;
  root: string;
  base_branch: string;
  key_prefix: string;
}

/** `GET /api/agents`: an agent in flight. */
export interface AgentJson {
  run_id: number;
  job_id: number | null;
  task: string | null;
  role: string;
  stage: string | null;
  model: string | null;
  effort: string | null;
  /** `opus-4-8 · xhigh`, or null when the run has no stamp. */
  label: string | null;
  pid: number | null;
  started_at: string | null;
  elapsed_s: number | null;
  timeout_s: number | null;
  worker: string | null;
}

/** `GET /api/queue`: the queue's depth and its first jobs, each `due` or waiting for a backoff. */
/** An adapter (with one credential) paused by its provider's usage limit. */
export interface PausedAdapterJson {
  adapter: string;
  /** Null for the credential in orch's own environment; a fingerprint for one a role's env sets. */
  credential: string | null;
  /** When dispatch for it resumes (ISO-8601 UTC). */
  until: string;
  since: string;
  window: string | null;
  message: string | null;
  /** The task whose run hit the limit. */
  task: string | null;
}

export interface QueueJson {
  depth: number;
  jobs: (QueuedJob & { due: boolean })[];
  /** Adapters paused by a usage limit: their jobs wait until the reset. */
  paused_adapters: PausedAdapterJson[];
}

/** `GET /api/runs/{id}/log` in JSON. */
export interface LogResponse {
  run_id: number;
  task: string;
  running: boolean;
  offset: number;
  next_offset: number;
  size: number;
  lines: LogLine[];
}

/** `GET /api/tasks/{key}/events`, and the data of SSE events that come from the `events` table. */
export interface EventJson {
  id: number;
  kind: string;
  task: string | null;
  payload: Record<string, unknown>;
  created_at: string;
}

/** What the API's routes are given. */
export interface RouteDeps {
  ctx: OrchContext;
  /** Values that must never appear in a response. */
  secrets: readonly string[];
  pulse: Pulse;
  /** SSE poll interval in ms. */
  ssePollMs: number;
  /** SSE keep-alive comment interval in ms. */
  sseKeepAliveMs: number;
  /** Called after the API queued work, to wake a scheduler in this process. */
  onWorkQueued: () => void;
  /** Agents the scheduler in this process runs at once; 0 when it runs none. */
  workers: number;
}
