// Bulk import of users as a queued job. Reading the upload stores it as chunks of rows (never the
// whole file in memory) and answers with the job; workers on any instance then process the chunks.
// A chunk is processed in one transaction: its users (each with user.created), its failures, its
// counts and its "done" mark commit together, so a chunk that is processed again after a crash
// counts nothing twice. A row is created, skipped (its username or email exists) or failed (with
// its row number and the reason), exactly once.
import type { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import { uniqueViolationColumn } from '../../db/errors.js';
import type { Database, Dialect } from '../../db/schema.js';
import { AppError, type FieldError } from '../../http/errors.js';
import { uuidv7 } from '../../lib/ids.js';
import { addSeconds, nowIso, toIso } from '../../lib/time.js';
import type { EventRecorder } from '../events/events.js';
import { createHashPool } from '../sessions/hash-pool.js';
import { isSupportedPasswordHash } from '../sessions/legacy-hashes.js';
import type { PasswordHasher } from '../sessions/passwords.js';
import { assertPasswordPolicy } from '../users/password-policy.js';
import { type Executor, encodeRoles, ROLES, type Role, type UserRow, type UsersRepository } from '../users/users.repository.js';
import { validateDisplayName, validateEmail, validateUsername } from '../users/users.service.js';
import { makeUserView } from '../users/users.view.js';
import type { ImportsRepository, StoredChunk } from './imports.repository.js';
import { type ImportRow, type ParsedRow, parseCsv, parseNdjson } from './parse.js';

export const CHUNK_ROWS = 500;
/**
 * Chunks an upload stores in one commit. One commit a chunk made the upload wait on the database
 * (and its disk) 2,000 times for 1,000,000 rows (bench S7); eight hold about 0.8 MB of rows.
 */
export const CHUNKS_PER_COMMIT = 8;

export interface ImportsServiceDeps {
  db: Kysely<Database>;
  dialect: Dialect;
  imports: ImportsRepository;
  users: UsersRepository;
  hasher: PasswordHasher;
  events: EventRecorder;
  leaseSeconds: number;
  /** Rows of a chunk prepared (hashed) at once. */
  hashLanes: number;
  /** Hands a stored chunk to the work queue; false when there is none (the database queue serves). */
  enqueue: ((jobId: string, seq: number) => Promise<boolean>) | null;
  /** Called after a chunk that created users has committed (cached lists are forgotten). */
  onUsersCreated?: () => void;
}

type Prepared = { rowNumber: number; user: UserRow } | { rowNumber: number; reason: string };

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** Jobs remembered as having taken usernames or emails; the oldest is forgotten first. */
const COLLIDED_JOBS_KEPT = 100;

export function createImportsService(deps: ImportsServiceDeps) {
  const { db, imports, hasher, events } = deps;
  const postgres = deps.dialect === 'postgres';
  // The jobs a chunk here met a taken username or email in (PostgreSQL), in the order first met.
  const collidedJobs = new Set<string>();
  const rememberCollision = (jobId: string) => {
    collidedJobs.add(jobId);
    if (collidedJobs.size > COLLIDED_JOBS_KEPT) collidedJobs.delete(collidedJobs.values().next().value as string);
  };

  /** Validates one row and hashes its plaintext password; a reason instead when it cannot be imported. */
  async function prepare(rowNumber: number, row: ImportRow): Promise<Prepared> {
    const errors: FieldError[] = [];
    const rawUsername = text(row.username);
    const rawEmail = text(row.email);
    if (rawUsername === null) return { rowNumber, reason: 'username is missing' };
    if (rawEmail === null) return { rowNumber, reason: 'email is missing' };
    const username = validateUsername(rawUsername, errors);
    const email = validateEmail(rawEmail, errors);
    const displayName = validateDisplayName(text(row.display_name), errors);
    let roles: Role[] = ['user'];
    if (row.roles !== undefined) {
      if (!Array.isArray(row.roles) || row.roles.length === 0 || !row.roles.every((r) => (ROLES as readonly unknown[]).includes(r))) {
        errors.push({ field: 'roles', message: `must be a non-empty list of ${ROLES.join(', ')}` });
      } else roles = row.roles as Role[];
    }
    let lastLoginAt: string | null = null;
    if (row.last_login_at !== undefined && row.last_login_at !== null) {
      const millis = typeof row.last_login_at === 'string' ? Date.parse(row.last_login_at) : Number.NaN;
      // Years 1 to 9999 only: PostgreSQL refuses the ISO forms of others, which would fail the whole chunk.
      const iso = Number.isNaN(millis) ? '' : new Date(millis).toISOString();
      if (!/^(?!0000)\d{4}-/.test(iso)) errors.push({ field: 'last_login_at', message: 'must be an RFC 3339 date-time' });
      else lastLoginAt = iso;
    }
    // PostgreSQL cannot store a NUL character in text: such a row would fail its whole chunk, forever.
    for (const field of ['email', 'display_name'] as const) {
      if (text(row[field])?.includes('\u0000')) errors.push({ field, message: 'must not contain a NUL character' });
    }
    const password = text(row.password);
    const passwordHash = text(row.password_hash);
    if ((password === null) === (passwordHash === null))
      errors.push({ field: 'password', message: 'give exactly one of password and password_hash' });
    else if (passwordHash !== null && !isSupportedPasswordHash(passwordHash)) {
      errors.push({ field: 'password_hash', message: 'is not an argon2, scrypt, bcrypt or werkzeug pbkdf2 hash' });
    }
    if (errors.length > 0) return { rowNumber, reason: errors.map((e) => `${e.field} ${e.message}`).join('; ') };
    let hash = passwordHash as string;
    if (password !== null) {
      try {
        assertPasswordPolicy(password, username);
      } catch (error) {
        if (error instanceof AppError) return { rowNumber, reason: error.detail };
        throw error;
      }
      hash = await hasher.hash(password);
    }
    const now = nowIso();
    return {
      rowNumber,
      user: {
        id: uuidv7(),
        username,
        email,
        display_name: displayName,
        roles: encodeRoles(roles),
        status: 'active',
        password_hash: hash,
        created_at: now,
        updated_at: now,
        last_login_at: lastLoginAt,
        last_seen_at: null,
      },
    };
  }

  // However many chunks this process works on at once, its import rows take at most hashLanes places
  // in the hashing pool, so that sign-ins keep the rest of its queue: the rows wait here, without
  // bound, for one of hashLanes slots.
  const importHashSlots = createHashPool(deps.hashLanes, Number.POSITIVE_INFINITY);

  /** prepare(), waiting and trying again while the hashing pool sheds load (sign-ins come first). */
  async function prepareWhenHashingAllows(rowNumber: number, row: ImportRow): Promise<Prepared> {
    for (;;) {
      try {
        return await prepare(rowNumber, row);
      } catch (error) {
        if (!(error instanceof AppError && error.code === 'overloaded')) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  return {
    /** Reads an upload into a new job's chunks; returns the job id once the whole body is stored. */
    async start(
      body: Readable,
      format: 'ndjson' | 'csv',
      createdBy: string | null,
      options: { beforeQueue?: (trx: Executor, jobId: string) => Promise<void> } = {},
    ): Promise<string> {
      const jobId = uuidv7();
      await imports.insertJob({ id: jobId, format, created_by: createdBy, now: nowIso() });
      const parsed: AsyncGenerator<ParsedRow[]> = format === 'csv' ? parseCsv(body) : parseNdjson(body);
      let seq = 0;
      let rowsRead = 0;
      let batch: { rowNumber: number; row: ImportRow }[] = [];
      let failures: { rowNumber: number; reason: string }[] = [];
      let reading = true;
      // Chunks are stored CHUNKS_PER_COMMIT at a time, and the upload is read on while a commit is in
      // flight (at most one at a time, so rows_read only moves forward).
      let unstored: StoredChunk[] = [];
      let storing: Promise<void> = Promise.resolve();

      const flush = async (end: boolean) => {
        if (failures.length > 0) {
          await storing;
          await imports.recordFailures(db, jobId, failures);
          await imports.updateReading(jobId, rowsRead, null, failures.length, nowIso());
          failures = [];
        }
        if (batch.length > 0) {
          seq += 1;
          unstored.push({ seq, firstRow: batch[0]?.rowNumber ?? 0, rows: JSON.stringify(batch) });
          batch = [];
        }
        if (unstored.length >= CHUNKS_PER_COMMIT || (end && unstored.length > 0)) {
          const chunks = unstored;
          unstored = [];
          await storing;
          storing = imports.storeChunks(jobId, chunks, rowsRead, nowIso());
          // Awaited before the next commit, or at the end; a failure surfaces there.
          storing.catch(() => {});
        }
        if (end) await storing;
      };

      try {
        for await (const entries of parsed) {
          for (const entry of entries) {
            rowsRead = entry.rowNumber;
            if ('error' in entry) failures.push({ rowNumber: entry.rowNumber, reason: `the row ${entry.error}` });
            else batch.push(entry);
            if (batch.length >= CHUNK_ROWS || failures.length >= CHUNK_ROWS) await flush(false);
          }
        }
        await flush(true);
        // Only a complete upload is queued. With a work queue its chunks are reserved for it for a
        // while; the database queue takes a chunk over if no worker started it by then (the broker
        // lost the message, or was down).
        const now = nowIso();
        const beforeQueue = options.beforeQueue;
        await imports.updateReading(
          jobId,
          rowsRead,
          seq,
          0,
          now,
          deps.enqueue ? addSeconds(now, deps.leaseSeconds) : null,
          beforeQueue &&
            (async (trx) => {
              reading = false;
              await beforeQueue(trx, jobId);
            }),
        );
      } catch (error) {
        // A commit still in flight would leave its chunks behind the failed job's cleanup.
        await storing.catch(() => {});
        const reason = reading ? 'the upload could not be read to its end' : 'the upload was read but not queued';
        await imports.failJob(jobId, reason, nowIso()).catch(() => {});
        throw error;
      }
      if (deps.enqueue) for (let chunk = 1; chunk <= seq; chunk++) await deps.enqueue(jobId, chunk).catch(() => false);
      return jobId;
    },

    /** Processes one chunk; false when it was done already (a redelivery). */
    async processChunk(jobId: string, seq: number): Promise<boolean> {
      const peek = await db
        .selectFrom('import_chunks')
        .select(['first_row', 'rows', 'status'])
        .where('job_id', '=', jobId)
        .where('seq', '=', seq)
        .executeTakeFirst();
      if (!peek || peek.status === 'done' || peek.rows === null) return false;
      // Hashing happens before the transaction, so that no transaction waits on argon2id.
      const rows = JSON.parse(peek.rows) as { rowNumber: number; row: ImportRow }[];
      const prepared: Prepared[] = new Array(rows.length);
      // A few rows at a time (and a few in all, across chunks: importHashSlots): enough to keep the
      // hashing pool busy, not enough to fill its queue.
      let next = 0;
      const lane = async () => {
        for (let index = next++; index < rows.length; index = next++) {
          const entry = rows[index] as { rowNumber: number; row: ImportRow };
          prepared[index] = await importHashSlots.run(() => prepareWhenHashingAllows(entry.rowNumber, entry.row));
        }
      };
      await Promise.all(Array.from({ length: Math.min(deps.hashLanes, rows.length) }, lane));
      const failures: { rowNumber: number; reason: string }[] = [];
      const candidates: UserRow[] = [];
      for (const entry of prepared) {
        if ('reason' in entry) failures.push(entry);
        else candidates.push(entry.user);
      }
      const createdEvents = (users: readonly UserRow[]) =>
        users.map((user) => ({ type: 'user.created' as const, subject: user.id, data: { user: makeUserView(user), import_id: jobId } }));
      if (postgres && failures.length === 0) {
        // One statement: every candidate's event is made here, and the database keeps those of the
        // users it created (imports.repository's importChunk says why).
        // First as a plain INSERT, which skips ON CONFLICT's check of every unique index before each
        // row (bench S7, bench/RESULTS.md). A taken username or email then fails the whole statement,
        // nothing written, and the chunk goes again with ON CONFLICT DO NOTHING, as do the job's
        // later chunks here: a failed INSERT leaves the rows it had written as dead tuples.
        const chunk = { users: candidates, events: events.toRows(createdEvents(candidates)) };
        const skipTaken = collidedJobs.has(jobId);
        let outcome: { locked: boolean; created: number };
        try {
          outcome = await imports.importChunk(jobId, seq, chunk, nowIso(), skipTaken);
        } catch (error) {
          if (skipTaken || uniqueViolationColumn(error) === null) throw error;
          rememberCollision(jobId);
          outcome = await imports.importChunk(jobId, seq, chunk, nowIso(), true);
        }
        if (outcome.created > 0) {
          events.written();
          deps.onUsersCreated?.();
        }
        return outcome.locked;
      }
      let created = 0;
      const done = await db.transaction().execute(async (trx) => {
        if (!(await imports.lockChunk(trx, jobId, seq, postgres))) return false;
        // One statement for the whole chunk (one round trip instead of one per row: bench S7). Rows
        // go in in order, so of two rows with the same username or email the first is created and
        // the second skipped, as it is one by one; RETURNING names exactly the rows created.
        const createdIds = new Set(await deps.users.insertNew(candidates, trx));
        await events.recordMany(trx, createdEvents(candidates.filter((user) => createdIds.has(user.id))));
        created = createdIds.size;
        const skipped = candidates.length - created;
        // The job's row is locked after the users, as importChunk locks it, so that the two kinds of
        // chunk never wait for each other in opposite orders.
        if (failures.length > 0) await imports.lockJob(trx, postgres, jobId);
        await imports.recordFailures(trx, jobId, failures);
        await imports.finishChunk(trx, jobId, seq, { created, skipped, failures }, nowIso());
        return true;
      });
      if (created > 0) deps.onUsersCreated?.();
      return done;
    },

    async claimNext() {
      const now = nowIso();
      return imports.claimNext(addSeconds(now, deps.leaseSeconds), now, postgres);
    },

    async claim(jobId: string, seq: number) {
      return imports.claim(jobId, seq, addSeconds(nowIso(), deps.leaseSeconds));
    },

    async status(id: string) {
      const job = await imports.findJob(id);
      if (!job) throw AppError.notFound('The import');
      const failures = await imports.listFailures(id, 100);
      return {
        id: job.id,
        status: job.status,
        format: job.format,
        rows_read: Number(job.rows_read),
        created: Number(job.created),
        skipped: Number(job.skipped),
        failed: Number(job.failed),
        failures: failures.map((f) => ({ row: Number(f.row_number), reason: f.reason })),
        error: job.error,
        created_at: toIso(job.created_at),
        updated_at: toIso(job.updated_at),
        finished_at: toIso(job.finished_at),
      };
    },
  };
}

export type ImportsService = ReturnType<typeof createImportsService>;
