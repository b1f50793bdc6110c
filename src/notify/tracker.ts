/**
 * The task tracker message: a header, one line per pipeline stage (state
 * icon, name, time and money spent there, and `model · effort` of the
 * stage's last run), and a totals line. Pure: the caller passes the task, its
 * runs and, for runs still in flight, `now`.
 */
import { STAGE_ROLE, STAGES, type Stage } from '../core/stages.ts';
import { modelEffortLabel } from '../core/model.ts';

export type Locale = 'en' | 'ru';

/** The task as the tracker shows it. */
export interface TrackerTask {
  key: string;
  title: string;
  stage: string;
  status: string;
  /** A link to the task (tracker issue, dashboard page); shown in the header when given. */
  url?: string | null;
  /** The task's state as its tracker holds it now (`ORCH_TRACKER_LIVE_STATUS`); shown in the header. */
  liveState?: string | null;
}

/** One agent run, in the `agent_runs` columns the message needs (a store row fits as is). */
export interface TrackerRun {
  /** Breaks ties between runs that started at the same moment. */
  id?: number;
  /** The role. */
  agent: string;
  /** The stage the run worked; when null, the first stage its role works. */
  stage: string | null;
  /** ISO-8601; a zone-less `YYYY-MM-DD HH:MM:SS` is read as UTC. */
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  cost_usd: number | null;
  model: string | null;
  effort: string | null;
}

export interface TrackerInput {
  task: TrackerTask;
  runs: readonly TrackerRun[];
  /** ISO-8601 time; runs without `finished_at` count up to it. Without it they count zero. */
  now?: string;
}

export type StageState = 'done' | 'running' | 'waiting' | 'failed' | 'pending';

export const STATE_ICONS: Readonly<Record<StageState, string>> = {
  done: '✅',
  running: '🔄',
  waiting: '⏳',
  failed: '❌',
  pending: '▫️',
};

/** The stages a tracker message lists: the pipeline without its entry and its cancel sink. */
export const TRACKED_STAGES: readonly Stage[] = STAGES.filter((s) => s !== 'created' && s !== 'cancelled');

interface Words {
  stages: Readonly<Record<string, string>>;
  total: string;
  units: { h: string; m: string; s: string };
}

const WORDS: Readonly<Record<Locale, Words>> = {
  en: {
    stages: {
      analysis: 'Analysis',
      architecture: 'Architecture',
      development: 'Development',
      review: 'Review',
      testing: 'Testing',
      'deploy-staging': 'Deploy (staging)',
      deploy: 'Deploy',
      done: 'Done',
    },
    total: 'Total',
    units: { h: 'h', m: 'm', s: 's' },
  },
  ru: {
    stages: {
      analysis: 'Анализ',
      architecture: 'Архитектура',
      development: 'Разработка',
      review: 'Ревью',
      testing: 'Тестирование',
      'deploy-staging': 'Деплой (стейджинг)',
      deploy: 'Деплой',
      done: 'Готово',
    },
    total: 'Итого',
    units: { h: 'ч', m: 'м', s: 'с' },
  },
};

/** The localized name of a stage (the stage id itself for a stage outside the default pipeline). */
export const stageName = (stage: string, locale: Locale): string => WORDS[locale].stages[stage] ?? stage;

/** Milliseconds since the epoch, or NaN. Zone-less SQLite timestamps are UTC. */
function parseTime(value: string | null | undefined): number {
  if (!value) return Number.NaN;
  const zoneless = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value);
  return Date.parse(zoneless ? `${value.replace(' ', 'T')}Z` : value);
}

const stageOfRun = (run: TrackerRun): string | null => {
  if (run.stage) return run.stage;
  const byRole = TRACKED_STAGES.find((s) => STAGE_ROLE[s] === run.agent);
  return byRole ?? null;
};

function runDurationMs(run: TrackerRun, nowMs: number): number {
  const start = parseTime(run.started_at);
  const end = run.finished_at ? parseTime(run.finished_at) : nowMs;
  return Number.isFinite(start) && Number.isFinite(end) && end > start ? end - start : 0;
}

