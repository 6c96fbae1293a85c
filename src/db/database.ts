// createDatabase(config): the one place that knows how to open SQLite or PostgreSQL.
// SQLite runs in WAL mode with foreign keys on; PostgreSQL uses a bounded pg pool whose idle-client
// errors are logged instead of crashing the process.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Config } from '../config.js';
import type { Database, Dialect } from './schema.js';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: Dialect;
  /** A short description without credentials, for logs. */
  description: string;
  destroy(): Promise<void>;
}

type DatabaseConfig = Pick<Config, 'databaseUrl' | 'databasePoolMax'>;

export function sqlitePath(databaseUrl: string): string {
  return resolve(databaseUrl.slice('sqlite:'.length));
}

export function createDatabase(config: DatabaseConfig, onPoolError: (error: Error) => void = () => {}): DatabaseHandle {
  if (config.databaseUrl.startsWith('sqlite:')) {
    const file = sqlitePath(config.databaseUrl);
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const connection = new SqliteDatabase(file);
    connection.pragma('journal_mode = WAL');
    connection.pragma('synchronous = NORMAL');
    connection.pragma('foreign_keys = ON');
    connection.pragma('busy_timeout = 5000');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: connection }) });
    return { db, dialect: 'sqlite', description: `sqlite:${file}`, destroy: () => db.destroy() };
  }
  const url = new URL(config.databaseUrl);
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: config.databasePoolMax,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: 15_000,
  });
  pool.on('error', onPoolError);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    description: `postgres://${url.hostname}:${url.port || 5432}${url.pathname}`,
    destroy: () => db.destroy(),
  };
}

/** True when the database answers a trivial query. */
export async function ping(db: Kysely<Database>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}
