/**
 * What `orch status`, `GET /api/status` and the dashboard show: projects, task
 * counts, the queue, the agents in flight, config errors and the outbox.
 */
import type { OrchContext } from './context.ts';
import type { PausedAdapterJson } from '../http/types.ts';

export async function statusData(ctx: OrchContext) {
  const projects = await ctx.store.listProjects();
  const tasks = await ctx.store.listTasks();
  const counts: Record<string, number> = {};
  for (const t of tasks) counts[t.status] = (counts[t.status] ?? 0) + 1;
  const running = await ctx.store.getRunningAgents();
  const configErrors: { project: string; error: string }[] = [];
  for (const p of projects) {
    try {
      await ctx.projectRuntime(p.id);
      const kept = ctx.configError(p.id);
      if (kept)
        configErrors.push({ project: p.name, error: `${kept}\n(the last good configuration is in use)` });
    } catch (error) {
      configErrors.push({ project: p.name, error: (error as Error).message });
    }
  }
  return {
    home: ctx.home,
    database: ctx.database,
    projects: projects.map((p) => ({
      name: p.name,
      root: p.root_path,
      base_branch: p.base_branch,
      key_prefix: p.key_prefix,
    })),
    tasks: { total: tasks.length, by_status: counts },
    queue: { queued: await ctx.store.countJobs('queued'), running: await ctx.store.countJobs('running') },
    running_agents: running.map((r) => ({
      task: r.task_key,
      role: r.agent,
      stage: r.stage,
      model: r.model,
      effort: r.effort,
      pid: r.pid,
      run_id: r.run_id,
      started_at: r.started_at,
      elapsed_s: r.started_at ? Math.round((Date.now() - Date.parse(r.started_at)) / 1000) : null,
      timeout_s: r.timeout_s,
      worker: r.worker_id,
    })),
    // Adapters (per credential) paused by a provider's usage limit: no run of theirs starts until `until`.
    paused_adapters: await pausedAdapters(ctx),
    config_errors: configErrors,
    outbox: await outboxSummary(ctx),
  };
}

/** Adapters (per credential) paused by a provider's usage limit: no run of theirs starts until `until`. */
export async function pausedAdapters(ctx: OrchContext): Promise<PausedAdapterJson[]> {
  return (await ctx.store.pauses.active()).map((p) => ({
    adapter: p.adapter,
    credential: p.credential || null,
    until: p.until_at,
    since: p.started_at,
    window: p.window,
    message: p.message,
    task: p.task_key,
  }));
}

/** Deliveries per channel by status, and the last error of each channel with dead deliveries. */
async function outboxSummary(ctx: OrchContext) {
  const byChannel = new Map<string, { channel: string; pending: number; sent: number; dead: number }>();
  for (const r of await ctx.store.outbox.stats()) {
    const row = byChannel.get(r.channel) ?? { channel: r.channel, pending: 0, sent: 0, dead: 0 };
    if (r.status === 'pending' || r.status === 'sent' || r.status === 'dead') row[r.status] += r.n;
    byChannel.set(r.channel, row);
  }
  return [...byChannel.values()];
}

/** The shape of {@link statusData}: the CLI's `--json` and the API's `/api/status`. */
export type StatusData = Awaited<ReturnType<typeof statusData>>;
