// The last active admin, and changing one's own password, on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { ADMIN, bearer, buildTestApp, type TestApp, uniqueName } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import { assertProblem, assertUnauthorized, call, newUserBody, type UserBody } from './helpers/users.js';

for (const { target, skip } of await targets()) {
  describe(`the last active admin on ${target}`, { skip }, () => {
    // Each test needs an app whose only admin is the bootstrap admin, so each builds its own.
    let t: TestApp;
    let rootId: string;
    beforeEach(async () => {
      t = await buildTestApp(target);
      rootId = (await call(t, 'GET', '/v1/users/me', t.adminBasic)).json().id;
    });
    afterEach(async () => t?.close());

    async function assertRootIsActiveAdmin() {
      const root = await call(t, 'GET', '/v1/users/me', t.adminBasic);
      assert.equal(root.statusCode, 200, root.body);
      assert.equal(root.json().status, 'active');
      assert.ok(root.json().roles.includes('admin'));
    }

    test('cannot be deleted, disabled or demoted: 409 last_admin', async () => {
      assertProblem(await call(t, 'DELETE', `/v1/users/${rootId}`, t.adminBasic), 409, 'last_admin');
      assertProblem(await call(t, 'PATCH', `/v1/users/${rootId}`, t.adminBasic, { status: 'disabled' }), 409, 'last_admin');
      assertProblem(await call(t, 'PATCH', `/v1/users/${rootId}`, t.adminBasic, { roles: ['user'] }), 409, 'last_admin');
      await assertRootIsActiveAdmin();
    });

    test('a disabled second admin does not count', async () => {
      const second = await t.createUser({ roles: ['admin'] });
      assert.equal((await call(t, 'PATCH', `/v1/users/${second.id}`, t.adminBasic, { status: 'disabled' })).statusCode, 200);
      assertProblem(await call(t, 'PATCH', `/v1/users/${rootId}`, t.adminBasic, { status: 'disabled' }), 409, 'last_admin');
      assertProblem(await call(t, 'DELETE', `/v1/users/${rootId}`, t.adminBasic), 409, 'last_admin');
      await assertRootIsActiveAdmin();
    });

    test('with a second active admin it can be demoted', async () => {
      await t.createUser({ roles: ['admin'] });
      const response = await call(t, 'PATCH', `/v1/users/${rootId}`, t.adminBasic, { roles: ['user'] });
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json().roles, ['user']);
      assertProblem(await call(t, 'GET', '/v1/users', t.adminBasic), 403, 'forbidden');
    });

    test('with a second active admin it can be disabled', async () => {
      const second = await t.createUser({ roles: ['admin'] });
      const response = await call(t, 'PATCH', `/v1/users/${rootId}`, t.adminBasic, { status: 'disabled' });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.json().status, 'disabled');
      assertUnauthorized(await call(t, 'GET', '/v1/users/me', t.adminBasic));
      assert.equal((await call(t, 'GET', `/v1/users/${rootId}`, t.basic(second.username, second.password))).json().status, 'disabled');
    });

    test('with a second active admin it can be deleted', async () => {
      const second = await t.createUser({ roles: ['admin'] });
      assert.equal((await call(t, 'DELETE', `/v1/users/${rootId}`, t.adminBasic)).statusCode, 204);
      assertProblem(await call(t, 'GET', `/v1/users/${rootId}`, t.basic(second.username, second.password)), 404, 'not_found');
    });

    test('two admins disabling each other at once leave exactly one active admin', async () => {
      // Several rounds, with Bearer callers (no password hashing before the race), to give a
      // missing lock on the admin rows every chance to show.
      const credentials = new Map([[rootId, { username: ADMIN.username, password: ADMIN.password }]]);
      let survivor = rootId;
      for (let round = 0; round < 8; round++) {
        const first = credentials.get(survivor);
        assert.ok(first);
        const second = await call(t, 'POST', '/v1/users', t.basic(first.username, first.password), newUserBody({ roles: ['admin'] }));
        assert.equal(second.statusCode, 201, second.body);
        const secondUser = second.json() as UserBody;
        credentials.set(secondUser.id, { username: secondUser.username, password: `pw-${secondUser.username}-long-enough` });
        const [firstToken, secondToken] = await Promise.all(
          [survivor, secondUser.id].map(async (id) => {
            const { username, password } = credentials.get(id) ?? assert.fail('no credentials');
            return (await t.signIn(username, password)).access_token;
          }),
        );
        const responses = await Promise.all([
          call(t, 'PATCH', `/v1/users/${survivor}`, bearer(secondToken ?? ''), { status: 'disabled' }),
          call(t, 'PATCH', `/v1/users/${secondUser.id}`, bearer(firstToken ?? ''), { status: 'disabled' }),
        ]);
        const statuses = responses.map((response) => response.statusCode);
        assert.equal(statuses.filter((status) => status === 200).length, 1, responses.map((response) => response.body).join('\n'));
        for (const response of responses)
          if (response.statusCode !== 200) assert.ok([401, 409].includes(response.statusCode), response.body);
        const active = await t.services.database.db
          .selectFrom('users')
          .select('id')
          .where('status', '=', 'active')
          .where('roles', 'like', '%admin%')
          .execute();
        assert.equal(active.length, 1, `round ${round}`);
        survivor = active[0]?.id ?? '';
      }
    });
  });

  describe(`PUT /v1/users/me/password on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    const newPassword = () => `fresh-${uniqueName('pw')}-password`;

    test('a wrong current_password is 400 on current_password, and the password stays', async () => {
      const user = await t.createUser();
      const response = await call(t, 'PUT', '/v1/users/me/password', t.basic(user.username, user.password), {
        current_password: 'not-my-password-at-all',
        new_password: newPassword(),
      });
      assertProblem(response, 400, 'invalid_request', 'current_password');
      await t.signIn(user.username, user.password);
    });

    test('a weak new password is 422 weak_password on new_password, and the password stays', async () => {
      const user = await t.createUser({ username: uniqueName('longusername') });
      for (const new_password of ['too-short', 'password1234', 'x'.repeat(129), user.username]) {
        const response = await call(t, 'PUT', '/v1/users/me/password', t.basic(user.username, user.password), {
          current_password: user.password,
          new_password,
        });
        assertProblem(response, 422, 'weak_password', 'new_password');
      }
      await t.signIn(user.username, user.password);
    });

    test('success is 204: the old password no longer signs in, the new one does', async () => {
      const user = await t.createUser();
      const password = newPassword();
      const response = await call(t, 'PUT', '/v1/users/me/password', t.basic(user.username, user.password), {
        current_password: user.password,
        new_password: password,
      });
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');
      assertUnauthorized(await call(t, 'POST', '/v1/sessions', undefined, { username: user.username, password: user.password }));
      assertUnauthorized(await call(t, 'GET', '/v1/users/me', t.basic(user.username, user.password)));
      await t.signIn(user.username, password);
    });

    test("with Bearer the caller's own session keeps working and every other session ends", async () => {
      const user = await t.createUser();
      const mine = await t.signIn(user.username, user.password);
      const other = await t.signIn(user.username, user.password);
      const response = await call(t, 'PUT', '/v1/users/me/password', bearer(mine.access_token), {
        current_password: user.password,
        new_password: newPassword(),
      });
      assert.equal(response.statusCode, 204, response.body);
      assert.equal((await call(t, 'GET', '/v1/users/me', bearer(mine.access_token))).statusCode, 200);
      assertUnauthorized(await call(t, 'GET', '/v1/users/me', bearer(other.access_token)));
      assertUnauthorized(await call(t, 'POST', '/v1/sessions/refresh', undefined, { refresh_token: other.refresh_token }));
      const refreshed = await call(t, 'POST', '/v1/sessions/refresh', undefined, { refresh_token: mine.refresh_token });
      assert.equal(refreshed.statusCode, 200, refreshed.body);
    });

    test('with Basic every session ends', async () => {
      const user = await t.createUser();
      const first = await t.signIn(user.username, user.password);
      const second = await t.signIn(user.username, user.password);
      const password = newPassword();
      const response = await call(t, 'PUT', '/v1/users/me/password', t.basic(user.username, user.password), {
        current_password: user.password,
        new_password: password,
      });
      assert.equal(response.statusCode, 204, response.body);
      for (const session of [first, second]) assertUnauthorized(await call(t, 'GET', '/v1/users/me', bearer(session.access_token)));
      assert.equal((await call(t, 'GET', '/v1/users/me', t.basic(user.username, password))).statusCode, 200);
    });

    test('an anonymous caller gets 401', async () => {
      assertUnauthorized(await call(t, 'PUT', '/v1/users/me/password', undefined, { current_password: 'a', new_password: newPassword() }));
    });
  });
}
