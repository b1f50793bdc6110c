/**
 * Kysely's SQLite dialect over Node's built-in `node:sqlite`.
 *
 * Why not better-sqlite3: it is a native addon, and on a machine whose npm
 * runs on another Node than the one that runs orch it compiles against the
 * wrong ABI. `node:sqlite` ships inside Node 24, so there is nothing to build.
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

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

/** Opens a SQLite file in WAL mode with a busy timeout, ready for several processes. */
export function openSqlite(path: string, busyTimeoutMs = 10_000): OpenedSqlite {
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
