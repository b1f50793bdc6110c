/**
 * The outbox's reads and writes. Events are written in the transaction of the
 * state change they report; `fanOut` turns each into one delivery per routed
 * channel (idempotent: a unique (channel, event) pair); `claimDue` takes the
 * oldest due delivery of each (channel, task) under a lease, so one task's
 * messages go out in order and two workers never send the same one.
 */
import { sql, type Kysely } from 'kysely';
import type { Dialect } from './migrations.ts';
import type { Database, OrchEvent, OutboxItem } from './schema.ts';
import type { Executor } from './schema.ts';

const nowIso = (): string => new Date().toISOString();
const isoIn = (ms: number): string => new Date(Date.now() + ms).toISOString();

/** An event awaiting fan-out, with the project of its task (null for events about no task). */
export type PendingEvent = OrchEvent & { project_id: number | null };

export interface NewDelivery {
  channel: string;
  event: OrchEvent;
  /** The kind as the channel is routed (an event's kind, or a refinement like `gate_failed`). */
  kind: string;
}

export class OutboxStore {
  private readonly db: Kysely<Database>;
  private readonly dialect: Dialect;
  private readonly tx: <T>(fn: (tx: Executor) => Promise<T>) => Promise<T>;
  constructor(
    db: Kysely<Database>,
    dialect: Dialect,
    tx: <T>(fn: (tx: Executor) => Promise<T>) => Promise<T>,
  ) {
    this.db = db;
    this.dialect = dialect;
    this.tx = tx;
  }

  /** The oldest events not yet fanned out. */
  pendingEvents(limit: number): Promise<PendingEvent[]> {
    return this.db
      .selectFrom('events')
      .leftJoin('tasks', 'tasks.id', 'events.task_id')
      .selectAll('events')
      .select('tasks.project_id')
      .where('events.fanned_out', '=', 0)
      .orderBy('events.id')
      .limit(limit)
      .execute();
  }

  /**
   * Writes the deliveries of some events and marks those events fanned out, in
   * one transaction. A delivery another process already wrote is kept as is.
   */
  async fanOut(eventIds: readonly number[], deliveries: readonly NewDelivery[]): Promise<void> {
    if (eventIds.length === 0) return;
    const now = nowIso();
    await this.tx(async (tx) => {
      if (deliveries.length > 0) {
        await tx
          .insertInto('outbox')
          .values(
            deliveries.map((d) => ({
              channel: d.channel,
              event_id: d.event.id,
              task_id: d.event.task_id ?? 0,
              kind: d.kind,
              payload: d.event.payload,
              status: 'pending',
              attempts: 0,
              next_attempt_at: now,
              created_at: now,
            })),
          )
          .onConflict((oc) => oc.columns(['channel', 'event_id']).doNothing())
          .execute();
      }
      await tx
        .updateTable('events')
        .set({ fanned_out: 1 })
        .where('id', 'in', [...eventIds])
        .execute();
    });
  }

