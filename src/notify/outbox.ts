/**
 * The outbox service: fans new events out into deliveries (one per routed
 * channel) and delivers what is due, in event order per task and channel,
 * with retries and backoff. It runs beside the scheduler in `orch run` and
 * `orch worker`, on its own timer: a slow or failing channel delays its own
 * messages and nothing else.
 */
import type { OrchContext, ProjectRuntime } from '../runtime/context.ts';
import type { Logger } from '../runtime/logger.ts';
import type { OutboxItem, Task } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { terminalPacketText } from '../runtime/packet.ts';
import { renderTaskTracker, type Locale } from './tracker.ts';
import { failureOf, type Channel, type DeliveryTools } from './channel.ts';
import { createTracker } from '../trackers/index.ts';
import { ownerDead } from '../runtime/worker-id.ts';
import { buildChannels, type ProjectChannels } from './channels.ts';

export interface OutboxOptions {
  ctx: OrchContext;
  log: Logger;
  /** Lease owner of claimed deliveries (the worker id). */
  owner: string;
  /** Milliseconds between rounds when idle. Default 500. */
  pollMs?: number;
}

/**
 * Retry delays: what the service asked for (`Retry-After`), else 2 s doubling
 * to 10 min. A retryable failure is never given up.
 */
const RETRY_BASE_MS = 2_000;
const RETRY_MAX_MS = 600_000;
const LEASE_MS = 120_000;
const BATCH = 50;
/** How often a round looks for leases held by processes that died. */
const RECLAIM_EVERY_MS = 5_000;

export const retryDelayMs = (attempts: number, hintMs: number | null): number =>
  hintMs ?? Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1));

/** The kind a delivery is routed as: a failed gate is `gate_failed`, a passed one is nobody's news. */
export function routedKind(kind: string, payload: Record<string, unknown>): string | null {
  if (kind === 'gate_result') return payload['passed'] ? null : 'gate_failed';
  return kind;
}

export class Outbox {
  private readonly opts: OutboxOptions;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  /** Channels per project, rebuilt when the project's config object changes (a reload). */
  private readonly channelCache = new Map<number, { config: object; built: ProjectChannels }>();
  /** Channels rate limited until a time: their deliveries wait without using attempts. */
  private readonly holds = new Map<string, number>();
  private readonly warned = new Set<string>();
  /** Per channel: its deliveries a minute when limited, and when its recent deliveries started. */
  private readonly rates = new Map<string, number>();
  private readonly sends = new Map<string, number[]>();
  private reclaimedAt = 0;

  constructor(opts: OutboxOptions) {
    this.opts = opts;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Runs a round now (new events were written). */
  wake(): void {
    if (this.stopped || this.running) return;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /**
   * Work left: events not yet fanned out, or deliveries due within
   * `horizonMs`. `orch run --until-idle` waits for it before it exits.
   */
  async busy(horizonMs = 30_000): Promise<boolean> {
    const { events, due } = await this.opts.ctx.store.outbox.backlog(
      new Date(Date.now() + horizonMs).toISOString(),
    );
    return events > 0 || due > 0;
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.round()
        .catch((error: unknown) => this.opts.log.warn(`outbox: ${(error as Error).message}`))
        .finally(() => {
          this.running = null;
          if (!this.stopped) this.schedule(this.opts.pollMs ?? 500);
        });
    }, ms);
    this.timer.unref?.();
  }

  /** One round: fan out, then deliver until nothing is due. Exposed for tests. */
  async round(): Promise<void> {
    await this.reclaimDeadLeases();
    while ((await this.fanOut()) === BATCH) {
      /* keep fanning out */
    }
    // Terminates: every delivery tried either leaves the due set (sent, dead, or retried later).
    while ((await this.deliverDue()) > 0) {
      /* keep delivering */
    }
  }

