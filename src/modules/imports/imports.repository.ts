// Kysely queries on import_jobs, import_chunks and import_failures.
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import { columnList, unnestRows } from '../../db/bulk-insert.js';
import type { Database, ImportJobsTable } from '../../db/schema.js';
import { EVENT_COLUMNS, type NewEvent } from '../events/events.repository.js';
import { type Executor, USER_COLUMNS, type UserRow } from '../users/users.repository.js';

export type ImportJobRow = Selectable<ImportJobsTable>;

export interface ChunkOutcome {
  created: number;
  skipped: number;
  failures: { rowNumber: number; reason: string }[];
}

/** One chunk of an upload: its place and its rows as JSON. */
export interface StoredChunk {
  seq: number;
  firstRow: number;
  rows: string;
}

/** At most this many failures are kept per job (the counts stay exact). */
export const MAX_STORED_FAILURES = 1_000;

export function createImportsRepository(db: Kysely<Database>) {
  return {
    async insertJob(job: { id: string; format: 'ndjson' | 'csv'; created_by: string | null; now: string }): Promise<void> {
      await db
        .insertInto('import_jobs')
        .values({
          id: job.id,
          status: 'receiving',
          format: job.format,
          created_by: job.created_by,
          chunks_total: null,
          error: null,
          created_at: job.now,
          updated_at: job.now,
          finished_at: null,
        })
        .execute();
    },

    /** Stores chunks of an upload that is still being read, with the rows read so far: one commit. */
    async storeChunks(jobId: string, chunks: readonly StoredChunk[], rowsRead: number, now: string): Promise<void> {
      if (chunks.length === 0) return;
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('import_chunks')
          .values(
            chunks.map((chunk) => ({
              job_id: jobId,
              seq: chunk.seq,
              first_row: chunk.firstRow,
              rows: chunk.rows,
              status: 'pending' as const,
              claimed_until: null,
            })),
          )
          .execute();
        await trx.updateTable('import_jobs').set({ rows_read: rowsRead, updated_at: now }).where('id', '=', jobId).execute();
      });
    },

    /**
     * Rows read so far, and (once reading ended) the number of chunks, which queues the job (and
     * completes an empty one). `reserveUntil` keeps the chunks for the work queue until then.
     */
    async updateReading(
      jobId: string,
      rowsRead: number,
      chunksTotal: number | null,
      failed: number,
      now: string,
      reserveUntil: string | null = null,
      onQueued?: (trx: Executor) => Promise<void>,
    ): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('import_jobs')
          .set((eb) => ({ rows_read: rowsRead, chunks_total: chunksTotal, failed: eb('failed', '+', failed), updated_at: now }))
          .where('id', '=', jobId)
          .execute();
        if (chunksTotal !== null) {
          await trx
            .updateTable('import_jobs')
            .set({ status: 'queued' })
            .where('id', '=', jobId)
            .where('status', '=', 'receiving')
            .execute();
          if (reserveUntil) {
            await trx
              .updateTable('import_chunks')
              .set({ claimed_until: reserveUntil })
              .where('job_id', '=', jobId)
              .where('status', '=', 'pending')
              .execute();
          }
          await completeIfDone(trx, jobId, now);
          await onQueued?.(trx);
        }
      });
    },

    async recordFailures(trx: Executor, jobId: string, failures: { rowNumber: number; reason: string }[]): Promise<void> {
      if (failures.length === 0) return;
      const stored = await trx
        .selectFrom('import_failures')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('job_id', '=', jobId)
        .executeTakeFirst();
      const room = MAX_STORED_FAILURES - Number(stored?.n ?? 0);
      if (room <= 0) return;
      await trx
        .insertInto('import_failures')
        .values(failures.slice(0, room).map((f) => ({ job_id: jobId, row_number: f.rowNumber, reason: f.reason })))
        .onConflict((oc) => oc.doNothing())
        .execute();
    },

    /** Fails a job whose upload was cut; its stored chunks that no worker finished are not imported. */
    async failJob(jobId: string, error: string, now: string): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('import_jobs')
          .set({ status: 'failed', error, updated_at: now, finished_at: now })
          .where('id', '=', jobId)
          .execute();
        await trx.deleteFrom('import_chunks').where('job_id', '=', jobId).where('status', '!=', 'done').execute();
      });
    },

    /**
     * Takes one chunk that is pending and not reserved, or whose lease ran out (its worker died).
     * On PostgreSQL the row is locked with SKIP LOCKED, so workers never take the same chunk.
     */
    async claimNext(leaseUntil: string, now: string, postgres: boolean): Promise<{ jobId: string; seq: number } | null> {
      return db.transaction().execute(async (trx) => {
        let select = trx
          .selectFrom('import_chunks')
          .select(['job_id', 'seq'])
          .where('status', '!=', 'done')
          .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
          // Only once the whole upload is stored: a request that fails half-way imports nothing.
          .where(({ exists, selectFrom }) =>
            exists(
              selectFrom('import_jobs')
                .select('import_jobs.id')
                .whereRef('import_jobs.id', '=', 'import_chunks.job_id')
                .where('import_jobs.status', '=', 'queued'),
            ),
          )
          .orderBy('job_id')
          .orderBy('seq')
          .limit(1);
        if (postgres) select = select.forUpdate().skipLocked();
        const next = await select.executeTakeFirst();
        if (!next) return null;
        await trx
          .updateTable('import_chunks')
          .set((eb) => ({ status: 'claimed', claimed_until: leaseUntil, attempts: eb('attempts', '+', 1) }))
          .where('job_id', '=', next.job_id)
          .where('seq', '=', next.seq)
          .execute();
        return { jobId: next.job_id, seq: next.seq };
      });
    },

    /** Claims a named chunk (a work-queue message); null when it is already done. */
    async claim(jobId: string, seq: number, leaseUntil: string): Promise<boolean> {
      const result = await db
        .updateTable('import_chunks')
        .set((eb) => ({ status: 'claimed', claimed_until: leaseUntil, attempts: eb('attempts', '+', 1) }))
        .where('job_id', '=', jobId)
        .where('seq', '=', seq)
        .where('status', '!=', 'done')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /**
     * Holds the job's row until the transaction ends (PostgreSQL; SQLite runs one transaction at a
     * time): chunks that store failures count the stored ones one after the other.
     */
    async lockJob(trx: Transaction<Database>, postgres: boolean, jobId: string): Promise<void> {
      if (postgres) await trx.selectFrom('import_jobs').select('id').where('id', '=', jobId).forUpdate().execute();
    },

    /**
     * Locks the chunk for the transaction (on PostgreSQL); false when it is done already. Its rows
     * (about 100 kB) were read just before the transaction, so they are not fetched again: only
     * whether they are still there.
     */
    async lockChunk(trx: Transaction<Database>, jobId: string, seq: number, postgres: boolean): Promise<boolean> {
      let select = trx
        .selectFrom('import_chunks')
        .select((eb) => ['status', eb('rows', 'is not', null).as('has_rows')])
        .where('job_id', '=', jobId)
        .where('seq', '=', seq);
      if (postgres) select = select.forUpdate();
      const chunk = await select.executeTakeFirst();
      // SQLite answers a comparison with 0 or 1.
      return chunk !== undefined && chunk.status !== 'done' && Boolean(chunk.has_rows);
    },

    /** Marks a chunk done (dropping its rows) and adds its outcome to the job, in the chunk's transaction. */
    async finishChunk(trx: Transaction<Database>, jobId: string, seq: number, outcome: ChunkOutcome, now: string): Promise<void> {
      await trx
        .updateTable('import_chunks')
        .set({ status: 'done', rows: null, claimed_until: null })
        .where('job_id', '=', jobId)
        .where('seq', '=', seq)
        .execute();
      await trx
        .updateTable('import_jobs')
        .set((eb) => ({
          created: eb('created', '+', outcome.created),
          skipped: eb('skipped', '+', outcome.skipped),
          failed: eb('failed', '+', outcome.failures.length),
          chunks_done: eb('chunks_done', '+', 1),
          updated_at: now,
        }))
        .where('id', '=', jobId)
        .execute();
      await completeIfDone(trx, jobId, now);
    },

    /**
     * A chunk's outcome in one statement (PostgreSQL only), for a chunk whose rows all passed their
     * checks, where finishChunk takes a transaction of six: lock the chunk if it is still to do;
     * insert its users; the `user.created` event of each user created, in order; the chunk done; the
     * job's counts, completed with its last chunk. Nothing is written when the chunk was done already
     * (`locked` false). With `skipTaken`, a user whose id, username or email is taken is skipped (of
     * two in the chunk, the first is created); without, such a user fails the whole statement with
     * code 23505 and nothing is written, but PostgreSQL skips ON CONFLICT's check of every unique
     * index before each row. Why one statement: every chunk updates its job's row, so a chunk's
     * transaction holds that row's lock until it commits; sent statement by statement, that was
     * until the event loop came back to it, between other chunks' work, and the other chunks'
     * transactions queued behind it (bench S7). A chunk with failures takes the transaction, which
     * locks the job before it counts the stored failures: the cap needs that count to be the
     * committed one.
     */
    async importChunk(
      jobId: string,
      seq: number,
      chunk: { users: readonly UserRow[]; events: readonly NewEvent[] },
      now: string,
      skipTaken: boolean,
    ): Promise<{ locked: boolean; created: number }> {
      const users = columnList(USER_COLUMNS);
      const events = columnList(EVENT_COLUMNS);
      const { rows } = await sql<{ locked: boolean; created: number | string }>`
        with chunk as (
          select 1 from import_chunks
          where job_id = ${jobId} and seq = ${seq} and status <> 'done' and rows is not null
          for update
        ), new_users as (
          insert into users (${users})
          select ${users} from ${unnestRows(USER_COLUMNS, chunk.users)}
          where exists (select from chunk)
          order by bulk_position
          ${skipTaken ? sql`on conflict do nothing` : sql``}
          returning id
        ), new_events as (
          insert into outbox_events (${events})
          select ${events} from ${unnestRows(EVENT_COLUMNS, chunk.events)}
          where subject in (select id from new_users)
          order by bulk_position
        ), finished as (
          update import_chunks set status = 'done', rows = null, claimed_until = null
          where job_id = ${jobId} and seq = ${seq} and exists (select from chunk)
        ), counted as (
          -- finishChunk's counts and completeIfDone's rule, in this statement: a later statement
          -- would not be atomic with it, and a job could end with every chunk done but not completed.
          update import_jobs set
            created = import_jobs.created + outcome.created,
            skipped = import_jobs.skipped + ${chunk.users.length} - outcome.created,
            chunks_done = chunks_done + 1,
            updated_at = ${now},
            status = case when status = 'queued' and chunks_done + 1 >= chunks_total then 'completed' else status end,
            finished_at = case when status = 'queued' and chunks_done + 1 >= chunks_total then ${now} else finished_at end
          from (select count(*)::integer as created from new_users) as outcome
          where id = ${jobId} and exists (select from chunk)
        )
        select exists (select from chunk) as locked, (select count(*) from new_users)::integer as created
      `.execute(db);
      const outcome = rows[0];
      return { locked: outcome?.locked === true, created: Number(outcome?.created ?? 0) };
    },

    async findJob(id: string): Promise<ImportJobRow | undefined> {
      return db.selectFrom('import_jobs').selectAll().where('id', '=', id).executeTakeFirst();
    },

    async listFailures(jobId: string, limit: number) {
      return db
        .selectFrom('import_failures')
        .select(['row_number', 'reason'])
        .where('job_id', '=', jobId)
        .orderBy('row_number')
        .limit(limit)
        .execute();
    },
  };

  /** Completes a queued job whose chunks are all done. importChunk applies the same rule in its statement. */
  async function completeIfDone(trx: Transaction<Database>, jobId: string, now: string): Promise<void> {
    await trx
      .updateTable('import_jobs')
      .set({ status: 'completed', finished_at: now })
      .where('id', '=', jobId)
      .where('status', '=', 'queued')
      .where((eb) => eb('chunks_done', '>=', eb.ref('chunks_total')))
      .execute();
  }
}

export type ImportsRepository = ReturnType<typeof createImportsRepository>;
