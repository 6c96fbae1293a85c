// Kysely queries on login_events: append, page through one user's history, prune by age.
import type { Kysely, Selectable } from 'kysely';
import { deleteInBatches } from '../../db/batches.js';
import type { Database, LoginEventsTable } from '../../db/schema.js';
import type { Executor } from '../users/users.repository.js';

export type LoginEventRow = Selectable<LoginEventsTable>;

export function createLoginsRepository(db: Kysely<Database>) {
  return {
    async insert(event: LoginEventRow, trx: Executor = db): Promise<void> {
      await trx.insertInto('login_events').values(event).execute();
    },

    /** Newest first; ids are UUIDv7, so id order is time order. Returns up to limit + 1 rows. */
    async listForUser(userId: string, limit: number, beforeId: string | null): Promise<LoginEventRow[]> {
      let select = db.selectFrom('login_events').selectAll().where('user_id', '=', userId);
      if (beforeId) select = select.where('id', '<', beforeId);
      return select
        .orderBy('id', 'desc')
        .limit(limit + 1)
        .execute();
    },

    /** Deletes events older than `before`, in batches so that no transaction grows large. */
    async deleteOlderThan(before: string, batchSize = 5_000): Promise<number> {
      return deleteInBatches(
        batchSize,
        async (limit) =>
          (await db.selectFrom('login_events').select('id').where('at', '<', before).limit(limit).execute()).map((row) => row.id),
        async (ids) => (await db.deleteFrom('login_events').where('id', 'in', ids).executeTakeFirst()).numDeletedRows,
      );
    },
  };
}

export type LoginsRepository = ReturnType<typeof createLoginsRepository>;