  /**
   * Takes back the deliveries leased by processes of this host that died (SIGKILL, a crash)
   * without waiting out their lease: otherwise each of those tasks' messages, on every channel,
   * would stall for the lease's two minutes, and `orch run --until-idle` with them. What the dead
   * process had already sent is sent again (delivery is at least once).
   */
  private async reclaimDeadLeases(): Promise<void> {
    if (Date.now() - this.reclaimedAt < RECLAIM_EVERY_MS) return;
    this.reclaimedAt = Date.now();
    const { outbox } = this.opts.ctx.store;
    for (const owner of await outbox.leaseOwners()) {
      if (owner === this.opts.owner || !ownerDead(owner)) continue;
      const n = await outbox.releaseLeasesOf(owner);
      if (n) this.opts.log.warn(`outbox: took back ${n} deliveries leased by ${owner}, which died`);
    }
  }

  /** Turns pending events into deliveries; returns how many events it took. */
  async fanOut(): Promise<number> {
    const { store } = this.opts.ctx;
    const events = await store.outbox.pendingEvents(BATCH);
    if (events.length === 0) return 0;
    const deliveries = [];
    for (const event of events) {
      if (event.project_id === null) continue;
      const payload = parsePayload(event.payload);
      const kind = routedKind(event.kind, payload);
      if (!kind) continue;
      for (const [channel, events] of (await this.channelsOf(event.project_id)).routes)
        if (events.has(kind)) deliveries.push({ channel, event, kind });
    }
    await store.outbox.fanOut(
      events.map((e) => e.id),
      deliveries,
    );
    return events.length;
  }

  /** Delivers the due deliveries of one batch; returns how many it tried. */
  async deliverDue(): Promise<number> {
    const { store } = this.opts.ctx;
    const now = Date.now();
    for (const [id, until] of this.holds) if (until <= now) this.holds.delete(id);
    const items = await store.outbox.claimDue(this.opts.owner, LEASE_MS, BATCH, [...this.holds.keys()]);
    // Deliveries of different channels go out side by side; one channel's in order.
    const byChannel = Map.groupBy(items, (item) => item.channel);
    await Promise.all([...byChannel.values()].map((list) => this.deliverAll(list)));
    return items.length;
  }

  private async deliverAll(items: OutboxItem[]): Promise<void> {
    for (const item of items) {
      const hold = this.holds.get(item.channel) ?? this.takeRateSlot(item.channel);
      if (hold && hold > Date.now()) {
        await this.opts.ctx.store.outbox.release(item, new Date(hold));
        continue;
      }
      await this.deliverOne(item);
    }
  }

  /**
   * For a channel with a `rate_per_minute`: takes one of its deliveries of the last minute and
   * returns null, or, when it has used them all, returns when the oldest leaves the window.
   * Channels without a limit keep no record.
   */
  private takeRateSlot(channel: string): number | null {
    const rate = this.rates.get(channel);
    if (!rate) return null;
    const now = Date.now();
    const recent = (this.sends.get(channel) ?? []).filter((t) => t > now - 60_000);
    this.sends.set(channel, recent);
    if (recent.length >= rate) return recent[recent.length - rate]! + 60_000;
    recent.push(now);
    return null;
  }

  private async deliverOne(item: OutboxItem): Promise<void> {
    const { store } = this.opts.ctx;
    // A batch is sent one delivery after another: a slow service could outlast the batch's lease.
    if (!(await store.outbox.renewLease(item, this.opts.owner, LEASE_MS))) return;
    // Read before the task: a coalescing channel's send marks the deliveries up to this event sent, so
    // the task it shows must already reflect them (an escalation committed between the two reads would
    // otherwise be marked sent without the channel having seen it).
    const latestEvent = await this.opts.ctx.store.outbox.latestEventOfTask(item.task_id);
    const task = await store.getTask(item.task_id).catch(() => null);
    if (!task) return store.outbox.markFailed(item, 'the task no longer exists', null);
    const rt = await this.opts.ctx.projectRuntime(task.project_id);
    const channel = (await this.channelsOf(task.project_id)).channels.get(item.channel);
    if (!channel) {
      // Removed from the config, or its token is missing: kept, and tried again later.
      return store.outbox.markFailed(
        item,
        `channel ${item.channel} is not configured`,
        new Date(Date.now() + 60_000),
      );
    }
    try {
      await channel.deliver(
        { item, payload: parsePayload(item.payload), task, project: rt.project },
        this.tools(channel, task, rt),
      );
      await store.outbox.markSent(item, channel.coalesce ? latestEvent : undefined);
    } catch (error) {
      const f = failureOf(error);
      if (f.permanent) {
        this.opts.log.warn(`outbox: ${channel.id} gave up on ${item.kind} of ${task.key}: ${f.message}`);
        return store.outbox.markFailed(item, f.message, null);
      }
      const delay = retryDelayMs(item.attempts + 1, f.retryAfterMs);
      if (f.retryAfterMs !== null) this.holds.set(channel.id, Date.now() + f.retryAfterMs);
      this.opts.log.debug(
        `outbox: ${channel.id} ${item.kind} of ${task.key} failed, retry in ${delay} ms: ${f.message}`,
      );
      await store.outbox.markFailed(item, f.message, new Date(Date.now() + delay));
    }
  }

