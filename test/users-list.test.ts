// GET /v1/users (filters, sorts, keyset pages) and GET /v1/users/{id}/logins, on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { bearer, buildTestApp, type TestApp, type TestUser, uniqueName } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import {
  assertProblem,
  assertUnauthorized,
  assertUserRepresentation,
  call,
  compareFor,
  idsMatching,
  type LoginBody,
  listUsers,
  logins,
  RFC3339_MILLIS,
  readUser,
  SORTS,
  signInWith,
  type UserBody,
  walk,
  withOffset,
  withoutRequestId,
} from './helpers/users.js';

for (const { target, skip } of await targets()) {
  describe(`GET /v1/users on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('a non-admin gets 403 and an anonymous caller 401 with WWW-Authenticate', async () => {
      const user = await t.createUser();
      assertProblem(await call(t, 'GET', '/v1/users', t.basic(user.username, user.password)), 403, 'forbidden');
      const { access_token } = await t.signIn(user.username, user.password);
      assertProblem(await call(t, 'GET', '/v1/users', bearer(access_token)), 403, 'forbidden');
      assertUnauthorized(await call(t, 'GET', '/v1/users'));
    });

    test('limit defaults to 20 and accepts 1 to 100; 0, 101 and non-numbers are 400 on limit', async () => {
      const prefix = `${uniqueName('lim')}-`;
      for (let i = 0; i < 21; i++) await t.createUser({ username: `${prefix}${i}` });
      const first = await listUsers(t, { q: prefix });
      assert.equal(first.items.length, 20);
      assert.ok(first.next_cursor);
      for (const user of first.items) assertUserRepresentation(user as unknown as Record<string, unknown>);
      const rest = await listUsers(t, { q: prefix, cursor: first.next_cursor });
      assert.equal(rest.items.length, 1);
      assert.equal(rest.next_cursor, null);
      assert.equal((await listUsers(t, { q: prefix, limit: '1' })).items.length, 1);
      assert.equal((await listUsers(t, { q: prefix, limit: '100' })).items.length, 21);
      for (const limit of ['0', '101', '-1', 'ten']) {
        const response = await call(t, 'GET', `/v1/users?limit=${limit}`, t.adminBasic);
        assertProblem(response, 400, 'invalid_request', 'limit');
      }
    });

    test('keyset pagination walks every user exactly once in the order of every sort, ties broken by id', async () => {
      const prefix = `${uniqueName('page')}-`;
      const users: TestUser[] = [];
      for (const suffix of ['m', 'c', 'x', 'a', 'q', 'f', 'k', 'b']) users.push(await t.createUser({ username: `${prefix}${suffix}` }));
      // Half sign in (once or twice); the other half never do, so NULL last_login_at is in the mix.
      for (const [index, user] of users.entries()) {
        if (index % 2 === 0) await t.signIn(user.username, user.password);
        if (index % 4 === 0) await t.signIn(user.username, user.password);
      }
      // Equal sort values on purpose, so the id tie-break decides: three created at the same
      // instant, and two signed-in users with the same last login.
      const db = t.services.database.db;
      const ids = (indexes: number[]) => indexes.map((index) => users[index]?.id ?? '');
      await db
        .updateTable('users')
        .set({ created_at: '2026-01-02T03:04:05.678Z' })
        .where('id', 'in', ids([1, 4, 6]))
        .execute();
      await db
        .updateTable('users')
        .set({ last_login_at: '2026-01-02T03:04:05.678Z' })
        .where('id', 'in', ids([2, 6]))
        .execute();

      const current = await Promise.all(users.map((user) => readUser(t, user.id)));
      assert.equal(current.filter((user) => user.last_login_at === null).length, 4);
      for (const sort of SORTS) {
        const expected = [...current].sort(compareFor(sort)).map((user) => user.id);
        for (const limit of [1, 3, 8, 100]) {
          assert.deepEqual(await walk(t, { q: prefix, sort }, limit), expected, `sort ${sort}, limit ${limit}`);
        }
      }
    });

    test('the default sort is created_at, oldest first', async () => {
      const prefix = `${uniqueName('dflt')}-`;
      const users = [];
      for (const suffix of ['z', 'a', 'm']) users.push(await t.createUser({ username: `${prefix}${suffix}` }));
      assert.deepEqual(
        await walk(t, { q: prefix }, 2),
        users.map((user) => user.id),
      );
    });

    test('q matches a prefix of the username or of the email, not the middle', async () => {
      const prefix = `${uniqueName('q')}-`;
      const byUsername = await t.createUser({ username: `${prefix}name`, email: `${uniqueName('other')}@example.com` });
      const byEmail = await t.createUser({ username: uniqueName('other'), email: `${prefix}mail@example.com` });
      await t.createUser({ username: `z${prefix}`, email: `z${prefix}@example.com` });
      assert.deepEqual(await idsMatching(t, { q: prefix }), [byUsername.id, byEmail.id]);
      assert.deepEqual(await idsMatching(t, { q: `${prefix}mail@` }), [byEmail.id]);
    });

    test('status, role, never_logged_in and last_login_before/after filter the list', async () => {
      const prefix = `${uniqueName('filter')}-`;
      const early = await t.createUser({ username: `${prefix}early` });
      const late = await t.createUser({ username: `${prefix}late` });
      const never = await t.createUser({ username: `${prefix}never` });
      const admin = await t.createUser({ username: `${prefix}admin`, roles: ['admin'] });
      const disabled = await t.createUser({ username: `${prefix}off` });
      const earlyLogin = (await t.signIn(early.username, early.password)).user as unknown as UserBody;
      assert.ok(earlyLogin.last_login_at);
      // The second sign-in must land on a later millisecond than the first.
      while (Date.now() <= Date.parse(earlyLogin.last_login_at)) await sleep(1);
      const lateLogin = (await t.signIn(late.username, late.password)).user as unknown as UserBody;
      assert.ok(lateLogin.last_login_at && lateLogin.last_login_at > earlyLogin.last_login_at);
      const patched = await call(t, 'PATCH', `/v1/users/${disabled.id}`, t.adminBasic, { status: 'disabled' });
      assert.equal(patched.statusCode, 200, patched.body);

      assert.deepEqual(await idsMatching(t, { q: prefix, status: 'disabled' }), [disabled.id]);
      assert.deepEqual(await idsMatching(t, { q: prefix, status: 'active' }), [early.id, late.id, never.id, admin.id]);
      assert.deepEqual(await idsMatching(t, { q: prefix, role: 'admin' }), [admin.id]);
      assert.deepEqual(await idsMatching(t, { q: prefix, role: 'user' }), [early.id, late.id, never.id, disabled.id]);
      assert.deepEqual(await idsMatching(t, { q: prefix, never_logged_in: 'true' }), [never.id, admin.id, disabled.id]);
      assert.deepEqual(await idsMatching(t, { q: prefix, never_logged_in: 'true', status: 'active' }), [never.id, admin.id]);
      assert.deepEqual(await idsMatching(t, { q: prefix, last_login_after: earlyLogin.last_login_at }), [late.id]);
      assert.deepEqual(await idsMatching(t, { q: prefix, last_login_before: lateLogin.last_login_at }), [early.id]);
      // The same instant written with another offset is the same instant.
      assert.deepEqual(await idsMatching(t, { q: prefix, last_login_after: withOffset(earlyLogin.last_login_at) }), [late.id]);
      assert.deepEqual(await idsMatching(t, { q: prefix, last_login_after: '2000-01-01T00:00:00.000Z', sort: '-last_login_at' }), [
        late.id,
        early.id,
      ]);
      const invalid = await call(t, 'GET', '/v1/users?last_login_before=yesterday', t.adminBasic);
      assertProblem(invalid, 400, 'invalid_request', 'last_login_before');
    });

    test('an invalid cursor, or one from another sort, is 400 on cursor', async () => {
      const prefix = `${uniqueName('cur')}-`;
      for (const suffix of ['a', 'b']) await t.createUser({ username: `${prefix}${suffix}` });
      const { next_cursor } = await listUsers(t, { q: prefix, limit: '1' });
      assert.ok(next_cursor);
      for (const query of [`cursor=not-a-cursor&q=${prefix}`, `cursor=${next_cursor}&q=${prefix}&sort=-username`]) {
        assertProblem(await call(t, 'GET', `/v1/users?${query}`, t.adminBasic), 400, 'invalid_request', 'cursor');
      }
    });

    test('an unknown sort or status is 400', async () => {
      assertProblem(await call(t, 'GET', '/v1/users?sort=password', t.adminBasic), 400, 'invalid_request', 'sort');
      assertProblem(await call(t, 'GET', '/v1/users?status=deleted', t.adminBasic), 400, 'invalid_request', 'status');
    });
  });

  describe(`GET /v1/users/{id}/logins on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('lists sign-ins newest first: JSON is "password", a Basic header without body is "basic", failures too', async () => {
      const user = await t.createUser();
      assert.equal((await signInWith(t, user.username, user.password, 'agent-one')).statusCode, 201);
      assertUnauthorized(await signInWith(t, user.username, 'wrong-password-here', 'agent-two'));
      const basicSignIn = await t.app.inject({
        method: 'POST',
        url: '/v1/sessions',
        headers: { authorization: t.basic(user.username, user.password), 'user-agent': 'agent-three' },
      });
      assert.equal(basicSignIn.statusCode, 201, basicSignIn.body);

      const { items, next_cursor } = await logins(t, user.id);
      assert.equal(next_cursor, null);
      for (const item of items) {
        assert.deepEqual(Object.keys(item).sort(), ['at', 'ip', 'method', 'success', 'user_agent']);
        assert.match(item.at, RFC3339_MILLIS);
        assert.equal(typeof item.ip, 'string');
      }
      assert.deepEqual(
        items.map(({ success, method, user_agent }) => ({ success, method, user_agent })),
        [
          { success: true, method: 'basic', user_agent: 'agent-three' },
          { success: false, method: 'password', user_agent: 'agent-two' },
          { success: true, method: 'password', user_agent: 'agent-one' },
        ],
      );
      const times = items.map((item) => item.at);
      assert.deepEqual(times, [...times].sort().reverse());
    });

    test('the user reads its own history', async () => {
      const user = await t.createUser();
      const { access_token } = await t.signIn(user.username, user.password);
      const own = await logins(t, user.id, bearer(access_token));
      assert.equal(own.items.length, 1);
      assert.equal(own.items[0]?.success, true);
    });

    test('an ordinary Basic request is not a sign-in', async () => {
      const user = await t.createUser();
      assert.equal((await call(t, 'GET', '/v1/users/me', t.basic(user.username, user.password))).statusCode, 200);
      assert.deepEqual((await logins(t, user.id)).items, []);
      assert.equal((await readUser(t, user.id)).last_login_at, null);
    });

    test('pages with limit and next_cursor, ending with next_cursor null', async () => {
      const user = await t.createUser();
      for (let i = 0; i < 5; i++) assert.equal((await signInWith(t, user.username, user.password, `agent-${i}`)).statusCode, 201);
      const pages: LoginBody[][] = [];
      let query = '?limit=2';
      for (;;) {
        const page = await logins(t, user.id, t.adminBasic, query);
        pages.push(page.items);
        if (page.next_cursor === null) break;
        assert.ok(pages.length < 10, 'pagination ends');
        query = `?limit=2&cursor=${encodeURIComponent(page.next_cursor)}`;
      }
      assert.deepEqual(
        pages.map((page) => page.length),
        [2, 2, 1],
      );
      assert.deepEqual(
        pages.flat().map((item) => item.user_agent),
        ['agent-4', 'agent-3', 'agent-2', 'agent-1', 'agent-0'],
      );
      const exact = await logins(t, user.id, t.adminBasic, '?limit=5');
      assert.equal(exact.items.length, 5);
      assert.equal(exact.next_cursor, null, 'no next_cursor when the page holds the last event');
      assertProblem(await call(t, 'GET', `/v1/users/${user.id}/logins?limit=0`, t.adminBasic), 400, 'invalid_request', 'limit');
      assertProblem(await call(t, 'GET', `/v1/users/${user.id}/logins?cursor=bogus`, t.adminBasic), 400, 'invalid_request', 'cursor');
    });

    test("a non-admin gets 404 for another user's history", async () => {
      const caller = await t.createUser();
      const other = await t.createUser();
      await t.signIn(other.username, other.password);
      const authorization = t.basic(caller.username, caller.password);
      const existing = assertProblem(await call(t, 'GET', `/v1/users/${other.id}/logins`, authorization), 404, 'not_found');
      const missing = assertProblem(
        await call(t, 'GET', '/v1/users/00000000-0000-7000-8000-000000000000/logins', authorization),
        404,
        'not_found',
      );
      assert.deepEqual(withoutRequestId(existing), withoutRequestId(missing));
    });
  });
}
