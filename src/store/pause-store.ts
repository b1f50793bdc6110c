/**
 * Adapter pauses: an adapter, with one of its credentials, held back until
 * its provider's usage limit resets. A pause holds back work by its due
 * time: every queued job of that adapter and credential is due no sooner
 * than the pause's end, and so is every job queued for it while the pause
 * lasts. Claims need no check of their own, and the scheduler's next due time
 * wakes it at the reset. Times are the database's clock.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { AdapterPause, Database, Executor } from './schema.ts';

/** One pause to record: `ms` from now, by the database's clock. */
export interface PauseRequest {
  adapter: string;
  credential: string;
  ms: number;
  strikes: number;
  window: string | null;
  message: string;
  taskKey: string;
  /** The status line of the queued tasks the pause holds back. */
  heldDetail?: string;
}

export class PauseStore {
  private readonly db: Kysely<Database>;
  private readonly clock: (ms?: number) => RawBuilder<string>;
  constructor(db: Kysely<Database>, clock: (ms?: number) => RawBuilder<string>) {
    this.db = db;
    this.clock = clock;
  }

  /** The pause of an adapter's credential, live or over. */
  get(adapter: string, credential: string, ex: Executor = this.db): Promise<AdapterPause | undefined> {
    return this.of(ex, adapter, credential).executeTakeFirst();
  }

  /** The pause of an adapter's credential when it is in force now, by the database's clock. */
  live(adapter: string, credential: string): Promise<AdapterPause | undefined> {
    return this.of(this.db, adapter, credential).where('until_at', '>', this.clock()).executeTakeFirst();
  }

  private of(ex: Executor, adapter: string, credential: string) {
    return ex
      .selectFrom('adapter_pauses')
      .selectAll()
      .where('adapter', '=', adapter)
      .where('credential', '=', credential);
  }

  /** The pauses still in force, soonest end first. */
  active(ex: Executor = this.db): Promise<AdapterPause[]> {
    return ex
      .selectFrom('adapter_pauses')
      .selectAll()
      .where('until_at', '>', this.clock())
      .orderBy('until_at')
      .orderBy('adapter')
      .execute();
  }

  /**
   * Records a pause (a live one is only ever lengthened) and holds back the adapter's queued jobs.
   * `fresh` is true when no pause of it was in force: the one time a pause is announced.
   */
  async pause(tx: Executor, p: PauseRequest): Promise<{ until: string; fresh: boolean }> {
    const times = await sql<{
      now: string;
      until: string;
    }>`SELECT ${this.clock()} AS now, ${this.clock(p.ms)} AS until`.execute(tx);
    const { now, until: wanted } = times.rows[0]!;
    const existing = await this.get(p.adapter, p.credential, tx);
    const live = existing !== undefined && existing.until_at > now;
    const until = live && existing.until_at > wanted ? existing.until_at : wanted;
    const row = {
      until_at: until,
      strikes: p.strikes,
      window: p.window,
      message: p.message,
      task_key: p.taskKey,
    };
    if (existing)
      await tx
        .updateTable('adapter_pauses')
        .set({ ...row, ...(live ? {} : { started_at: now }) })
        .where('adapter', '=', p.adapter)
        .where('credential', '=', p.credential)
        .execute();
    else
      await tx
        .insertInto('adapter_pauses')
        .values({ adapter: p.adapter, credential: p.credential, started_at: now, ...row })
        .execute();
    const held = await tx
      .updateTable('jobs')
      .set({ run_after: until })
      .where('status', '=', 'queued')
      .where('adapter', '=', p.adapter)
      .where(sql<string>`coalesce(credential, '')`, '=', p.credential)
      .where('run_after', '<', until)
      .returning('task_id')
      .execute();
    // The tasks it holds back say why (their next claim clears it).
    if (held.length > 0 && p.heldDetail)
      await tx
        .updateTable('tasks')
        .set({ status_detail: p.heldDetail })
        .where(
          'id',
          'in',
          held.map((h) => h.task_id),
        )
        .where('status', '=', 'queued')
        .execute();
    return { until, fresh: !live };
  }

  /** A job just queued (or queued again) waits for its adapter's pause to end, if one is in force. */
  async hold(tx: Executor, jobId: number): Promise<void> {
    await sql`UPDATE jobs SET run_after = (
        SELECT p.until_at FROM adapter_pauses p
        WHERE p.adapter = jobs.adapter AND p.credential = coalesce(jobs.credential, ''))
      WHERE id = ${jobId} AND adapter IS NOT NULL AND EXISTS (
        SELECT 1 FROM adapter_pauses p
        WHERE p.adapter = jobs.adapter AND p.credential = coalesce(jobs.credential, '')
          AND p.until_at > jobs.run_after)`.execute(tx);
  }
}