  private tools(channel: Channel, task: Task, rt: ProjectRuntime): DeliveryTools {
    const { store } = this.opts.ctx;
    const taskUrl = taskLink(task, rt);
    return {
      taskUrl,
      locale: rt.raw.locale,
      log: this.opts.log,
      message: () =>
        trackerMessage(
          store,
          task.id,
          rt,
          rt.raw.locale,
          this.opts.ctx.settings.trackerLiveStatus ? { env: this.opts.ctx.env } : undefined,
        ),
      terminalPacket: async () => terminalPacketText(this.opts.ctx, await store.getTask(task.id), rt),
      getRef: async <T>() => (await store.outbox.getRef(channel.id, task.id)) as T | null,
      setRef: (ref) => store.outbox.setRef(channel.id, task.id, ref),
    };
  }

  /** The channels of a project's current config. */
  async channelsOf(projectId: number): Promise<ProjectChannels> {
    const rt = await this.opts.ctx.projectRuntime(projectId);
    const cached = this.channelCache.get(projectId);
    if (cached && cached.config === rt.raw) return cached.built;
    const { ctx } = this.opts;
    const built = buildChannels({
      project: rt.project,
      config: rt.raw,
      env: ctx.env,
      store: ctx.store,
    });
    for (const p of built.problems) {
      const key = `${rt.project.name}:${p}`;
      if (this.warned.has(key)) continue;
      this.warned.add(key);
      this.opts.log.warn(`notifications of ${rt.project.name}: ${p}`);
    }
    // A reload may change or drop a channel's limit.
    for (const id of this.rates.keys()) if (id.startsWith(`${rt.project.name}/`)) this.rates.delete(id);
    for (const [id, rate] of built.rates) this.rates.set(id, rate);
    this.channelCache.set(projectId, { config: rt.raw, built });
    return built;
  }
}

function parsePayload(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** A task's tracker message as it stands now: what chat channels show, and `orch task show --tracker`. */
export async function trackerMessage(
  store: Store,
  taskId: number,
  rt: ProjectRuntime,
  locale: Locale,
  live?: { env: Readonly<Record<string, string | undefined>> },
): Promise<string> {
  const task = await store.getTask(taskId);
  const runs = await store.runsOfTask(task.id);
  const { key, title, stage, status } = task;
  const liveState = live ? await liveTrackerState(task, rt, live.env) : null;
  return renderTaskTracker(
    {
      task: { key, title, stage, status, url: taskLink(task, rt), liveState },
      runs,
      now: new Date().toISOString(),
    },
    locale,
  );
}

/**
 * The state an imported task has on its tracker now (`ORCH_TRACKER_LIVE_STATUS`), or null: not
 * imported, no tracker configured, or the tracker could not be read (the message goes out anyway).
 */
async function liveTrackerState(
  task: Task,
  rt: ProjectRuntime,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string | null> {
  const cfg = rt.raw.tracker;
  if (!cfg || task.external_source !== cfg.kind || !task.external_id) return null;
  try {
    return (await createTracker(cfg, env).get(task.external_id))?.state ?? null;
  } catch {
    return null;
  }
}

/** A task's link in messages: its tracker page, else its dashboard page when the dashboard's URL is known. */
export function taskLink(
  task: Task,
  rt: { raw: { notify: { dashboard_url?: string | undefined } } },
): string | null {
  if (task.external_url) return task.external_url;
  const base = rt.raw.notify.dashboard_url;
  return base ? `${base.replace(/\/+$/, '')}/#/tasks/${encodeURIComponent(task.key)}` : null;
}
