// The transactional outbox: every state change writes its CloudEvent here in the same transaction.
// `seq` orders events (per user, a later change commits after an earlier one, so seq order is
// commit order); `published_at` is set once the broker confirmed the event.
import { type Kysely, PostgresAdapter, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time, not typed by today's schema
export async function up(db: Kysely<any>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const time = postgres ? sql`timestamptz(3)` : sql`text`;
  let table = db.schema.createTable('outbox_events');
  table = postgres
    ? table.addColumn('seq', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    : table.addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement());
  await table
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('time', time, (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('published_at', time)
    .execute();
  // The relay's claim: unpublished events in order, and "is there an earlier one for this user?".
  await sql`create index outbox_events_pending_idx on outbox_events (seq) where published_at is null`.execute(db);
  await sql`create index outbox_events_pending_subject_idx on outbox_events (subject, seq) where published_at is null`.execute(db);
  await db.schema.createIndex('outbox_events_time_idx').on('outbox_events').column('time').execute();
}
