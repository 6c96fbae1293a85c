// Many rows in one INSERT (src/db/bulk-insert.ts): on PostgreSQL each column goes as one array
// literal written by gatehouse itself, so every value must come back exactly as sent, whatever
// characters it holds, rows must go in in the order given, and of two rows that collide the first
// wins. The import and the outbox's batches both write through it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { arrayLiteral } from '../src/db/bulk-insert.js';
import { createDatabase } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import type { Database } from '../src/db/schema.js';
import { uuidv7 } from '../src/lib/ids.js';
import { createEventsRepository } from '../src/modules/events/events.repository.js';
import { createUsersRepository, type UserRow } from '../src/modules/users/users.repository.js';
import { createTestDatabase, type TestDatabase, targets } from './helpers/databases.js';

// Values that an array literal would misread if they were written unquoted or unescaped.
const AWKWARD = [
  '',
  ' ',
  '  padded  ',
  'NULL',
  'null',
  'a,b',
  '{braces}',
  '"quoted"',
  'back\\slash',
  '\\"',
  'ends with a backslash\\',
  'line\nbreak\ttab',
  'ünïcödé ✓ 😀',
  "it's",
  '{"json":"text","n":[1,2]}',
];

test('an array literal quotes every element and escapes only " and \\', () => {
  assert.equal(arrayLiteral([]), '{}');
  assert.equal(arrayLiteral(['a', null, undefined, 'NULL', '']), '{"a",NULL,NULL,"NULL",""}');
  assert.equal(arrayLiteral(['say "hi"', 'c:\\dir']), '{"say \\"hi\\"","c:\\\\dir"}');
  assert.equal(arrayLiteral([new Date('2026-11-29T06:00:00.123Z'), 42]), '{"2026-11-29T06:00:00.123Z","42"}');
});

for (const { target, skip } of await targets()) {
  if (target !== 'postgres') continue;
  describe('bulk inserts on PostgreSQL', { skip }, () => {
    let database: TestDatabase;
    let db: Kysely<Database>;
    let destroy: () => Promise<unknown>;

    before(async () => {
      database = await createTestDatabase('postgres');
      const handle = createDatabase({ databaseUrl: database.url, databasePoolMax: 2 });
      db = handle.db;
      destroy = handle.destroy;
      await migrateToLatest(db);
    });

    after(async () => {
      await destroy?.();
      await database?.drop();
    });

    function user(username: string, displayName: string | null, overrides: Partial<UserRow> = {}): UserRow {
      return {
        id: uuidv7(),
        username,
        email: `${username}@example.com`,
        display_name: displayName,
        roles: 'user',
        status: 'active',
        password_hash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g',
        created_at: '2026-11-29T06:00:00.123Z',
        updated_at: '2026-11-29T06:00:00.123Z',
        last_login_at: null,
        last_seen_at: null,
        ...overrides,
      };
    }

    test('every value comes back as it was sent, NULL as null', async () => {
      const users = createUsersRepository(db, 'postgres');
      const rows = AWKWARD.map((text, n) => user(`awkward-${n}`, text, n % 2 === 0 ? { last_login_at: '2026-05-15T08:30:00.000Z' } : {}));
      rows.push(user('no-display-name', null));
      const created = await users.insertNew(rows);
      assert.deepEqual(
        created,
        rows.map((row) => row.id),
      );
      for (const row of rows) {
        const stored = await users.findById(row.id);
        assert.ok(stored);
        assert.equal(stored.display_name, row.display_name, `display_name of ${row.username}`);
        assert.equal(stored.username, row.username);
        assert.equal(new Date(stored.created_at).toISOString(), row.created_at);
        assert.equal(stored.last_login_at === null ? null : new Date(stored.last_login_at).toISOString(), row.last_login_at);
      }
    });

    test('of two rows that collide the first is created and only it is returned', async () => {
      const users = createUsersRepository(db, 'postgres');
      const first = user('collide-first', 'first');
      const second = user('collide-first', 'second');
      const sameEmail = user('collide-other', 'third', { email: first.email });
      const free = user('collide-free', 'free');
      const created = await users.insertNew([first, second, sameEmail, free]);
      assert.deepEqual(created.sort(), [first.id, free.id].sort());
      assert.equal((await users.findByUsername('collide-first'))?.display_name, 'first');
      assert.equal(await users.findById(sameEmail.id), undefined);
    });

    test('events get sequence numbers in the order given, their data unchanged', async () => {
      const events = createEventsRepository(db, 'postgres');
      const batch = AWKWARD.map((text, n) => ({
        id: uuidv7(),
        type: 'user.created',
        subject: `subject-${n}`,
        time: '2026-11-29T06:00:00.123Z',
        data: JSON.stringify({ text, n }),
      }));
      await events.append(db, ...batch);
      const stored = await db
        .selectFrom('outbox_events')
        .select(['id', 'data', 'seq'])
        .where(
          'id',
          'in',
          batch.map((event) => event.id),
        )
        .orderBy('seq')
        .execute();
      assert.deepEqual(
        stored.map((row) => row.id),
        batch.map((event) => event.id),
      );
      assert.deepEqual(
        stored.map((row) => row.data),
        batch.map((event) => event.data),
      );
    });
  });
}
