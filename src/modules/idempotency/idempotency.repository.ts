// Kysely queries on idempotency_keys: find a stored response, store one (inside the caller's
// transaction), prune expired ones.
import type { Kysely, Selectable } from 'kysely';
import { deleteInBatches } from '../../db/batches.js';
import type { Database, IdempotencyKeysTable } from '../../db/schema.js';
import type { Executor } from '../users/users.repository.js';

export type IdempotencyRow = Selectable<IdempotencyKeysTable>;

export function createIdempotencyRepository(db: Kysely<Database>) {
  return {
    /** The stored response for (scope, key), unless it has expired. */
    async find(scope: string, key: string, now: string): Promise<IdempotencyRow | undefined> {
      return db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('scope', '=', scope)
        .where('key', '=', key)
        .where('expires_at', '>', now)
        .executeTakeFirst();
    },

    /**
     * Stores a response in the transaction of the work it describes. An expired record for the
     * same key is replaced; a live one makes the insert fail, which rolls the work back.
     */
    async insert(row: IdempotencyRow, trx: Executor): Promise<void> {
      await trx
        .deleteFrom('idempotency_keys')
        .where('scope', '=', row.scope)
        .where('key', '=', row.key)
        .where('expires_at', '<=', row.created_at)
        .execute();
      await trx.insertInto('idempotency_keys').values(row).execute();
    },

    async deleteExpired(now: string, batchSize = 1_000): Promise<number> {
      return deleteInBatches(
        batchSize,
        async (limit) => db.selectFrom('idempotency_keys').select(['scope', 'key']).where('expires_at', '<=', now).limit(limit).execute(),
        async (keys) =>
          (
            await db
              .deleteFrom('idempotency_keys')
              .where((eb) => eb.or(keys.map((k) => eb.and([eb('scope', '=', k.scope), eb('key', '=', k.key)]))))
              .executeTakeFirst()
          ).numDeletedRows,
      );
    },
  };
}

export type IdempotencyRepository = ReturnType<typeof createIdempotencyRepository>;
