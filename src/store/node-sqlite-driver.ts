/**
 * Kysely's SQLite dialect over Node's built-in `node:sqlite`.
 *
 * Why not better-sqlite3: it is a native addon, and on a machine whose npm
 * runs on another Node than the one that runs orch it compiles against the
 * wrong ABI. `node:sqlite` ships inside Node (22 and 24), so there is nothing to build.
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import {
  SqliteDialect,
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type QueryResult,
  type SqliteDatabase,
  type SqliteStatement,
  type TransactionSettings,
} from 'kysely';

const toParam = (v: unknown): SQLInputValue => {
  if (v === undefined || v === null) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Date) return v.toISOString();
  return v as SQLInputValue;
};
const params = (p: ReadonlyArray<unknown>): SQLInputValue[] => p.map(toParam);

class Statement implements SqliteStatement {
  readonly reader: boolean;
  private readonly stmt: StatementSync;
  constructor(stmt: StatementSync) {
    this.stmt = stmt;
    this.reader = stmt.columns().length > 0;
  }
  all(p: ReadonlyArray<unknown>): unknown[] {
    return this.stmt.all(...params(p));
  }
  run(p: ReadonlyArray<unknown>): { changes: number | bigint; lastInsertRowid: number | bigint } {
    return this.stmt.run(...params(p));
  }
  iterate(p: ReadonlyArray<unknown>): IterableIterator<unknown> {
    return this.stmt.iterate(...params(p)) as IterableIterator<unknown>;
  }
}

export interface OpenedSqlite {
  kyselyDatabase: SqliteDatabase;
  raw: DatabaseSync;
}

/**
 * How long a statement waits for a database another process holds locked.
 * node:sqlite is synchronous: SQLite's busy timeout blocks the whole process
 * while it waits. So one try blocks for at most `sliceMs`, and the statement
 * is tried again, with the event loop free in between (heartbeats, agents'
 * output), until `maxWaitMs` have passed.
 */
export interface BusyWait {
  sliceMs: number;
  maxWaitMs: number;
}

export const DEFAULT_BUSY_WAIT: BusyWait = { sliceMs: 1_000, maxWaitMs: 300_000 };

/** Opens a SQLite file in WAL mode with a busy timeout, ready for several processes. */
export function openSqlite(path: string, busyTimeoutMs = DEFAULT_BUSY_WAIT.sliceMs): OpenedSqlite {
  const raw = new DatabaseSync(path, { timeout: busyTimeoutMs });
  raw.exec('PRAGMA journal_mode = WAL');
  raw.exec('PRAGMA synchronous = NORMAL');
  raw.exec('PRAGMA foreign_keys = ON');
  const cache = new Map<string, Statement>();
  return {
    raw,
    kyselyDatabase: {
      close: () => raw.close(),
      prepare: (sql: string) => {
        let s = cache.get(sql);
        if (!s) {
          s = new Statement(raw.prepare(sql));
          if (cache.size > 500) cache.clear();
          cache.set(sql, s);
        }
        return s;
      },
    },
  };
}

/** SQLite's primary result code for "database is locked": another connection holds the lock. */
const SQLITE_BUSY = 5;

const isBusy = (error: unknown): boolean =>
  (error as { code?: unknown }).code === 'ERR_SQLITE_ERROR' &&
  (error as { errcode?: unknown }).errcode === SQLITE_BUSY;

/**
 * Kysely's SQLite dialect, whose statements wait out a database locked by
 * another process (a long write, a backup) instead of failing.
 *
 * Why: with only the busy timeout, a lock held longer than it made whatever
 * statement came next fail with "database is locked": a claim ended `orch
 * run`, a run's pid or usage was lost, a stage's result had to be redone. A
 * statement refused with SQLITE_BUSY did nothing, so it is simply run again
 * (`BEGIN IMMEDIATE` and `COMMIT` too: SQLite documents both as retryable).
 * The connection stays held meanwhile, so nothing else in this process
 * overtakes the waiting statement. After {@link BusyWait.maxWaitMs} the error
 * says which database stayed locked.
 */
export class WaitingSqliteDialect extends SqliteDialect {
  readonly #wait: BusyWait;
  readonly #location: string;
  constructor(database: SqliteDatabase, location: string, wait: BusyWait = DEFAULT_BUSY_WAIT) {
    super({ database });
    this.#wait = wait;
    this.#location = location;
  }

  override createDriver(): Driver {
    return new WaitingDriver(super.createDriver(), this.#wait, this.#location);
  }
}

class WaitingDriver implements Driver {
  readonly #inner: Driver;
  readonly #wait: BusyWait;
  readonly #location: string;
  readonly #wrapped = new WeakMap<DatabaseConnection, DatabaseConnection>();
  constructor(inner: Driver, wait: BusyWait, location: string) {
    this.#inner = inner;
    this.#wait = wait;
    this.#location = location;
  }

  init(): Promise<void> {
    return this.#inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const inner = await this.#inner.acquireConnection();
    let wrapped = this.#wrapped.get(inner);
    if (!wrapped) {
      wrapped = this.#waiting(inner);
      this.#wrapped.set(inner, wrapped);
    }
    return wrapped;
  }

  // The inner driver runs BEGIN, COMMIT and ROLLBACK through the connection it is given: ours, which waits.
  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.#inner.beginTransaction(connection, settings);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#inner.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#inner.rollbackTransaction(connection);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.#inner.releaseConnection(connection);
  }

  destroy(): Promise<void> {
    return this.#inner.destroy();
  }

  #waiting(inner: DatabaseConnection): DatabaseConnection {
    const { sliceMs, maxWaitMs } = this.#wait;
    const location = this.#location;
    return {
      async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
        const started = Date.now();
        for (;;) {
          try {
            return await inner.executeQuery<R>(query);
          } catch (error) {
            if (!isBusy(error)) throw error;
            const waited = Date.now() - started;
            if (waited >= maxWaitMs) {
              throw new Error(
                `the database ${location} stayed locked by another process for ${Math.round(waited / 1000)} s (${query.sql.slice(0, 60)}…)`,
                { cause: error },
              );
            }
            // Let timers and I/O run before the next blocking try.
            await new Promise((r) => setTimeout(r, Math.min(250, sliceMs)));
          }
        }
      },
      streamQuery: <R>(query: CompiledQuery, chunkSize: number) => inner.streamQuery<R>(query, chunkSize),
    };
  }
}
