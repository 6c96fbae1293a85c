// The sign-in's statements as named prepared statements on PostgreSQL (src/db/prepared.ts): sent by
// name where DATABASE_PREPARED_STATEMENTS allows it, never where it does not, and still answering
// after a migration adds a column to users (a rolling deploy's old instances keep their statements).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { USER_COLUMN_NAMES } from '../src/modules/users/users.repository.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { targets } from './helpers/databases.js';

async function preparedNames(t: TestApp): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select name from pg_prepared_statements order by name`.execute(t.services.database.db);
  return rows.map((row) => row.name).filter((name) => name.startsWith('gatehouse_'));
}

for (const { target, skip } of await targets()) {
  describe(`user columns on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('USER_COLUMN_NAMES lists every column of the migrated users table', async () => {
      const tables = await t.services.database.db.introspection.getTables();
      const users = tables.find((table) => table.name === 'users') ?? assert.fail('no users table');
      assert.deepEqual([...USER_COLUMN_NAMES].sort(), users.columns.map((column) => column.name).sort());
    });
  });
}

const postgres = (await targets()).find((entry) => entry.target === 'postgres');
describe('prepared sign-in statements on PostgreSQL', { skip: postgres?.skip ?? false }, () => {
  describe('by default', () => {
    let t: TestApp;
    before(async () => {
      // One connection, so that the statements it prepared are the ones pg_prepared_statements shows.
      t = await buildTestApp('postgres', { databasePoolMax: 1 });
    });
    after(async () => t?.close());

    test('the lookup and the sign-in statement are prepared once on the connection', async () => {
      const user = await t.createUser();
      await t.signIn(user.username, user.password);
      const names = await preparedNames(t);
      assert.equal(names.length, 2, `prepared: ${names.join(', ')}`);
      await t.signIn(user.username, user.password);
      assert.deepEqual(await preparedNames(t), names);
    });

    test('sign-ins keep working after a migration adds a column to users', async () => {
      const user = await t.createUser();
      const first = await t.signIn(user.username, user.password);
      assert.ok((await preparedNames(t)).length > 0);
      await sql`alter table users add column added_by_a_later_release text default 'x'`.execute(t.services.database.db);
      try {
        const second = await t.signIn(user.username, user.password);
        assert.equal(second.user.id, first.user.id);
        const found = await t.services.usersRepository.findByUsername(user.username);
        assert.equal(found?.id, user.id);
        assert.equal(Object.hasOwn(found ?? {}, 'added_by_a_later_release'), false);
      } finally {
        await sql`alter table users drop column added_by_a_later_release`.execute(t.services.database.db);
      }
    });
  });

  describe('with DATABASE_PREPARED_STATEMENTS=false', () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp('postgres', { databasePoolMax: 1, databasePreparedStatements: false });
    });
    after(async () => t?.close());

    test('signs in without preparing anything', async () => {
      const user = await t.createUser();
      const pair = await t.signIn(user.username, user.password);
      assert.equal(pair.user.id, user.id);
      assert.deepEqual(await preparedNames(t), []);
    });
  });
});
