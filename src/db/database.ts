// createDatabase(config): the one place that knows how to open SQLite or PostgreSQL.
// SQLite runs in WAL mode with foreign keys on; PostgreSQL uses bounded pg pools (primary, and read
// replicas when configured) whose idle-client errors are logged instead of crashing the process.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type SqliteDatabase as SqliteDialectDatabase, sql } from 'kysely';
import pg from 'pg';
import type { Config } from '../config.js';
import { sendMarkedQueriesByName } from './prepared.js';
import { createReplicaRouter, type ReplicaRouter, type ReplicaState } from './replicas.js';
import type { Database, Dialect } from './schema.js';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: Dialect;
  /** A short description without credentials, for logs. */
  description: string;
  /** PostgreSQL with DATABASE_REPLICA_URLS: where replica-eligible reads go; null otherwise. */
  replicas: ReplicaRouter | null;
  destroy(): Promise<void>;
}

type DatabaseConfig = Pick<Config, 'databaseUrl' | 'databasePoolMax'> &
  Partial<
    Pick<
      Config,
      | 'databaseReplicaUrls'
      | 'databaseReplicaMaxLagSeconds'
      | 'databaseConnectTimeoutMs'
      | 'databaseStatementTimeoutMs'
      | 'databaseIdleTimeoutMs'
      | 'databasePreparedStatements'
    >
  >;

export interface DatabaseHooks {
  onPoolError?: (error: Error, server: string) => void;
  onRead?: (target: string) => void;
  onReplicaStateChange?: (state: ReplicaState, reason: string) => void;
}

export function sqlitePath(databaseUrl: string): string {
  return resolve(databaseUrl.slice('sqlite:'.length));
}

function describe(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  return `postgres://${url.hostname}:${url.port || 5432}${url.pathname}`;
}

// timestamptz comes back as the RFC 3339 string the API prints, not as a Date: pg parsed each one
// with a regular expression into a Date that the view then printed again, which was a sixth of the
// CPU time of a 20-user page (postgres-date, toISOString and the garbage). In UTC sessions the text
// is rewritten in place; any other form goes through pg's own parser.
const TIMESTAMPTZ_OID = 1184;
const parseTimestamptz = pg.types.getTypeParser(TIMESTAMPTZ_OID) as (text: string) => Date | number;
const UTC_TIMESTAMP = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\+00$/;

export function timestamptzToIso(text: string): string {
  const match = UTC_TIMESTAMP.exec(text);
  if (match) return `${match[1]}T${match[2]}.${(match[3] ?? '').slice(0, 3).padEnd(3, '0')}Z`;
  const parsed = parseTimestamptz(text);
  return parsed instanceof Date && !Number.isNaN(parsed.getTime()) ? parsed.toISOString() : text;
}

const PG_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TIMESTAMPTZ_OID && format !== 'binary'
      ? timestamptzToIso
      : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

// Bounded everywhere, so that a database that is down or stuck costs a request a 503 within about
// the connect timeout rather than a hang: waiting for a connection (new or pooled), a statement on
// the server, and the client's own wait for an answer (a server that stops answering mid-query).
function createPool(databaseUrl: string, config: DatabaseConfig, onError: (error: Error) => void): pg.Pool {
  const statementTimeout = config.databaseStatementTimeoutMs ?? 10_000;
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: config.databasePoolMax,
    connectionTimeoutMillis: config.databaseConnectTimeoutMs ?? 1_000,
    idleTimeoutMillis: config.databaseIdleTimeoutMs ?? 30_000,
    statement_timeout: statementTimeout,
    query_timeout: statementTimeout + 1_000,
    keepAlive: true,
    types: PG_TYPES,
  });
  // An idle client whose server went away emits here; without a listener that would crash the process.
  pool.on('error', onError);
  // A client that is checked out (a transaction waiting between statements) has no listener of the
  // pool's: its 'error' when the server ends the connection crashed the process (seen in the cluster's
  // primary-outage test). Each client gets one for its whole life; the statement it was running, or
  // the next one, fails and that request answers 503, and the pool drops the broken client on release.
  pool.on('connect', (client) => {
    client.on('error', onError);
    if (config.databasePreparedStatements ?? true) sendMarkedQueriesByName(client);
  });
  return pool;
}

// Kysely prepares every query anew, and on SQLite preparing was the largest single cost of a
// simple request (15% of a Bearer request's CPU time in the bench's profile). The same SQL text gets
// the same prepared statement back, unless that one is busy (iterating a stream), which gets a
// fresh one. Bounded: a full cache is emptied and refills with what is in use.
const STATEMENT_CACHE_MAX = 500;

function withStatementCache(connection: SqliteDatabase.Database): SqliteDialectDatabase {
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => connection.close(),
    prepare(sqlText: string) {
      const cached = statements.get(sqlText);
      if (cached && !cached.busy) return cached;
      const statement = connection.prepare(sqlText);
      if (!cached) {
        if (statements.size >= STATEMENT_CACHE_MAX) statements.clear();
        statements.set(sqlText, statement);
      }
      return statement;
    },
  };
}

export function createDatabase(config: DatabaseConfig, hooks: DatabaseHooks | ((error: Error) => void) = {}): DatabaseHandle {
  const { onPoolError, onRead, onReplicaStateChange } = typeof hooks === 'function' ? { onPoolError: hooks } : hooks;
  if (config.databaseUrl.startsWith('sqlite:')) {
    const file = sqlitePath(config.databaseUrl);
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const connection = new SqliteDatabase(file);
    connection.pragma('journal_mode = WAL');
    connection.pragma('synchronous = NORMAL');
    connection.pragma('foreign_keys = ON');
    connection.pragma('busy_timeout = 5000');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(connection) }) });
    return { db, dialect: 'sqlite', description: `sqlite:${file}`, replicas: null, destroy: () => db.destroy() };
  }
  const primary = createPool(config.databaseUrl, config, (error) => onPoolError?.(error, 'primary'));
  const replicaUrls = config.databaseReplicaUrls ?? [];
  const replicas =
    replicaUrls.length > 0
      ? createReplicaRouter({
          primary,
          replicas: replicaUrls.map((url, i) => {
            const name = `replica-${i + 1}`;
            return { name, pool: createPool(url, config, (error) => onPoolError?.(error, name)) };
          }),
          maxLagSeconds: config.databaseReplicaMaxLagSeconds ?? 5,
          onRead,
          onStateChange: onReplicaStateChange,
        })
      : null;
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: replicas ? replicas.pool : primary }) });
  const description = [describe(config.databaseUrl), ...replicaUrls.map((url, i) => `replica-${i + 1} ${describe(url)}`)].join(', ');
  return { db, dialect: 'postgres', description, replicas, destroy: () => db.destroy() };
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
