/**
 * Wakers tell an idle scheduler that a job may have become runnable, so it
 * claims at once instead of at its next poll. On PostgreSQL a trigger
 * notifies a channel whenever a job is queued (inserted, retried, reclaimed)
 * and every worker LISTENs on it; on SQLite the database's directory is
 * watched, which sees every other process's writes. Either way a missed
 * wake-up costs at most one poll: the poll stays the safety net.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type pg from 'pg';
import type { OrchContext } from './context.ts';
import { JOBS_CHANNEL } from '../store/migrations.ts';

/**
 * Called on a wake-up. `adapter` is the queued job's adapter when the waker
 * knows it (null for a job that needs none), undefined when it does not.
 */
export type WakeHandler = (adapter?: string | null) => void;

/** A source of wake-ups for a scheduler. */
export interface Waker {
  /** Starts delivering wake-ups to `onWake`; resolves once it is listening. */
  start(onWake: WakeHandler): Promise<void>;
  /** Stops; no wake-up is delivered after it resolves. */
  close(): Promise<void>;
}

/** Watches a directory (the SQLite database's): any change there may be a new job. */
export class DirectoryWaker implements Waker {
  private readonly dir: string;
  private watcher: FSWatcher | null = null;
  constructor(dir: string) {
    this.dir = dir;
  }
  async start(onWake: WakeHandler): Promise<void> {
    try {
      this.watcher = watch(this.dir, () => onWake());
      this.watcher.on('error', () => {});
    } catch {
      // No file watching here (some network file systems): the poll alone wakes the scheduler.
      this.watcher = null;
    }
  }
  async close(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
  }
}

export interface PgWakerOptions {
  /** First reconnect delay after the listening connection drops, in ms; doubles up to 5 000. Default 100. */
  reconnectBaseMs?: number;
  /** Called when the connection drops, with the error. */
  onError?: (error: Error) => void;
}

/** LISTENs on the jobs channel on one dedicated connection, reconnecting when it drops. */
export class PgWaker implements Waker {
  private readonly url: string;
  private readonly opts: PgWakerOptions;
  private client: pg.Client | null = null;
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private onWake: WakeHandler = () => {};
  constructor(url: string, opts: PgWakerOptions = {}) {
    this.url = url;
    this.opts = opts;
  }

  async start(onWake: WakeHandler): Promise<void> {
    this.onWake = onWake;
    await this.connect();
  }

  private async connect(): Promise<void> {
    // Loaded only for PostgreSQL: a SQLite orch never pays for the driver.
    const { default: pgModule } = await import('pg');
    const client = new pgModule.Client({ connectionString: this.url, keepAlive: true });
    let dropped = false;
    const drop = (error: Error) => {
      if (dropped) return;
      dropped = true;
      this.opts.onError?.(error);
      client.end().catch(() => {});
      if (this.client === client) this.client = null;
      this.scheduleReconnect(this.opts.reconnectBaseMs ?? 100);
    };
    client.on('error', drop);
    client.on('end', () => drop(new Error('the listening connection ended')));
    client.on('notification', (n) => {
      if (n.channel === JOBS_CHANNEL) this.onWake(n.payload ? n.payload : null);
    });
    await client.connect();
    await client.query(`LISTEN ${JOBS_CHANNEL}`);
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect().then(
        // Jobs queued while we were deaf sent their notifications to nobody: look now.
        () => this.onWake(),
        (error: unknown) => {
          this.opts.onError?.(error as Error);
          this.scheduleReconnect(Math.min(5_000, delayMs * 2));
        },
      );
    }, delayMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const client = this.client;
    this.client = null;
    if (client) {
      client.removeAllListeners('end');
      client.removeAllListeners('notification');
      await client.end().catch(() => {});
    }
  }
}

/** The waker that fits the context's database. */
export function createWaker(ctx: OrchContext, onError?: (error: Error) => void): Waker {
  if (ctx.store.dialect === 'postgres' && ctx.settings.databaseUrl)
    return new PgWaker(ctx.settings.databaseUrl, onError ? { onError } : {});
  return new DirectoryWaker(dirname(ctx.settings.dbPath));
}
