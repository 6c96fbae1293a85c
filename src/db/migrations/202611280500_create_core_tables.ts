// Users, sessions with hashed refresh tokens, login events and token-signing keys.
// PostgreSQL gets timestamptz and C-collated username/email (so prefix search can use the index);
// SQLite stores RFC 3339 text, which sorts the same way.
import { type Kysely, PostgresAdapter, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time, not typed by today's schema
export async function up(db: Kysely<any>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const time = postgres ? sql`timestamptz(3)` : sql`text`;
  const key = postgres ? sql`text collate "C"` : sql`text`;

  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('email', key, (c) => c.notNull())
    .addColumn('display_name', 'text')
    .addColumn('roles', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', time, (c) => c.notNull())
    .addColumn('updated_at', time, (c) => c.notNull())
    .addColumn('last_login_at', time)
    .addColumn('last_seen_at', time)
    .execute();
  // Named unique indexes (not column constraints) so both databases report the same names. The
  // username index also serves sorting by username (usernames are unique, so no id tie-break).
  await db.schema.createIndex('users_username_key').on('users').column('username').unique().execute();
  await db.schema.createIndex('users_email_key').on('users').column('email').unique().execute();
  // Keyset pagination: every other sort is (column, id); filters have their own index.
  await db.schema.createIndex('users_created_at_id_idx').on('users').columns(['created_at', 'id']).execute();
  if (postgres) {
    // NULL (never signed in) sorts as the oldest: first ascending, last descending.
    await sql`create index users_last_login_at_id_idx on users (last_login_at asc nulls first, id)`.execute(db);
  } else {
    await db.schema.createIndex('users_last_login_at_id_idx').on('users').columns(['last_login_at', 'id']).execute();
  }
  await db.schema.createIndex('users_status_created_at_idx').on('users').columns(['status', 'created_at', 'id']).execute();
  await db.schema.createIndex('users_roles_created_at_idx').on('users').columns(['roles', 'created_at', 'id']).execute();

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', time, (c) => c.notNull())
    .addColumn('expires_at', time, (c) => c.notNull())
    .addColumn('revoked_at', time)
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .execute();
  await db.schema.createIndex('sessions_user_id_idx').on('sessions').column('user_id').execute();

  await db.schema
    .createTable('refresh_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('created_at', time, (c) => c.notNull())
    .addColumn('used_at', time)
    .execute();
  await db.schema.createIndex('refresh_tokens_session_id_idx').on('refresh_tokens').column('session_id').execute();

  await db.schema
    .createTable('login_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
    .addColumn('at', time, (c) => c.notNull())
    .addColumn('success', 'integer', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .execute();
  await db.schema.createIndex('login_events_user_id_id_idx').on('login_events').columns(['user_id', 'id']).execute();
  await db.schema.createIndex('login_events_at_idx').on('login_events').column('at').execute();

  await db.schema
    .createTable('signing_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    .addColumn('private_key_pem', 'text', (c) => c.notNull())
    .addColumn('created_at', time, (c) => c.notNull())
    .addColumn('retired_at', time)
    .execute();
}
