// Row types of every table, as Kysely sees them. Timestamps are written as RFC 3339 strings;
// PostgreSQL (timestamptz) reads them back as Date, SQLite (text) as string: toIso() evens that out.
import type { Generated } from 'kysely';
export type Timestamp = string | Date;

export interface UsersTable {
  id: string;
  username: string;
  email: string;
  display_name: string | null;
  /** Comma-joined, sorted subset of ROLES, e.g. "admin,user". */
  roles: string;
  status: 'active' | 'disabled';
  password_hash: string;
  created_at: Timestamp;
  updated_at: Timestamp;
  last_login_at: Timestamp | null;
  last_seen_at: Timestamp | null;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  revoked_at: Timestamp | null;
  ip: string | null;
  user_agent: string | null;
}

export interface RefreshTokensTable {
  token_hash: string;
  session_id: string;
  created_at: Timestamp;
  used_at: Timestamp | null;
}

export interface LoginEventsTable {
  id: string;
  user_id: string | null;
  at: Timestamp;
  /** 1 or 0: an integer on both databases, so one code path reads it. */
  success: number;
  method: 'password' | 'basic';
  ip: string | null;
  user_agent: string | null;
}

export interface SigningKeysTable {
  kid: string;
  algorithm: string;
  public_jwk: string;
  private_key_pem: string;
  created_at: Timestamp;
  retired_at: Timestamp | null;
}

export interface OutboxEventsTable {
  seq: Generated<number>;
  id: string;
  type: string;
  subject: string;
  time: Timestamp;
  /** The CloudEvent's `data`, as JSON text. */
  data: string;
  published_at: Timestamp | null;
}

export interface ImportJobsTable {
  id: string;
  status: 'receiving' | 'queued' | 'completed' | 'failed';
  format: 'ndjson' | 'csv';
  created_by: string | null;
  rows_read: Generated<number>;
  chunks_total: number | null;
  chunks_done: Generated<number>;
  created: Generated<number>;
  skipped: Generated<number>;
  failed: Generated<number>;
  error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  finished_at: Timestamp | null;
}

export interface ImportChunksTable {
  job_id: string;
  seq: number;
  /** Row number (1-based, in the uploaded file) of the chunk's first row. */
  first_row: number;
  /** The rows as JSON; cleared once the chunk is done (they may hold plaintext passwords). */
  rows: string | null;
  status: 'pending' | 'claimed' | 'done';
  claimed_until: Timestamp | null;
  attempts: Generated<number>;
}

export interface ImportFailuresTable {
  job_id: string;
  row_number: number;
  reason: string;
}

export interface IdempotencyKeysTable {
  scope: string;
  key: string;
  fingerprint: string;
  status_code: number;
  location: string | null;
  body: string | null;
  created_at: Timestamp;
  expires_at: Timestamp;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  login_events: LoginEventsTable;
  signing_keys: SigningKeysTable;
  outbox_events: OutboxEventsTable;
  import_jobs: ImportJobsTable;
  import_chunks: ImportChunksTable;
  import_failures: ImportFailuresTable;
  idempotency_keys: IdempotencyKeysTable;
}

export type Dialect = 'sqlite' | 'postgres';
