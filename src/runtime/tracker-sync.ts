/**
 * Tasks from a project's tracker: imported by polling (every
 * `tracker.poll_interval_s`) and by webhooks, both idempotent — a task is
 * imported once (the store's unique (project, source, id)), and a re-import
 * only refreshes its title and description. Polling backs off when the
 * tracker is down or rate limiting, by what the tracker said when it said it.
 */
import type { OrchContext, ProjectRuntime } from './context.ts';
import type { Logger } from './logger.ts';
import type { Task } from '../store/schema.ts';
import { cleanText, MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS } from '../core/text.ts';
import type { TrackerConfig } from '../trackers/config.ts';
import { TrackerError, type ExternalTask, type Tracker } from '../trackers/types.ts';
import { createTracker } from '../trackers/index.ts';
import { isOpenClosed } from '../trackers/services.ts';
import { importBlockers } from './dependencies.ts';

/**
 * Whether a task the tracker sent matches the project's import filter
 * (webhooks bring every task). States and labels only: trackers name
 * assignees differently in queries (logins, e-mails) and in answers (display
 * names), so the assignee filter is left to the tracker's own query when polling.
 */
export function matchesImport(task: ExternalTask, filter: TrackerConfig['import']): boolean {
  const lower = (s: string) => s.toLowerCase();
  if (filter.states?.length && !filter.states.map(lower).includes(lower(task.state))) return false;
  if (filter.labels?.length && !filter.labels.every((l) => task.labels.map(lower).includes(lower(l))))
    return false;
  return true;
}

/**
 * The import filter in force: the config's, with GitHub, Gitea, Forgejo and
 * GitLab importing only open issues unless told (closed ones are finished work).
 */
export function importFilter(cfg: TrackerConfig): TrackerConfig['import'] {
  return cfg.import.states || !isOpenClosed(cfg.kind) ? cfg.import : { ...cfg.import, states: ['open'] };
}

export interface ImportResult {
  task: Task;
  created: boolean;
  /** Dependencies the tracker named that were not imported (they would close a cycle), for the log. */
  dropped: string[];
}

/**
 * Imports one tracker task into a project, or refreshes the one imported
 * before, with what it waits for on the tracker (its `blockedBy`, replacing
 * what the last import said); the edges that waited for this task's import
 * are pointed at it.
 */
export async function importTask(
  ctx: OrchContext,
  rt: ProjectRuntime,
  kind: string,
  ext: ExternalTask,
): Promise<ImportResult> {
  const { task, created } = await importOne(ctx, rt, kind, ext);
  const dropped = ext.blockedBy ? await importBlockers(ctx, kind, task, ext.blockedBy) : [];
  return { task, created, dropped };
}

async function importOne(
  ctx: OrchContext,
  rt: ProjectRuntime,
  kind: string,
  ext: ExternalTask,
): Promise<Omit<ImportResult, 'dropped'>> {
  const { store } = ctx;
  // A tracker's text is taken as it comes, without what cannot reach an agent or a terminal.
  ext = {
    ...ext,
    title: cleanText(ext.title, MAX_TITLE_CHARS).trim() || ext.key,
    description: cleanText(ext.description, MAX_DESCRIPTION_CHARS),
  };
  const before = await store.taskByExternal(store.db, rt.project.id, kind, ext.id);
  if (before) {
    if (before.external_updated_at !== ext.updatedAt)
      await store.tx((tx) =>
        store.updateTask(tx, before.id, {
          title: ext.title,
          description: ext.description,
          external_updated_at: ext.updatedAt,
          external_url: ext.url,
        }),
      );
    return { task: before, created: false };
  }
  try {
    const task = await store.createTask({
      projectId: rt.project.id,
      title: ext.title,
      description: ext.description,
      labels: ext.labels,
      external: { source: kind, id: ext.id, key: ext.key, url: ext.url, updatedAt: ext.updatedAt },
    });
    return { task, created: true };
  } catch (error) {
    // Another process imported it meanwhile (the unique index refused the second row).
    const other = await store.taskByExternal(store.db, rt.project.id, kind, ext.id);
    if (other) return { task: other, created: false };
    throw error;
  }
}

/** Polls every project that has a tracker; one timer per project, rescheduled after each poll. */
export class TrackerPoller {
  private readonly ctx: OrchContext;
  private readonly log: Logger;
  private readonly onImported: () => void;
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private readonly failures = new Map<number, number>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(opts: { ctx: OrchContext; log: Logger; onImported?: () => void }) {
    this.ctx = opts.ctx;
    this.log = opts.log;
    this.onImported = opts.onImported ?? (() => {});
  }

  /** Polls every project once (awaited), then each on its own interval. */
  async start(): Promise<void> {
    const projects = await this.ctx.store.listProjects();
    await Promise.all(projects.map(async (p) => this.schedule(p.id, await this.pollProject(p.id))));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  private schedule(projectId: number, ms: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      const p = this.pollProject(projectId).then((next) => this.schedule(projectId, next));
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
    }, ms);
    timer.unref?.();
    this.timers.set(projectId, timer);
  }

  /** Polls one project; returns the milliseconds until its next poll. */
  async pollProject(projectId: number): Promise<number> {
    const IDLE_RECHECK_MS = 30_000;
    let rt: ProjectRuntime;
    try {
      rt = await this.ctx.projectRuntime(projectId);
    } catch {
      return IDLE_RECHECK_MS;
    }
    const cfg = rt.raw.tracker;
    // No tracker (yet), or webhooks only: look again later, the config may change.
    if (!cfg || cfg.poll_interval_s === 0) return IDLE_RECHECK_MS;
    const interval = cfg.poll_interval_s * 1000;
    try {
      const n = await this.poll(rt, cfg, createTracker(cfg, this.ctx.env));
      this.failures.delete(projectId);
      if (n > 0) this.onImported();
      return interval;
    } catch (error) {
      const failures = (this.failures.get(projectId) ?? 0) + 1;
      this.failures.set(projectId, failures);
      const hint = error instanceof TrackerError ? error.retryAfterMs : null;
      const wait = Math.max(hint ?? 0, Math.min(600_000, interval * 2 ** Math.min(failures, 6)));
      this.log.warn(
        `tracker of ${rt.project.name}: poll failed (${failures} in a row), next in ${Math.round(wait / 1000)} s: ${(error as Error).message}`,
      );
      return wait;
    }
  }

  /** One poll: imports what matches; returns how many tasks were new. */
  async poll(rt: ProjectRuntime, cfg: TrackerConfig, tracker: Tracker): Promise<number> {
    const filter = importFilter(cfg);
    const found = await tracker.list(filter);
    let created = 0;
    for (const ext of found) {
      if (!matchesImport(ext, filter)) continue;
      const imported = await importTask(this.ctx, rt, cfg.kind, ext);
      if (imported.created) created += 1;
      for (const why of imported.dropped) this.log.warn(`tracker of ${rt.project.name}: ${why}`);
    }
    if (created) this.log.info(`tracker of ${rt.project.name}: imported ${created} task(s)`);
    return created;
  }
}
