/**
 * Opens the store: SQLite by default (one file, WAL), or PostgreSQL when the
 * target is a `postgres://` URL; migrated to the latest version on open.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import { Migrator } from 'kysely/migration';
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
  const migrator = new Migrator({ db, provider: migrationProvider(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new OrchError('db_migration_failed', `database migration ${failed} failed`, { cause: error });
  }
}
