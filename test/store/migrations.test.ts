/**
 * Upgrading a SQLite database: pending migrations run in one transaction (`store/db.ts`), so a
 * migration that fails half way leaves nothing of itself behind and the next start runs it whole;
 * and processes opening an old database at the same moment all open it, one migrating while the
 * others wait. (PostgreSQL's migrations run in one transaction under Kysely's advisory lock.)
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import { openDatabase } from '../../src/store/db.ts';
import { migrationProvider } from '../../src/store/migrations.ts';
import { openSqlite, WaitingSqliteDialect } from '../../src/store/node-sqlite-driver.ts';
import { Store } from '../../src/store/store.ts';

let dir = '';
let file = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'orch-migrations-'));
  file = join(dir, 'orch.db');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `fn` on the database file as it is, migrating nothing. */
async function raw<T>(fn: (db: Kysely<unknown>) => Promise<T>): Promise<T> {
  const db = new Kysely<unknown>({
    dialect: new WaitingSqliteDialect(openSqlite(file).kyselyDatabase, file),
  });
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}

/** Runs `fn` on the database as a release that stopped at migration `last` left it. */
const asOf = <T>(last: string, fn: (db: Kysely<unknown>) => Promise<T>): Promise<T> =>
  raw(async (db) => {
    const { error } = await new Migrator({ db, provider: migrationProvider('sqlite') }).migrateTo(last);
    if (error) throw error;
    return fn(db);
  });

const columnsOf = async (db: Kysely<unknown>, table: string) =>
  (await sql<{ name: string }>`SELECT name FROM pragma_table_info(${table})`.execute(db)).rows.map(
    (r) => r.name,
  );

describe('SQLite migrations', () => {
  it('a migration that fails half way leaves nothing of itself, and runs whole at the next start', async () => {
    await asOf('0011_run_durations', async (db) => {
      // Something in the way of 0012's second statement (its index), after its first (a column).
      await sql`CREATE INDEX jobs_claim ON jobs (id)`.execute(db);
    });
    await expect(openDatabase(file)).rejects.toThrow(
      /database migration 0012_claim_order failed: .*jobs_claim/,
    );
    await raw(async (db) => {
      expect(await columnsOf(db, 'jobs')).not.toContain('priority');
      await sql`DROP INDEX jobs_claim`.execute(db);
    });
    const { db, dialect } = await openDatabase(file);
    try {
      expect(await columnsOf(db as unknown as Kysely<unknown>, 'jobs')).toContain('priority');
      const store = new Store(db, dialect);
      const p = await store.upsertProject({ name: 'app', rootPath: dir, baseBranch: 'main', keyPrefix: 'A' });
      await store.createTask({ projectId: p.id, title: 'urgent', priority: 3 });
      expect((await store.claimJob('w', 1_000))?.priority).toBe(3);
    } finally {
      await db.destroy();
    }
  });

  it('processes opening an old database together all open it; one migrates', async () => {
    await asOf('0011_run_durations', async () => undefined);
    const opened = await Promise.allSettled([openDatabase(file), openDatabase(file), openDatabase(file)]);
    for (const o of opened) expect(o.status, String((o as PromiseRejectedResult).reason)).toBe('fulfilled');
    for (const o of opened) await (o as PromiseFulfilledResult<{ db: Kysely<unknown> }>).value.db.destroy();
    await raw(async (db) => {
      const names = (await sql<{ name: string }>`SELECT name FROM kysely_migration`.execute(db)).rows;
      expect(names.filter((n) => n.name === '0012_claim_order')).toHaveLength(1);
    });
  });
});
