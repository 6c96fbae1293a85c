// Kysely queries for the admin dashboard: a few counts, each answered from an index (users by
// status and by last_login_at, login_events by at), never a loop over users.
import { type Kysely, sql } from 'kysely';
import type { Database, Dialect } from '../../db/schema.js';

export interface SignInsOnDay {
  /** YYYY-MM-DD, UTC. */
  date: string;
  success: boolean;
  count: number;
}

export function createStatsRepository(db: Kysely<Database>, dialect: Dialect) {
  // SQLite keeps times as RFC 3339 text in UTC, so the day is its first ten characters.
  const day = dialect === 'postgres' ? sql<string>`to_char(at at time zone 'UTC', 'YYYY-MM-DD')` : sql<string>`substr(at, 1, 10)`;

  return {
    async countUsersByStatus(): Promise<Record<'active' | 'disabled', number>> {
      const rows = await db
        .selectFrom('users')
        .select(['status', db.fn.countAll<string | number>().as('count')])
        .groupBy('status')
        .execute();
      const counts = { active: 0, disabled: 0 };
      for (const row of rows) counts[row.status] = Number(row.count);
      return counts;
    },

    /** Users whose last sign-in is at or after `since`. */
    async countSignedInSince(since: string): Promise<number> {
      const row = await db
        .selectFrom('users')
        .select(db.fn.countAll<string | number>().as('count'))
        .where('last_login_at', '>=', since)
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },

    async countNeverSignedIn(): Promise<number> {
      const row = await db
        .selectFrom('users')
        .select(db.fn.countAll<string | number>().as('count'))
        .where('last_login_at', 'is', null)
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },

    /** Login events at or after `since`, counted per UTC day and outcome. */
    async countSignInsPerDay(since: string): Promise<SignInsOnDay[]> {
      const rows = await db
        .selectFrom('login_events')
        .select([day.as('day'), 'success', db.fn.countAll<string | number>().as('count')])
        .where('at', '>=', since)
        .groupBy([day, 'success'])
        .execute();
      return rows.map((row) => ({ date: row.day, success: Number(row.success) === 1, count: Number(row.count) }));
    },
  };
}

export type StatsRepository = ReturnType<typeof createStatsRepository>;
