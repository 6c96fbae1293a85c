// Kysely queries on outbox_events: append inside the caller's transaction, the relay's claim and
// mark, the polling feed, lag figures and pruning. `seq` is a bigint on PostgreSQL, which the pg
// driver returns as a string: Number() brings it back (exact up to 2^53).
import { type Kysely, sql, type Transaction } from 'kysely';
import { deleteInBatches } from '../../db/batches.js';
import { type BulkColumn, unnestRowsInsert } from '../../db/bulk-insert.js';
import type { Database, Dialect } from '../../db/schema.js';
import type { Executor } from '../users/users.repository.js';

export interface StoredEvent {
  seq: number;
  id: string;
  type: string;
  subject: string;
  time: string | Date;
  data: string;
  published_at: string | Date | null;
}

export type NewEvent = { id: string; type: string; subject: string; time: string; data: string };

/** The outbox's columns, as a bulk insert writes them. */
export const EVENT_COLUMNS: readonly BulkColumn<NewEvent>[] = [
  { name: 'id', type: 'text' },
  { name: 'type', type: 'text' },
  { name: 'subject', type: 'text' },
  { name: 'time', type: 'timestamptz' },
  { name: 'data', type: 'text' },
];

export function createEventsRepository(db: Kysely<Database>, dialect: Dialect) {
  const postgres = dialect === 'postgres';
  const toStored = <T extends { seq: number | string }>(row: T) => ({ ...row, seq: Number(row.seq) });

  return {
    /**
     * Appends events in one statement; their sequence numbers follow the order given. Several at
     * once on PostgreSQL go as one array per column (bulk-insert.ts).
     */
    async append(trx: Executor, ...events: NewEvent[]): Promise<void> {
      if (events.length === 0) return;
      if (postgres && events.length > 1) {
        await unnestRowsInsert('outbox_events', EVENT_COLUMNS, events).execute(trx);
        return;
      }
      await trx
        .insertInto('outbox_events')
        .values(events.map((event) => ({ ...event, published_at: null })))
        .execute();
    },

    /**
     * Unpublished events that are the oldest unpublished one of their user, in order: publishing
     * only these keeps each user's events in order even with several relays. On PostgreSQL the
     * rows are locked (SKIP LOCKED), so concurrent relays take disjoint batches.
     */
    async claimBatch(trx: Transaction<Database>, limit: number, postgres: boolean): Promise<StoredEvent[]> {
      let select = trx
        .selectFrom('outbox_events as o')
        .selectAll('o')
        .where('o.published_at', 'is', null)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('outbox_events as p')
                .select('p.seq')
                .whereRef('p.subject', '=', 'o.subject')
                .where('p.published_at', 'is', null)
                .whereRef('p.seq', '<', 'o.seq'),
            ),
          ),
        )
        .orderBy('o.seq')
        .limit(limit);
      if (postgres) select = select.forUpdate().skipLocked();
      return (await select.execute()).map(toStored);
    },

    async markPublished(trx: Executor, seqs: number[], at: string): Promise<void> {
      if (seqs.length === 0) return;
      await trx.updateTable('outbox_events').set({ published_at: at }).where('seq', 'in', seqs).execute();
    },

    /** The feed: events after the one with `afterId` (all when null), oldest first. */
    async listAfter(afterId: string | null, limit: number): Promise<StoredEvent[] | null> {
      let afterSeq = 0;
      if (afterId) {
        const anchor = await db.selectFrom('outbox_events').select('seq').where('id', '=', afterId).executeTakeFirst();
        if (!anchor) return null;
        afterSeq = Number(anchor.seq);
      }
      const rows = await db.selectFrom('outbox_events').selectAll().where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
      return rows.map(toStored);
    },

    async pendingStats(): Promise<{ count: number; oldest: string | Date | null }> {
      const row = await db
        .selectFrom('outbox_events')
        .select([sql<string | number>`count(*)`.as('count'), sql<string | Date | null>`min(time)`.as('oldest')])
        .where('published_at', 'is', null)
        .executeTakeFirst();
      return { count: Number(row?.count ?? 0), oldest: row?.oldest ?? null };
    },

    /** Deletes events older than `before`: published ones, or all when `includeUnpublished`. */
    async deleteOlderThan(before: string, includeUnpublished: boolean, batchSize = 5_000): Promise<number> {
      return deleteInBatches(
        batchSize,
        async (limit) => {
          let select = db.selectFrom('outbox_events').select('seq').where('time', '<', before);
          if (!includeUnpublished) select = select.where('published_at', 'is not', null);
          return (await select.limit(limit).execute()).map((row) => Number(row.seq));
        },
        async (seqs) => (await db.deleteFrom('outbox_events').where('seq', 'in', seqs).executeTakeFirst()).numDeletedRows,
      );
    },
  };
}

export type EventsRepository = ReturnType<typeof createEventsRepository>;
