// The database layer itself: migrations under concurrency, the indexes behind the list queries,
// and login-event retention.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { createDatabase } from '../src/db/database.js';
import { isDatabaseUnavailable } from '../src/db/errors.js';
import { migrateToLatest, pendingMigrations } from '../src/db/migrate.js';
import { uuidv7 } from '../src/lib/ids.js';
import { createUsersRepository, type UserListQuery } from '../src/modules/users/users.repository.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { createTestDatabase, targets } from './helpers/databases.js';

/** The query plan of the users list query, as one string. */
async function planOf(t: TestApp, query: UserListQuery): Promise<string> {
  const { db, dialect } = t.services.database;
  const compiled = createUsersRepository(db, dialect).listQuery(query).compile();
  if (dialect === 'sqlite') {
    const explained = await db.executeQuery({ ...compiled, sql: `explain query plan ${compiled.sql}` });
    return explained.rows.map((row) => Object.values(row as Record<string, unknown>).join(' ')).join('\n');
  }
  // A few hundred rows fit in a page or two, where PostgreSQL rightly prefers a scan; with scans
  // priced out, the plan shows whether an index can serve the query at all.
  const explained = await db.transaction().execute(async (trx) => {
    await sql`set local enable_seqscan = off`.execute(trx);
    return trx.executeQuery({ ...compiled, sql: `explain ${compiled.sql}` });
  });
  return explained.rows.map((row) => Object.values(row as Record<string, unknown>).join(' ')).join('\n');
}