/** The run that started last; equal start times are ordered by id. */
export function lastRun<T extends TrackerRun>(runs: readonly T[]): T | null {
  let best: T | null = null;
  let bestAt = Number.NEGATIVE_INFINITY;
  for (const run of runs) {
    const at = parseTime(run.started_at);
    const key = Number.isFinite(at) ? at : Number.NEGATIVE_INFINITY;
    if (best === null || key > bestAt || (key === bestAt && (run.id ?? 0) >= (best.id ?? 0))) {
      best = run;
      bestAt = key;
    }
  }
  return best;
}

/**
 * The state of one stage. Stages before the task's current one are done if
 * they were worked (have runs); the current one is running while a run of it
 * is unfinished, failed when the task stopped there (escalated or cancelled),
 * else waiting; later stages are pending. A finished task's last stage is done.
 */
export function stageState(
  stage: Stage,
  currentStage: string,
  taskStatus: string,
  stageRuns: readonly TrackerRun[],
): StageState {
  const index = TRACKED_STAGES.indexOf(stage);
  const current = TRACKED_STAGES.indexOf(currentStage as Stage);
  if (current === -1 || index > current) return 'pending';
  if (index < current) return stageRuns.length ? 'done' : 'pending';
  if (stage === 'done') return 'done';
  if (stageRuns.some((r) => !r.finished_at)) return 'running';
  if (taskStatus === 'escalated' || taskStatus === 'cancelled') return 'failed';
  return 'waiting';
}

function formatDuration(ms: number, locale: Locale): string {
  const { h, m, s } = WORDS[locale].units;
  const totalS = Math.round(ms / 1000);
  const hours = Math.floor(totalS / 3600);
  const minutes = Math.floor((totalS % 3600) / 60);
  const seconds = totalS % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (hours) return `${hours}${h} ${pad(minutes)}${m}`;
  if (minutes) return `${minutes}${m} ${pad(seconds)}${s}`;
  return `${seconds}${s}`;
}

/** `$1.23`; a cost below a cent but above zero stays visible as `<$0.01`; no reported cost is `–`. */
function formatCost(costs: readonly (number | null)[]): string {
  const known = costs.filter((c): c is number => c !== null && Number.isFinite(c));
  if (!known.length) return '–';
  const sum = known.reduce((a, b) => a + b, 0);
  return sum > 0 && sum < 0.005 ? '<$0.01' : `$${sum.toFixed(2)}`;
}

/** Renders the tracker message in `locale`. */
export function renderTaskTracker(input: TrackerInput, locale: Locale): string {
  const { task, runs } = input;
  const nowMs = input.now ? parseTime(input.now) : Number.NaN;
  // A cancelled task stopped where its last run worked.
  const stoppedAt = lastRun(runs);
  const currentStage = task.stage === 'cancelled' ? ((stoppedAt && stageOfRun(stoppedAt)) ?? '') : task.stage;

  const header = `${task.key} — ${task.title}${task.liveState ? ` [${task.liveState}]` : ''}${task.url ? ` — ${task.url}` : ''}`;
  const lines = [header];
  for (const stage of TRACKED_STAGES) {
    const stageRuns = runs.filter((r) => stageOfRun(r) === stage);
    const icon = STATE_ICONS[stageState(stage, currentStage, task.status, stageRuns)];
    let line = `${icon} ${stageName(stage, locale)}`;
    if (stageRuns.length) {
      const ms = stageRuns.reduce((sum, r) => sum + runDurationMs(r, nowMs), 0);
      line += ` — ${formatDuration(ms, locale)} · ${formatCost(stageRuns.map((r) => r.cost_usd))}`;
      const last = lastRun(stageRuns);
      const label = last ? modelEffortLabel(last.model, last.effort) : null;
      if (label) line += ` · ${label}`;
    }
    lines.push(line);
  }
  const totalMs = runs.reduce((sum, r) => sum + runDurationMs(r, nowMs), 0);
  lines.push(
    `${WORDS[locale].total}: ${formatDuration(totalMs, locale)} · ${formatCost(runs.map((r) => r.cost_usd))}`,
  );
  return lines.join('\n');
}