  /**
   * Leases up to `limit` due deliveries: for each (channel, task) only the
   * oldest pending one, and only when no earlier one of the same pair waits.
   * `exclude` names channels on hold (rate limited).
   */
  async claimDue(
    owner: string,
    leaseMs: number,
    limit: number,
    exclude: readonly string[] = [],
  ): Promise<OutboxItem[]> {
    const now = nowIso();
    let pick = this.db
      .selectFrom('outbox as o')
      .select('o.id')
      .where('o.status', '=', 'pending')
      .where('o.next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('o.lease_expires_at', 'is', null), eb('o.lease_expires_at', '<', now)]))
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('outbox as e')
              .select('e.id')
              .whereRef('e.channel', '=', 'o.channel')
              .whereRef('e.task_id', '=', 'o.task_id')
              .where('e.status', '=', 'pending')
              .whereRef('e.id', '<', 'o.id'),
          ),
        ),
      )
      .orderBy('o.id')
      .limit(limit);
    if (exclude.length > 0) pick = pick.where('o.channel', 'not in', [...exclude]);
    return this.db
      .updateTable('outbox')
      .set({ lease_owner: owner, lease_expires_at: isoIn(leaseMs) })
      .where(
        this.dialect === 'postgres'
          ? sql<boolean>`id = ANY(ARRAY(${pick.forUpdate().skipLocked()}))`
          : sql<boolean>`id IN (${pick})`,
      )
      .where('status', '=', 'pending')
      .returningAll()
      .execute();
  }

  /**
   * Marks a delivery sent. With `supersedeUpTo`, the same channel's pending
   * deliveries for the task from events up to that id are marked sent too: the
   * message just sent already shows the state they would have shown.
   */
  async markSent(item: OutboxItem, supersedeUpTo?: number): Promise<void> {
    const now = nowIso();
    await this.tx(async (tx) => {
      await tx
        .updateTable('outbox')
        .set({ status: 'sent', sent_at: now, lease_owner: null, lease_expires_at: null })
        .where('id', '=', item.id)
        .execute();
      if (supersedeUpTo !== undefined)
        await tx
          .updateTable('outbox')
          .set({ status: 'sent', sent_at: now, last_error: 'superseded' })
          .where('channel', '=', item.channel)
          .where('task_id', '=', item.task_id)
          .where('status', '=', 'pending')
          .where('event_id', '<=', supersedeUpTo)
          .execute();
    });
  }

  /** Records a failed attempt: retried at `retryAt`, or dead when `retryAt` is null. */
  async markFailed(item: OutboxItem, error: string, retryAt: Date | null): Promise<void> {
    await this.db
      .updateTable('outbox')
      .set({
        status: retryAt ? 'pending' : 'dead',
        attempts: item.attempts + 1,
        last_error: error.slice(0, 2000),
        next_attempt_at: (retryAt ?? new Date()).toISOString(),
        lease_owner: null,
        lease_expires_at: null,
      })
      .where('id', '=', item.id)
      .execute();
  }

  /**
   * Extends the lease of a delivery about to be sent; false when it is no longer ours (its lease
   * ran out while earlier ones of the batch were sent, and another process took it).
   */
  async renewLease(item: OutboxItem, owner: string, leaseMs: number): Promise<boolean> {
    const res = await this.db
      .updateTable('outbox')
      .set({ lease_expires_at: isoIn(leaseMs) })
      .where('id', '=', item.id)
      .where('lease_owner', '=', owner)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Gives a leased delivery back untouched (its channel is on hold), due at `at`. */
  async release(item: OutboxItem, at: Date): Promise<void> {
    await this.db
      .updateTable('outbox')
      .set({ next_attempt_at: at.toISOString(), lease_owner: null, lease_expires_at: null })
      .where('id', '=', item.id)
      .execute();
  }

  /** Who holds a lease on a pending delivery now (each owner once). */
  async leaseOwners(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('outbox')
      .select('lease_owner')
      .distinct()
      .where('status', '=', 'pending')
      .where('lease_owner', 'is not', null)
      .where('lease_expires_at', '>=', nowIso())
      .execute();
    return rows.map((r) => r.lease_owner!);
  }

  /**
   * Gives back every pending delivery `owner` leased (a process known dead), due when it was:
   * another process claims it at once instead of after the lease. Returns how many.
   */
  async releaseLeasesOf(owner: string): Promise<number> {
    const rows = await this.db
      .updateTable('outbox')
      .set({ lease_owner: null, lease_expires_at: null })
      .where('status', '=', 'pending')
      .where('lease_owner', '=', owner)
      .returning('id')
      .execute();
    return rows.length;
  }

  /** Unfanned events, plus pending deliveries due before `horizon` (ISO): work still to do. */
  async backlog(horizon: string): Promise<{ events: number; due: number }> {
    const e = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('fanned_out', '=', 0)
      .executeTakeFirst();
    const d = await this.db
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', horizon)
      .executeTakeFirst();
    return { events: Number(e?.n ?? 0), due: Number(d?.n ?? 0) };
  }

  /** Counts by status, per channel: for `orch status` and the metrics. */
  stats(): Promise<{ channel: string; status: string; n: number }[]> {
    return this.db
      .selectFrom('outbox')
      .select(['channel', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['channel', 'status'])
      .orderBy('channel')
      .execute()
      .then((rows) => rows.map((r) => ({ ...r, n: Number(r.n) })));
  }

  items(filter: { channel?: string; taskId?: number; status?: string } = {}): Promise<OutboxItem[]> {
    let q = this.db.selectFrom('outbox').selectAll();
    if (filter.channel) q = q.where('channel', '=', filter.channel);
    if (filter.taskId !== undefined) q = q.where('task_id', '=', filter.taskId);
    if (filter.status) q = q.where('status', '=', filter.status);
    return q.orderBy('id').execute();
  }

  /** The id of the task's newest event, or 0. */
  async latestEventOfTask(taskId: number): Promise<number> {
    const row = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('id'))
      .where('task_id', '=', taskId)
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  async getRef(channel: string, taskId: number): Promise<unknown> {
    const row = await this.db
      .selectFrom('channel_refs')
      .select('ref')
      .where('channel', '=', channel)
      .where('task_id', '=', taskId)
      .executeTakeFirst();
    return row ? (JSON.parse(row.ref) as unknown) : null;
  }

  async setRef(channel: string, taskId: number, ref: unknown): Promise<void> {
    const value = { channel, task_id: taskId, ref: JSON.stringify(ref), updated_at: nowIso() };
    await this.db
      .insertInto('channel_refs')
      .values(value)
      .onConflict((oc) =>
        oc.columns(['channel', 'task_id']).doUpdateSet({ ref: value.ref, updated_at: value.updated_at }),
      )
      .execute();
  }

  async seenDelivery(source: string, deliveryId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('webhook_deliveries')
      .select('delivery_id')
      .where('source', '=', source)
      .where('delivery_id', '=', deliveryId)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Records a webhook delivery; false when it was recorded before (a duplicate). */
  async firstDelivery(source: string, deliveryId: string): Promise<boolean> {
    const row = await this.db
      .insertInto('webhook_deliveries')
      .values({ source, delivery_id: deliveryId, received_at: nowIso() })
      .onConflict((oc) => oc.columns(['source', 'delivery_id']).doNothing())
      .returning('delivery_id')
      .executeTakeFirst();
    return row !== undefined;
  }
}
