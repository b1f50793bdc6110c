/**
 * Opens the store: SQLite by default (one file, WAL), or PostgreSQL when the
 * target is a `postgres://` URL; migrated to the latest version on open.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { Migrator, type MigrationResultSet } from 'kysely/migration';
import type pg from 'pg';
import { openSqlite, WaitingSqliteDialect } from './node-sqlite-driver.ts';
import { migrationProvider, type Dialect } from './migrations.ts';
import type { Database } from './schema.ts';
import { OrchError } from '../errors.ts';

export interface OpenedDb {
  db: Kysely<Database>;
  dialect: Dialect;
  /** A human-readable location (file path, or PostgreSQL server and database), never a secret. */
  location: string;
}

export interface OpenOptions {
  /** PostgreSQL only: connections in the pool. Default 10. */
  poolMax?: number;
}

export const isPostgresUrl = (target: string): boolean => /^postgres(ql)?:\/\//i.test(target);

/** Where a PostgreSQL URL points, for logs and `orch status`: server and database, no credentials. */
export function describePostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    return `PostgreSQL ${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname || '/'}`;
  } catch {
    return 'PostgreSQL (unparsable URL)';
  }
}

// pg returns int8 (count, sum of integers) and numeric as strings, to be exact beyond 2^53.
// orch's counts and sums are far below that: parse them as numbers on orch's own pools only,
// never through pg's global parsers (another library in the process may rely on strings).
const INT8_OID = 20;
const NUMERIC_OID = 1700;
const pgTypes = (types: typeof pg.types) => ({
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID || oid === NUMERIC_OID
      ? (value: string) => Number(value)
      : types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
});

/** Opens (and migrates) the database at `target`: a SQLite file path, `:memory:`, or a PostgreSQL URL. */
export async function openDatabase(target: string, opts: OpenOptions = {}): Promise<OpenedDb> {
  if (isPostgresUrl(target)) return openPostgres(target, opts);
  if (target !== ':memory:') mkdirSync(dirname(target), { recursive: true });
  let opened;
  try {
    opened = openSqlite(target);
  } catch (cause) {
    throw new OrchError('db_open_failed', `cannot open the database at ${target}`, { cause });
  }
  const db = new Kysely<Database>({ dialect: new WaitingSqliteDialect(opened.kyselyDatabase, target) });
  await migrate(db, 'sqlite');
  return { db, dialect: 'sqlite', location: target };
}

async function openPostgres(url: string, opts: OpenOptions): Promise<OpenedDb> {
  const location = describePostgresUrl(url);
  // Loaded only for PostgreSQL: a SQLite orch never pays for the driver.
  const { default: pgModule } = await import('pg');
  const pool = new pgModule.Pool({
    connectionString: url,
    max: opts.poolMax ?? 10,
    types: pgTypes(pgModule.types),
  });
  // An idle connection the server dropped must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await pool.query('SELECT 1');
  } catch (cause) {
    await db.destroy().catch(() => {});
    throw new OrchError('db_open_failed', `cannot connect to the database at ${location}`, { cause });
  }
  try {
    // Kysely's migrator holds an advisory lock: many workers starting at once migrate once.
    await migrate(db, 'postgres');
  } catch (error) {
    await db.destroy().catch(() => {});
    throw error;
  }
  return { db, dialect: 'postgres', location };
}

export async function migrate(db: Kysely<Database>, dialect: Dialect): Promise<void> {
  const provider = migrationProvider(dialect);
  if (dialect === 'postgres') {
    // Kysely runs PostgreSQL's migrations in one transaction, under an advisory lock.
    report(await new Migrator({ db, provider }).migrateToLatest());
    return;
  }
  // SQLite: Kysely runs each statement on its own, so a process stopped half way through a
  // migration (Ctrl-C during a long backfill) left it applied in part and unrecorded, and every
  // later start failed on it; and two processes starting together both ran it. Pending migrations
  // run in one `BEGIN IMMEDIATE` transaction instead: all or nothing, and a second process waits
  // for the write lock, then finds nothing left to do. A database already up to date takes no lock.
  const pending = (await new Migrator({ db, provider }).getMigrations()).some((m) => !m.executedAt);
  if (!pending) return;
  await db.connection().execute(async (conn) => {
    await sql`BEGIN IMMEDIATE`.execute(conn);
    let result: MigrationResultSet;
    try {
      result = await new Migrator({ db: conn, provider }).migrateToLatest();
    } catch (error) {
      await sql`ROLLBACK`.execute(conn);
      throw error;
    }
    await sql.raw(result.error ? 'ROLLBACK' : 'COMMIT').execute(conn);
    report(result);
  });
}

function report({ error, results }: MigrationResultSet): void {
  if (!error) return;
  const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
  const why = error instanceof Error ? `: ${error.message}` : '';
  throw new OrchError('db_migration_failed', `database migration ${failed} failed${why}`, { cause: error });
}
