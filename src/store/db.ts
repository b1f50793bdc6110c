/**
 * Opens the store: SQLite by default (one file, WAL), migrated to the latest
 * version on open.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, SqliteDialect } from 'kysely';
import { Migrator } from 'kysely/migration';
import { openSqlite } from './node-sqlite-driver.ts';
import { migrationProvider, type Dialect } from './migrations.ts';
import type { Database } from './schema.ts';
import { OrchError } from '../errors.ts';

export interface OpenedDb {
  db: Kysely<Database>;
  dialect: Dialect;
  /** A human-readable location (file path), never a connection string with a password. */
  location: string;
}

export async function openDatabase(path: string): Promise<OpenedDb> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  let opened;
  try {
    opened = openSqlite(path);
  } catch (cause) {
    throw new OrchError('db_open_failed', `cannot open the database at ${path}`, { cause });
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: opened.kyselyDatabase }) });
  await migrate(db, 'sqlite');
  return { db, dialect: 'sqlite', location: path };
}

export async function migrate(db: Kysely<Database>, dialect: Dialect): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new OrchError('db_migration_failed', `database migration ${failed} failed`, { cause: error });
  }
}
