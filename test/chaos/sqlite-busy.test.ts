/**
 * The fix the "SQLite database locked" fault called for, at the store's own
 * level: a statement waits out a database another process holds locked for
 * longer than the busy timeout, instead of failing with "database is locked",
 * and the event loop keeps running while it waits. Small waits here, so the
 * test is quick; the chaos suite holds the lock beyond the real timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, sql, SqliteDialect } from 'kysely';
import { afterEach, expect, it } from 'vitest';
import { openSqlite, WaitingSqliteDialect, type BusyWait } from '../../src/store/node-sqlite-driver.ts';

const dirs: string[] = [];
const holders: ChildProcess[] = [];
afterEach(async () => {
  for (const h of holders.splice(0)) {
    if (h.exitCode === null && h.signalCode === null) {
      h.kill('SIGKILL');
      await once(h, 'exit');
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function database(): string {
  const dir = mkdtempSync(join(tmpdir(), 'orch-busy-'));
  dirs.push(dir);
  const path = join(dir, 'test.db');
  const { raw } = openSqlite(path);
  raw.exec('CREATE TABLE t (x INTEGER)');
  raw.close();
  return path;
}

/** Another process holding the write lock for `ms`; resolves once it holds it. */
async function holdLock(path: string, ms: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const { DatabaseSync } = require('node:sqlite');
       const db = new DatabaseSync(process.argv[1], { timeout: 10000 });
       db.exec('BEGIN EXCLUSIVE');
       process.stdout.write('locked\\n');
       setTimeout(() => { db.exec('COMMIT'); db.close(); }, Number(process.argv[2]));`,
      path,
      String(ms),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  holders.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
    child.once('exit', (code) => reject(new Error(`the lock holder exited (${code}) before locking`)));
  });
  return child;
}

function kysely(path: string, wait: BusyWait | null): Kysely<{ t: { x: number } }> {
  const { kyselyDatabase } = openSqlite(path, wait?.sliceMs ?? 100);
  return new Kysely({
    dialect: wait
      ? new WaitingSqliteDialect(kyselyDatabase, path, wait)
      : new SqliteDialect({ database: kyselyDatabase }),
  });
}

it('without waiting, a lock held past the busy timeout fails the write (what orch did before)', async () => {
  const path = database();
  const db = kysely(path, null);
  try {
    await holdLock(path, 1_500);
    await expect(db.insertInto('t').values({ x: 1 }).execute()).rejects.toThrow(/database is locked/);
  } finally {
    await db.destroy();
  }
});

it('a write waits out a lock held for many busy timeouts, with the event loop running meanwhile', async () => {
  const path = database();
  const db = kysely(path, { sliceMs: 100, maxWaitMs: 30_000 });
  try {
    await holdLock(path, 1_500);
    // Ticks of a timer show the process was not frozen for the whole wait.
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 50);
    await db.insertInto('t').values({ x: 1 }).execute();
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
    expect(await db.selectFrom('t').selectAll().execute()).toEqual([{ x: 1 }]);
  } finally {
    await db.destroy();
  }
});

it('a transaction begun as the store begins them (BEGIN IMMEDIATE) waits for the lock, and commits', async () => {
  const path = database();
  const db = kysely(path, { sliceMs: 100, maxWaitMs: 30_000 });
  try {
    await holdLock(path, 800);
    await db.connection().execute(async (conn) => {
      await sql`BEGIN IMMEDIATE`.execute(conn);
      await conn.insertInto('t').values({ x: 2 }).execute();
      await conn.insertInto('t').values({ x: 3 }).execute();
      await sql`COMMIT`.execute(conn);
    });
    expect((await db.selectFrom('t').selectAll().execute()).map((r) => r.x)).toEqual([2, 3]);
  } finally {
    await db.destroy();
  }
});

it('past the longest wait, the error names the database that stayed locked', async () => {
  const path = database();
  const db = kysely(path, { sliceMs: 100, maxWaitMs: 400 });
  try {
    await holdLock(path, 3_000);
    await expect(db.insertInto('t').values({ x: 1 }).execute()).rejects.toThrow(
      `the database ${path} stayed locked by another process`,
    );
  } finally {
    await db.destroy();
  }
});