for (const { target, skip } of await targets()) {
  describe(`database on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
      // Enough rows that the planner prefers an index to a scan.
      const repo = t.services.usersRepository;
      const now = Date.now();
      for (let i = 0; i < 300; i++) {
        const at = new Date(now - i * 60_000).toISOString();
        await repo.insert({
          id: uuidv7(),
          username: `planner${i.toString().padStart(4, '0')}`,
          email: `planner${i}@example.com`,
          display_name: null,
          roles: i % 10 === 0 ? 'admin,user' : 'user',
          status: i % 7 === 0 ? 'disabled' : 'active',
          password_hash: 'x',
          created_at: at,
          updated_at: at,
          last_login_at: i % 3 === 0 ? null : at,
          last_seen_at: null,
        });
      }
      if (target === 'postgres') await sql`analyze users`.execute(t.services.database.db);
      else await sql`analyze`.execute(t.services.database.db);
    });
    after(async () => t?.close());

    test('migrations report nothing pending once applied, and applying again is a no-op', async () => {
      assert.deepEqual(await pendingMigrations(t.services.database.db), []);
      assert.deepEqual(await migrateToLatest(t.services.database.db), []);
    });

    const plans: [string, UserListQuery, RegExp][] = [
      ['the default sort', { limit: 20, sort: 'created_at', after: null }, /users_created_at_id_idx/],
      [
        'a deep page by creation time',
        { limit: 20, sort: 'created_at', after: { value: new Date().toISOString(), id: 'z' } },
        /users_created_at_id_idx/,
      ],
      ['sorting by username', { limit: 20, sort: '-username', after: null }, /users_username_key/],
      ['sorting by last sign-in', { limit: 20, sort: 'last_login_at', after: null }, /users_last_login_at_id_idx/],
      ['the username/email prefix search', { limit: 20, sort: 'created_at', after: null, prefix: 'planner0123' }, /users_username_key/],
    ];
    for (const [name, query, index] of plans) {
      test(`the user list uses an index for ${name}`, async () => {
        const plan = await planOf(t, query);
        assert.match(plan, index, plan);
      });
    }

    test('login events older than the retention are deleted, newer ones kept', async () => {
      const user = await t.createUser();
      const old = new Date(Date.now() - 100 * 86_400_000).toISOString();
      const recent = new Date().toISOString();
      for (const at of [old, old, recent]) {
        await t.services.loginsRepository.insert({
          id: uuidv7(),
          user_id: user.id,
          at,
          success: 1,
          method: 'password',
          ip: null,
          user_agent: null,
        });
      }
      const deleted = await t.services.loginsRepository.deleteOlderThan(new Date(Date.now() - 90 * 86_400_000).toISOString(), 1);
      assert.equal(deleted, 2);
      const left = await t.services.loginsRepository.listForUser(user.id, 10, null);
      assert.deepEqual(
        left.map((row) => new Date(row.at).toISOString()),
        [recent],
      );
    });
  });
}

describe('migrations started by several instances at once', async () => {
  const postgres = (await targets()).find((entry) => entry.target === 'postgres');
  test('apply exactly once on PostgreSQL', { skip: postgres?.skip ?? false }, async () => {
    const database = await createTestDatabase('postgres');
    const handles = Array.from({ length: 4 }, () => createDatabase({ databaseUrl: database.url, databasePoolMax: 2 }));
    try {
      const results = await Promise.all(handles.map((handle) => migrateToLatest(handle.db)));
      const applied = results.flat();
      assert.equal(applied.length, new Set(applied).size, `a migration ran twice: ${applied.join(', ')}`);
      assert.ok(applied.length > 0);
      assert.deepEqual(await pendingMigrations(handles[0]?.db ?? assert.fail()), []);
    } finally {
      await Promise.all(handles.map((handle) => handle.destroy()));
      await database.drop();
    }
  });
});

describe('a PostgreSQL connection that the server ends while it is checked out', async () => {
  const postgres = (await targets()).find((entry) => entry.target === 'postgres');
  test('does not crash the process: its transaction fails as unavailable, and the next query works', {
    skip: postgres?.skip ?? false,
  }, async () => {
    const database = await createTestDatabase('postgres');
    const errors: Error[] = [];
    const handle = createDatabase({ databaseUrl: database.url, databasePoolMax: 2 }, { onPoolError: (error) => errors.push(error) });
    try {
      let release: () => void = () => {};
      const holding = new Promise<void>((resolve) => {
        release = resolve;
      });
      let backend = 0;
      const transaction = handle.db.transaction().execute(async (trx) => {
        backend = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows[0]?.pid ?? -1;
        await holding; // checked out, between two statements
        await sql`select 1`.execute(trx);
      });
      while (backend === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      // What `pg_ctl stop -m fast` does to every session: the server ends it.
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      await admin.query('select pg_terminate_backend($1)', [backend]);
      await admin.end();
      for (const deadline = Date.now() + 5_000; errors.length === 0; ) {
        assert.ok(Date.now() < deadline, 'the ended connection was reported');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      release();
      // Whatever the driver says about the dead connection, it is a 503 (unavailable), not a 500.
      await assert.rejects(transaction, (error) => isDatabaseUnavailable(error));
      assert.deepEqual((await sql<{ one: number }>`select 1 as one`.execute(handle.db)).rows, [{ one: 1 }]);
    } finally {
      await handle.destroy();
      await database.drop();
    }
  });
});

describe('prepared statements on SQLite', () => {
  test('a query whose statement is reused gives full results, also after a stream of it was left half-read', async () => {
    const database = await createTestDatabase('sqlite');
    const handle = createDatabase({ databaseUrl: database.url, databasePoolMax: 1 });
    try {
      await sql`create table numbers (n integer)`.execute(handle.db);
      for (let n = 1; n <= 5; n++) await sql`insert into numbers values (${n})`.execute(handle.db);
      const query = () => handle.db.selectFrom('numbers' as never).select(sql<number>`n`.as('n'));
      const numbers = async () => (await query().execute()).map((row) => (row as { n: number }).n);
      assert.deepEqual(await numbers(), [1, 2, 3, 4, 5]);
      for await (const row of query().stream()) {
        assert.equal((row as { n: number }).n, 1);
        break; // leaves the cached statement mid-iteration
      }
      assert.deepEqual(await numbers(), [1, 2, 3, 4, 5]);
      await sql`insert into numbers values (6)`.execute(handle.db);
      assert.deepEqual(await numbers(), [1, 2, 3, 4, 5, 6], 'a reused statement reads the current rows');
    } finally {
      await handle.destroy();
      await database.drop();
    }
  });
});
