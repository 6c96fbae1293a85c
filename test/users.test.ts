// The /v1/users part of the contract (API.md "Users"): create, sign-up, read, change, delete, as a
// client sees it: statuses, problem codes, field errors, headers and bodies. On SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN, bearer, buildTestApp, type TestApp, uniqueName } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import {
  assertProblem,
  assertUnauthorized,
  assertUserRepresentation,
  call,
  idsMatching,
  listUsers,
  newUserBody,
  RFC3339_MILLIS,
  readUser,
  withoutRequestId,
} from './helpers/users.js';

for (const { target, skip } of await targets()) {
  describe(`POST /v1/users on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('an admin creates a user: 201, a Location header and the user without any password field', async () => {
      const body = newUserBody({ display_name: 'Ada Lovelace' });
      const response = await call(t, 'POST', '/v1/users', t.adminBasic, body);
      assert.equal(response.statusCode, 201, response.body);
      assert.match(String(response.headers['content-type']), /^application\/json/);
      const user = response.json();
      assertUserRepresentation(user);
      assert.equal(response.headers.location, `/v1/users/${user.id}`);
      assert.equal(user.username, body.username);
      assert.equal(user.email, body.email);
      assert.equal(user.display_name, 'Ada Lovelace');
      assert.deepEqual(user.roles, ['user']);
      assert.equal(user.status, 'active');
      assert.match(user.created_at, RFC3339_MILLIS);
      assert.match(user.updated_at, RFC3339_MILLIS);
      assert.equal(user.last_login_at, null);
      assert.ok(!response.body.includes(body.password), 'the password is never echoed');
      assert.ok(!/password|hash/i.test(response.body), 'no password or hash field');
      const located = await call(t, 'GET', String(response.headers.location), t.adminBasic);
      assert.equal(located.statusCode, 200, located.body);
      assert.deepEqual(located.json(), user);
    });

    test('the username is lower-cased, and the user signs in with the lower-cased name', async () => {
      const lower = uniqueName('alice');
      const mixed = `Al${lower.slice(2).toUpperCase()}`;
      const body = newUserBody({ username: mixed, email: `${lower}@example.com` });
      const response = await call(t, 'POST', '/v1/users', t.adminBasic, body);
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json().username, lower);
      const pair = await t.signIn(lower, body.password);
      assert.equal(pair.user.id, response.json().id);
    });

    test('a username that is too short, too long or has other characters than a-z 0-9 . _ - is 400 on username', async () => {
      for (const username of ['ab', 'a'.repeat(33), 'has space', 'bad!chars', 'slash/name', 'émile']) {
        const response = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ username }));
        assertProblem(response, 400, 'invalid_request', 'username');
      }
    });

    test('usernames of exactly 3 and 32 allowed characters are accepted', async () => {
      const name = uniqueName('edge').replace(/[^a-z0-9]/g, '');
      for (const username of [`a.${name}`.slice(0, 3), `${name}._-`.padEnd(32, 'z')]) {
        const response = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ username }));
        assert.equal(response.statusCode, 201, `${username}: ${response.body}`);
        assert.equal(response.json().username, username);
      }
    });

    test('an invalid email is 400 on email', async () => {
      for (const email of ['not-an-email', 'missing-domain@', '@example.com', 'two words@example.com', 'two@@example.com']) {
        const response = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ email }));
        assertProblem(response, 400, 'invalid_request', 'email');
      }
    });

    test('a missing password is 400 on password', async () => {
      const { password: _omitted, ...body } = newUserBody();
      const response = await call(t, 'POST', '/v1/users', t.adminBasic, body);
      assertProblem(response, 400, 'invalid_request', 'password');
    });

    test('a password of 11 code points, or 129, is 422 weak_password', async () => {
      for (const password of ['k7#Vq9!mZ2p', 'k7#Vq9!mZ2pX'.repeat(11).slice(0, 129)]) {
        const response = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ password }));
        assertProblem(response, 422, 'weak_password', 'password');
      }
    });

    test('password length counts code points: 12 emoji are accepted and sign in, 11 are not', async () => {
      const eleven = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ password: '🔐'.repeat(11) }));
      assertProblem(eleven, 422, 'weak_password', 'password');
      const body = newUserBody({ password: '🔐'.repeat(12) });
      const twelve = await call(t, 'POST', '/v1/users', t.adminBasic, body);
      assert.equal(twelve.statusCode, 201, twelve.body);
      const pair = await t.signIn(body.username, body.password);
      assert.equal(pair.user.id, twelve.json().id);
    });

    test('password length counts code points: 128 emoji are accepted, 129 are not', async () => {
      const accepted = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ password: '🗝'.repeat(128) }));
      assert.equal(accepted.statusCode, 201, accepted.body);
      const rejected = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ password: '🗝'.repeat(129) }));
      assertProblem(rejected, 422, 'weak_password', 'password');
    });

    test('a common password is 422 weak_password', async () => {
      for (const password of ['123qweasdzxc', 'password1234']) {
        const response = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ password }));
        assertProblem(response, 422, 'weak_password', 'password');
      }
    });

    test('a password equal to the username is 422 weak_password', async () => {
      const username = uniqueName('samepassword');
      const response = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ username, password: username }));
      assertProblem(response, 422, 'weak_password', 'password');
    });

    test('an unknown field is 400 on that field and creates nothing', async () => {
      const body = newUserBody({ is_admin: true });
      const response = await call(t, 'POST', '/v1/users', t.adminBasic, body);
      assertProblem(response, 400, 'invalid_request', 'is_admin');
      assert.deepEqual(await idsMatching(t, { q: String(body.username) }), []);
    });

    test('an admin may give roles: the new admin can list users', async () => {
      const body = newUserBody({ roles: ['admin'] });
      const response = await call(t, 'POST', '/v1/users', t.adminBasic, body);
      assert.equal(response.statusCode, 201, response.body);
      assert.deepEqual(response.json().roles, ['admin']);
      const list = await call(t, 'GET', '/v1/users', t.basic(String(body.username), String(body.password)));
      assert.equal(list.statusCode, 200, list.body);
    });

    test('a taken username is 409 username_taken, whatever its case', async () => {
      const existing = await t.createUser();
      for (const username of [existing.username, existing.username.toUpperCase()]) {
        const response = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ username }));
        assertProblem(response, 409, 'username_taken');
      }
    });

    test('a taken email is 409 email_taken, whatever its case', async () => {
      const name = uniqueName('alice');
      await t.createUser({ username: name, email: `${name}@example.com` });
      for (const email of [`${name}@example.com`, `${name.toUpperCase()}@EXAMPLE.COM`]) {
        const response = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ email }));
        assertProblem(response, 409, 'email_taken');
      }
    });

    test('an anonymous caller gets 401 with WWW-Authenticate while open sign-up is off, and nothing is created', async () => {
      const body = newUserBody();
      const response = await call(t, 'POST', '/v1/users', undefined, body);
      assertUnauthorized(response);
      assert.deepEqual(await idsMatching(t, { q: String(body.username) }), []);
    });

    test('wrong credentials are 401', async () => {
      const response = await call(t, 'POST', '/v1/users', t.basic(ADMIN.username, 'not-the-admin-password'), newUserBody());
      assertUnauthorized(response);
    });

    test('a non-admin caller gets 403 forbidden while open sign-up is off, and nothing is created', async () => {
      const caller = await t.createUser();
      const body = newUserBody();
      const response = await call(t, 'POST', '/v1/users', t.basic(caller.username, caller.password), body);
      assertProblem(response, 403, 'forbidden');
      assert.deepEqual(await idsMatching(t, { q: String(body.username) }), []);
    });

    test('20 parallel creations of one username give one 201, nineteen 409 username_taken and one row', async () => {
      const username = uniqueName('race');
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          call(t, 'POST', '/v1/users', t.adminBasic, {
            username,
            email: `${username}.${i}@example.com`,
            password: `pw-${username}-long-enough`,
          }),
        ),
      );
      const created = responses.filter((response) => response.statusCode === 201);
      const conflicts = responses.filter((response) => response.statusCode === 409);
      assert.equal(created.length, 1, responses.map((response) => response.statusCode).join(','));
      assert.equal(conflicts.length, 19);
      for (const response of conflicts) assertProblem(response, 409, 'username_taken');
      const rows = (await listUsers(t, { q: username, limit: '100' })).items;
      assert.deepEqual(
        rows.map((user) => user.id),
        [created[0]?.json().id],
      );
    });
  });

  describe(`POST /v1/users with open sign-up on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target, { openSignup: true });
    });
    after(async () => t?.close());

    test('an anonymous caller creates a user with roles ["user"] who then signs in', async () => {
      const body = newUserBody();
      const response = await call(t, 'POST', '/v1/users', undefined, body);
      assert.equal(response.statusCode, 201, response.body);
      const user = response.json();
      assertUserRepresentation(user);
      assert.equal(response.headers.location, `/v1/users/${user.id}`);
      assert.deepEqual(user.roles, ['user']);
      const pair = await t.signIn(String(body.username), String(body.password));
      assert.equal(pair.user.id, user.id);
    });

    test('an anonymous caller that sends roles gets 400 on roles, and nothing is created', async () => {
      const body = newUserBody({ roles: ['admin'] });
      const response = await call(t, 'POST', '/v1/users', undefined, body);
      assertProblem(response, 400, 'invalid_request', 'roles');
      assert.deepEqual(await idsMatching(t, { q: String(body.username) }), []);
    });

    test('a signed-in non-admin that sends roles gets 400 on roles, and nothing is created', async () => {
      const caller = await t.createUser();
      const body = newUserBody({ roles: ['user'] });
      const response = await call(t, 'POST', '/v1/users', t.basic(caller.username, caller.password), body);
      assertProblem(response, 400, 'invalid_request', 'roles');
      assert.deepEqual(await idsMatching(t, { q: String(body.username) }), []);
    });

    test('the password policy applies to sign-ups too', async () => {
      const response = await call(t, 'POST', '/v1/users', undefined, newUserBody({ password: 'password1234' }));
      assertProblem(response, 422, 'weak_password', 'password');
    });

    test('an admin still gives roles', async () => {
      const response = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ roles: ['admin', 'user'] }));
      assert.equal(response.statusCode, 201, response.body);
      assert.deepEqual([...response.json().roles].sort(), ['admin', 'user']);
    });

    test('ASVS 2.2.1: an anonymous sign-up with a taken username or email looks created but changes nothing', async () => {
      const existing = await t.createUser();
      const takenUsername = newUserBody({ username: existing.username.toUpperCase() });
      const takenEmail = newUserBody({ email: existing.email });
      const fresh = newUserBody();
      const responses = await Promise.all([takenUsername, takenEmail, fresh].map((body) => call(t, 'POST', '/v1/users', undefined, body)));
      for (const response of responses) {
        assert.equal(response.statusCode, 201, response.body);
        assertUserRepresentation(response.json());
        assert.equal(response.headers.location, `/v1/users/${response.json().id}`);
      }
      // Only the fresh one exists; the existing account is untouched and keeps its password.
      assert.deepEqual(await idsMatching(t, { q: existing.username }), [existing.id]);
      assert.equal((await readUser(t, existing.id)).email, existing.email);
      assert.equal((await call(t, 'GET', `/v1/users/${responses[0]?.json().id}`, t.adminBasic)).statusCode, 404);
      assert.equal((await call(t, 'GET', `/v1/users/${responses[1]?.json().id}`, t.adminBasic)).statusCode, 404);
      assert.equal((await call(t, 'GET', `/v1/users/${responses[2]?.json().id}`, t.adminBasic)).statusCode, 200);
      await t.signIn(existing.username, existing.password);
      const impostor = await call(t, 'POST', '/v1/sessions', undefined, { username: existing.username, password: takenUsername.password });
      assertUnauthorized(impostor);
    });

    test('an admin still learns that a username is taken (409)', async () => {
      const existing = await t.createUser();
      const response = await call(t, 'POST', '/v1/users', t.adminBasic, newUserBody({ username: existing.username }));
      assertProblem(response, 409, 'username_taken');
    });
  });

  describe(`GET /v1/users/{id} and /v1/users/me on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('an admin reads any user', async () => {
      const user = await t.createUser({ display_name: 'Grace' });
      const response = await call(t, 'GET', `/v1/users/${user.id}`, t.adminBasic);
      assert.equal(response.statusCode, 200, response.body);
      assertUserRepresentation(response.json());
      assert.equal(response.json().username, user.username);
      assert.equal(response.json().display_name, 'Grace');
    });

    test('a user reads itself with Basic and with Bearer', async () => {
      const user = await t.createUser();
      const { access_token } = await t.signIn(user.username, user.password);
      for (const authorization of [t.basic(user.username, user.password), bearer(access_token)]) {
        const response = await call(t, 'GET', `/v1/users/${user.id}`, authorization);
        assert.equal(response.statusCode, 200, response.body);
        assert.equal(response.json().id, user.id);
      }
    });

    test("a non-admin gets the same 404 for another user's id as for an id that does not exist", async () => {
      const caller = await t.createUser();
      const other = await t.createUser();
      const authorization = t.basic(caller.username, caller.password);
      const existing = assertProblem(await call(t, 'GET', `/v1/users/${other.id}`, authorization), 404, 'not_found');
      const missing = assertProblem(
        await call(t, 'GET', '/v1/users/00000000-0000-7000-8000-000000000000', authorization),
        404,
        'not_found',
      );
      assert.deepEqual(withoutRequestId(existing), withoutRequestId(missing));
    });

    test('an admin gets 404 for an id that does not exist', async () => {
      assertProblem(await call(t, 'GET', '/v1/users/00000000-0000-7000-8000-000000000000', t.adminBasic), 404, 'not_found');
    });

    test('an anonymous caller gets 401', async () => {
      const user = await t.createUser();
      assertUnauthorized(await call(t, 'GET', `/v1/users/${user.id}`));
      assertUnauthorized(await call(t, 'GET', '/v1/users/me'));
    });

    test('GET /v1/users/me returns the caller, with Basic and with Bearer', async () => {
      const user = await t.createUser();
      const { access_token } = await t.signIn(user.username, user.password);
      for (const authorization of [t.basic(user.username, user.password), bearer(access_token)]) {
        const response = await call(t, 'GET', '/v1/users/me', authorization);
        assert.equal(response.statusCode, 200, response.body);
        assertUserRepresentation(response.json());
        assert.equal(response.json().id, user.id);
      }
      const admin = await call(t, 'GET', '/v1/users/me', t.adminBasic);
      assert.equal(admin.json().username, ADMIN.username);
    });
  });

  describe(`PATCH /v1/users/{id} on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('a user changes its own email and display_name', async () => {
      const user = await t.createUser();
      const email = `${uniqueName('moved')}@example.org`;
      const response = await call(t, 'PATCH', `/v1/users/${user.id}`, t.basic(user.username, user.password), {
        email,
        display_name: 'New Name',
      });
      assert.equal(response.statusCode, 200, response.body);
      assertUserRepresentation(response.json());
      assert.equal(response.json().email, email);
      assert.equal(response.json().display_name, 'New Name');
      const reread = await readUser(t, user.id);
      assert.equal(reread.email, email);
      assert.equal(reread.display_name, 'New Name');
    });

    test('a user that sends roles or status gets 400 on that field, and nothing changes', async () => {
      const user = await t.createUser({ display_name: 'Before' });
      const before = await readUser(t, user.id);
      const { access_token } = await t.signIn(user.username, user.password);
      const attempts: [Record<string, unknown>, string][] = [
        [{ roles: ['admin'] }, 'roles'],
        [{ display_name: 'After', roles: ['admin', 'user'] }, 'roles'],
        [{ status: 'disabled' }, 'status'],
        [{ email: `${uniqueName('sneaky')}@example.com`, status: 'active' }, 'status'],
      ];
      for (const [body, field] of attempts) {
        const response = await call(t, 'PATCH', `/v1/users/${user.id}`, bearer(access_token), body);
        assertProblem(response, 400, 'invalid_request', field);
      }
      const after = await readUser(t, user.id);
      assert.deepEqual({ ...after, last_login_at: null, last_seen_at: null }, { ...before, last_login_at: null, last_seen_at: null });
    });

    test('an unknown field is 400 on that field, and nothing changes', async () => {
      const user = await t.createUser({ display_name: 'Before' });
      for (const authorization of [t.adminBasic, t.basic(user.username, user.password)]) {
        const response = await call(t, 'PATCH', `/v1/users/${user.id}`, authorization, { display_name: 'After', password: 'x' });
        assertProblem(response, 400, 'invalid_request', 'password');
      }
      assert.equal((await readUser(t, user.id)).display_name, 'Before');
    });

    test('an invalid email is 400 on email, and nothing changes', async () => {
      const user = await t.createUser();
      const response = await call(t, 'PATCH', `/v1/users/${user.id}`, t.adminBasic, { email: 'nope', display_name: 'Changed' });
      assertProblem(response, 400, 'invalid_request', 'email');
      const reread = await readUser(t, user.id);
      assert.equal(reread.email, user.email);
      assert.equal(reread.display_name, null);
    });

    test('an admin changes roles and status', async () => {
      const user = await t.createUser();
      const promoted = await call(t, 'PATCH', `/v1/users/${user.id}`, t.adminBasic, { roles: ['admin', 'user'] });
      assert.equal(promoted.statusCode, 200, promoted.body);
      assert.deepEqual([...promoted.json().roles].sort(), ['admin', 'user']);
      assert.equal((await call(t, 'GET', '/v1/users', t.basic(user.username, user.password))).statusCode, 200);
      const disabled = await call(t, 'PATCH', `/v1/users/${user.id}`, t.adminBasic, { roles: ['user'], status: 'disabled' });
      assert.equal(disabled.statusCode, 200, disabled.body);
      assert.deepEqual(disabled.json().roles, ['user']);
      assert.equal(disabled.json().status, 'disabled');
      const reread = await readUser(t, user.id);
      assert.deepEqual(reread.roles, ['user']);
      assert.equal(reread.status, 'disabled');
    });

    test("a demoted admin's token loses admin rights at once", async () => {
      const user = await t.createUser({ roles: ['admin', 'user'] });
      const { access_token } = await t.signIn(user.username, user.password);
      assert.equal((await call(t, 'GET', '/v1/users', bearer(access_token))).statusCode, 200);
      const demoted = await call(t, 'PATCH', `/v1/users/${user.id}`, t.adminBasic, { roles: ['user'] });
      assert.equal(demoted.statusCode, 200, demoted.body);
      assertProblem(await call(t, 'GET', '/v1/users', bearer(access_token)), 403, 'forbidden');
    });

    test("another account's email, in any case, is 409 email_taken and nothing changes", async () => {
      const user = await t.createUser();
      const other = await t.createUser();
      for (const [authorization, email] of [
        [t.basic(user.username, user.password), other.email],
        [t.adminBasic, other.email.toUpperCase()],
      ] as const) {
        const response = await call(t, 'PATCH', `/v1/users/${user.id}`, authorization, { email, display_name: 'Changed' });
        assertProblem(response, 409, 'email_taken');
      }
      const reread = await readUser(t, user.id);
      assert.equal(reread.email, user.email);
      assert.equal(reread.display_name, null);
    });

    test('disabling a user makes its token fail at once, and re-enabling does not revive it', async () => {
      const user = await t.createUser();
      const { access_token, refresh_token } = await t.signIn(user.username, user.password);
      assert.equal((await call(t, 'GET', '/v1/users/me', bearer(access_token))).statusCode, 200);
      const disabled = await call(t, 'PATCH', `/v1/users/${user.id}`, t.adminBasic, { status: 'disabled' });
      assert.equal(disabled.statusCode, 200, disabled.body);
      assertUnauthorized(await call(t, 'GET', '/v1/users/me', bearer(access_token)));
      assertUnauthorized(await call(t, 'GET', '/v1/users/me', t.basic(user.username, user.password)));
      assertUnauthorized(await call(t, 'POST', '/v1/sessions', undefined, { username: user.username, password: user.password }));

      const enabled = await call(t, 'PATCH', `/v1/users/${user.id}`, t.adminBasic, { status: 'active' });
      assert.equal(enabled.statusCode, 200, enabled.body);
      assertUnauthorized(await call(t, 'GET', '/v1/users/me', bearer(access_token)));
      assertUnauthorized(await call(t, 'POST', '/v1/sessions/refresh', undefined, { refresh_token }));
      const fresh = await t.signIn(user.username, user.password);
      assert.equal((await call(t, 'GET', '/v1/users/me', bearer(fresh.access_token))).statusCode, 200);
    });

    test('a non-admin gets 404 for changing another user or an id that does not exist, and nothing changes', async () => {
      const caller = await t.createUser();
      const other = await t.createUser();
      const authorization = t.basic(caller.username, caller.password);
      for (const id of [other.id, '00000000-0000-7000-8000-000000000000']) {
        assertProblem(await call(t, 'PATCH', `/v1/users/${id}`, authorization, { display_name: 'Hijacked' }), 404, 'not_found');
      }
      assert.equal((await readUser(t, other.id)).display_name, null);
    });

    test('an admin gets 404 for an id that does not exist', async () => {
      const response = await call(t, 'PATCH', '/v1/users/00000000-0000-7000-8000-000000000000', t.adminBasic, { display_name: 'x' });
      assertProblem(response, 404, 'not_found');
    });
  });

  describe(`DELETE /v1/users/{id} on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('an admin deletes a user: 204, then GET is 404 and a second DELETE is 404', async () => {
      const user = await t.createUser();
      const response = await call(t, 'DELETE', `/v1/users/${user.id}`, t.adminBasic);
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');
      assertProblem(await call(t, 'GET', `/v1/users/${user.id}`, t.adminBasic), 404, 'not_found');
      assertProblem(await call(t, 'DELETE', `/v1/users/${user.id}`, t.adminBasic), 404, 'not_found');
      assert.deepEqual(await idsMatching(t, { q: user.username }), []);
    });

    test("the deleted user's tokens and password stop working", async () => {
      const user = await t.createUser();
      const { access_token, refresh_token } = await t.signIn(user.username, user.password);
      assert.equal((await call(t, 'DELETE', `/v1/users/${user.id}`, t.adminBasic)).statusCode, 204);
      assertUnauthorized(await call(t, 'GET', '/v1/users/me', bearer(access_token)));
      assertUnauthorized(await call(t, 'GET', '/v1/users/me', t.basic(user.username, user.password)));
      assertUnauthorized(await call(t, 'POST', '/v1/sessions/refresh', undefined, { refresh_token }));
    });

    test('a non-admin gets 403, an anonymous caller 401, and the user stays', async () => {
      const caller = await t.createUser();
      const target = await t.createUser();
      assertProblem(await call(t, 'DELETE', `/v1/users/${target.id}`, t.basic(caller.username, caller.password)), 403, 'forbidden');
      assertProblem(await call(t, 'DELETE', `/v1/users/${caller.id}`, t.basic(caller.username, caller.password)), 403, 'forbidden');
      assertUnauthorized(await call(t, 'DELETE', `/v1/users/${target.id}`));
      await readUser(t, target.id);
      await readUser(t, caller.id);
    });
  });
}
