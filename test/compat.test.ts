// The origin system's /api routes (API.md "Origin-system compatibility"): the origin demo script,
// the origin shapes, and the v1 rules for authentication and validation behind them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { bearer, buildTestApp, problem, type TestApp, uniqueName } from './helpers/app.js';
import { targets } from './helpers/databases.js';

const RFC3339_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ORIGIN_KEYS = ['email', 'id', 'last_login', 'username'];

interface OriginUser {
  id: string;
  username: string;
  email: string;
  last_login: string | null;
}

/** Asserts a problem+json response with the status and code, and returns its body. */
function expectProblem(response: LightMyRequestResponse, status: number, code: string) {
  const body = problem(response);
  assert.equal(response.statusCode, status, response.body);
  assert.match(body.contentType, /^application\/problem\+json/);
  assert.equal(body.code, code);
  assert.equal(response.json().status, status);
  assert.equal(body.request_id, response.headers['x-request-id']);
  return body;
}

function originFields(prefix = 'origin') {
  const username = uniqueName(prefix);
  return { username, email: `${username}@example.com`, password: `pw-${username}-long-enough` };
}

function queryString(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

for (const { target, skip } of await targets()) {
  describe(`origin /api routes on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    const listUsers = async (authorization = t.adminBasic): Promise<OriginUser[]> => {
      const response = await t.app.inject({ url: '/api/users', headers: { authorization } });
      assert.equal(response.statusCode, 200, response.body);
      assert.match(String(response.headers['content-type']), /^application\/json/);
      const users = response.json();
      assert.ok(Array.isArray(users), 'GET /api/users answers a JSON array');
      for (const user of users) assert.deepEqual(Object.keys(user).sort(), ORIGIN_KEYS);
      return users;
    };

    test('runs the origin demo script: list, create two users by query string, sign in with Basic, list again', async () => {
      const before = await listUsers();
      assert.ok(before.some((user) => user.username === 'root'));

      const created: OriginUser[] = [];
      const fields = [originFields('demo'), originFields('demo')];
      for (const one of fields) {
        const response = await t.app.inject({
          method: 'POST',
          url: `/api/users?${queryString(one)}`,
          headers: { authorization: t.adminBasic },
        });
        assert.equal(response.statusCode, 201, response.body);
        const user = response.json();
        assert.deepEqual(Object.keys(user).sort(), ORIGIN_KEYS);
        assert.equal(user.username, one.username);
        assert.equal(user.email, one.email);
        assert.equal(user.last_login, null);
        assert.equal(typeof user.id, 'string');
        created.push(user);
      }
      const [first, second] = created as [OriginUser, OriginUser];
      const [firstFields] = fields as [ReturnType<typeof originFields>];

      const login = await t.app.inject({
        url: '/api/login',
        headers: { authorization: t.basic(firstFields.username, firstFields.password) },
      });
      assert.equal(login.statusCode, 200, login.body);
      const { message, last_login: lastLogin } = login.json();
      assert.match(lastLogin, RFC3339_MS);
      assert.equal(message, `Hello, ${first.username}! Login successful at ${lastLogin}`);

      const after = await listUsers();
      const listedFirst = after.find((user) => user.id === first.id);
      const listedSecond = after.find((user) => user.id === second.id);
      assert.deepEqual(listedFirst, { ...first, last_login: lastLogin });
      assert.deepEqual(listedSecond, { ...second, last_login: null });
      assert.equal(after.length, before.length + 2);
    });

    test('a sign-in through GET /api/login is recorded as a basic login event', async () => {
      const user = await t.createUser();
      const login = await t.app.inject({ url: '/api/login', headers: { authorization: t.basic(user.username, user.password) } });
      assert.equal(login.statusCode, 200, login.body);
      const history = await t.app.inject({ url: `/v1/users/${user.id}/logins`, headers: { authorization: t.adminBasic } });
      assert.equal(history.statusCode, 200, history.body);
      const [latest] = history.json().items;
      assert.equal(latest.success, true);
      assert.equal(latest.method, 'basic');
      const me = await t.app.inject({ url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
      assert.equal(me.json().last_login_at, login.json().last_login);
    });

    test('an ordinary Basic request to /api/users is not a sign-in: it leaves last_login unset', async () => {
      const admin = await t.createUser({ roles: ['admin', 'user'] });
      const listed = await listUsers(t.basic(admin.username, admin.password));
      assert.equal(listed.find((user) => user.id === admin.id)?.last_login, null);
      const stored = await t.app.inject({ url: `/v1/users/${admin.id}`, headers: { authorization: t.adminBasic } });
      assert.equal(stored.json().last_login_at, null);
    });

    test('GET /api/login refuses a disabled user with 401', async () => {
      const user = await t.createUser();
      const disabled = await t.app.inject({
        method: 'PATCH',
        url: `/v1/users/${user.id}`,
        headers: { authorization: t.adminBasic },
        payload: { status: 'disabled' },
      });
      assert.equal(disabled.statusCode, 200, disabled.body);
      const login = await t.app.inject({ url: '/api/login', headers: { authorization: t.basic(user.username, user.password) } });
      expectProblem(login, 401, 'unauthorized');
    });

    test('creates a user from a JSON body, who can then sign in', async () => {
      const fields = originFields('json');
      const response = await t.app.inject({ method: 'POST', url: '/api/users', headers: { authorization: t.adminBasic }, payload: fields });
      assert.equal(response.statusCode, 201, response.body);
      assert.deepEqual(response.json(), { id: response.json().id, username: fields.username, email: fields.email, last_login: null });
      const login = await t.app.inject({ url: '/api/login', headers: { authorization: t.basic(fields.username, fields.password) } });
      assert.equal(login.statusCode, 200, login.body);
    });

    test('creates a user from a form body, who can then sign in', async () => {
      const fields = originFields('form');
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/users',
        headers: { authorization: t.adminBasic, 'content-type': 'application/x-www-form-urlencoded' },
        payload: queryString(fields),
      });
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json().username, fields.username);
      assert.equal(response.json().email, fields.email);
      const login = await t.app.inject({ url: '/api/login', headers: { authorization: t.basic(fields.username, fields.password) } });
      assert.equal(login.statusCode, 200, login.body);
    });

    test('the OpenAPI document describes both the JSON and the form body of POST /api/users', async () => {
      const doc = (await t.app.inject({ url: '/openapi.json' })).json();
      const content = doc.paths['/api/users'].post.requestBody.content;
      for (const mediaType of ['application/json', 'application/x-www-form-urlencoded']) {
        assert.deepEqual(content[mediaType]?.schema?.required?.sort(), ['email', 'password', 'username'], mediaType);
      }
    });

    test('stores usernames and emails lower-cased, as v1 does', async () => {
      const fields = originFields('Mixed');
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/users',
        headers: { authorization: t.adminBasic },
        payload: { ...fields, email: fields.email.toUpperCase() },
      });
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json().username, fields.username.toLowerCase());
      assert.equal(response.json().email, fields.email.toLowerCase());
    });

    test('rejects invalid input with the same problem as POST /v1/users', async () => {
      const valid = originFields('invalid');
      const cases: { name: string; body: Record<string, unknown>; status: number; code: string; field: string }[] = [
        {
          name: 'bad username',
          body: { ...valid, username: 'no spaces allowed' },
          status: 400,
          code: 'invalid_request',
          field: 'username',
        },
        { name: 'short username', body: { ...valid, username: 'ab' }, status: 400, code: 'invalid_request', field: 'username' },
        { name: 'bad email', body: { ...valid, email: 'not-an-email' }, status: 400, code: 'invalid_request', field: 'email' },
        {
          name: 'missing password',
          body: { username: valid.username, email: valid.email },
          status: 400,
          code: 'invalid_request',
          field: 'password',
        },
        { name: 'wrong type', body: { ...valid, username: 42 }, status: 400, code: 'invalid_request', field: 'username' },
        { name: 'unknown field', body: { ...valid, is_admin: true }, status: 400, code: 'invalid_request', field: 'is_admin' },
        { name: 'short password', body: { ...valid, password: 'short' }, status: 422, code: 'weak_password', field: 'password' },
        { name: 'common password', body: { ...valid, password: 'password1234' }, status: 422, code: 'weak_password', field: 'password' },
        {
          name: 'password equal to the username',
          body: { ...valid, username: 'samesame12345', password: 'samesame12345' },
          status: 422,
          code: 'weak_password',
          field: 'password',
        },
      ];
      for (const { name, body, status, code, field } of cases) {
        const compat = await t.app.inject({ method: 'POST', url: '/api/users', headers: { authorization: t.adminBasic }, payload: body });
        const v1 = await t.app.inject({ method: 'POST', url: '/v1/users', headers: { authorization: t.adminBasic }, payload: body });
        const compatProblem = expectProblem(compat, status, code);
        const v1Problem = expectProblem(v1, status, code);
        assert.ok(
          compatProblem.errors?.some((error) => error.field === field),
          `${name}: errors name ${field}: ${compat.body}`,
        );
        assert.deepEqual(compatProblem.errors, v1Problem.errors, name);
      }
      const listed = await t.app.inject({ url: '/api/users', headers: { authorization: t.adminBasic } });
      assert.ok(!listed.json().some((user: OriginUser) => user.username === valid.username || user.username === 'samesame12345'));
    });

    test('rejects invalid query-string input the same way', async () => {
      const missing = await t.app.inject({
        method: 'POST',
        url: `/api/users?${queryString({ username: uniqueName('q') })}`,
        headers: { authorization: t.adminBasic },
      });
      const body = expectProblem(missing, 400, 'invalid_request');
      assert.deepEqual(body.errors?.map((error) => error.field).sort(), ['email', 'password']);
      const weak = await t.app.inject({
        method: 'POST',
        url: `/api/users?${queryString({ ...originFields('q'), password: 'short' })}`,
        headers: { authorization: t.adminBasic },
      });
      expectProblem(weak, 422, 'weak_password');
    });

    test('refuses a taken username (in any case) with 409 username_taken and a taken email with 409 email_taken', async () => {
      const fields = originFields('dup');
      const created = await t.app.inject({ method: 'POST', url: '/api/users', headers: { authorization: t.adminBasic }, payload: fields });
      assert.equal(created.statusCode, 201, created.body);

      const sameName = await t.app.inject({
        method: 'POST',
        url: '/api/users',
        headers: { authorization: t.adminBasic },
        payload: { ...fields, username: fields.username.toUpperCase(), email: `other-${fields.email}` },
      });
      expectProblem(sameName, 409, 'username_taken');

      const sameEmail = await t.app.inject({
        method: 'POST',
        url: `/api/users?${queryString({ ...originFields('dup'), email: fields.email.toUpperCase() })}`,
        headers: { authorization: t.adminBasic },
      });
      expectProblem(sameEmail, 409, 'email_taken');
    });

    test('forbids a signed-in non-admin every admin route with 403', async () => {
      const user = await t.createUser();
      const other = await t.createUser();
      const authorization = t.basic(user.username, user.password);
      expectProblem(await t.app.inject({ url: '/api/users', headers: { authorization } }), 403, 'forbidden');
      expectProblem(
        await t.app.inject({ method: 'POST', url: '/api/users', headers: { authorization }, payload: originFields('byuser') }),
        403,
        'forbidden',
      );
      expectProblem(
        await t.app.inject({
          method: 'PUT',
          url: `/api/users/${other.id}`,
          headers: { authorization },
          payload: { email: `x-${other.email}` },
        }),
        403,
        'forbidden',
      );
      expectProblem(await t.app.inject({ method: 'DELETE', url: `/api/users/${other.id}`, headers: { authorization } }), 403, 'forbidden');

      const unchanged = await t.app.inject({ url: `/v1/users/${other.id}`, headers: { authorization: t.adminBasic } });
      assert.equal(unchanged.statusCode, 200, 'the other user still exists');
      assert.equal(unchanged.json().email, other.email);
    });

    test('answers an anonymous caller 401 with WWW-Authenticate while open sign-up is off', async () => {
      const fields = originFields('anon');
      const created = await t.app.inject({ method: 'POST', url: `/api/users?${queryString(fields)}` });
      expectProblem(created, 401, 'unauthorized');
      assert.match(String(created.headers['www-authenticate']), /Basic realm="gatehouse"/);
      expectProblem(await t.app.inject({ url: '/api/users' }), 401, 'unauthorized');
      const login = await t.app.inject({ url: '/api/login', headers: { authorization: t.basic(fields.username, fields.password) } });
      expectProblem(login, 401, 'unauthorized');
    });

    test('accepts an admin Bearer token as well as Basic', async () => {
      const pair = await t.signIn('root', 'admin-password-for-tests-1');
      const response = await t.app.inject({ url: '/api/users', headers: { authorization: bearer(pair.access_token) } });
      assert.equal(response.statusCode, 200, response.body);
      assert.ok(response.json().some((user: OriginUser) => user.username === 'root'));
    });

    test('never writes the query-string password to the log', async () => {
      const fields = { ...originFields('quiet'), password: `query-secret-${uniqueName('pw')}` };
      const requestId = `compat-log-${uniqueName('r')}`;
      const response = await t.app.inject({
        method: 'POST',
        url: `/api/users?${queryString(fields)}`,
        headers: { authorization: t.adminBasic, 'x-request-id': requestId },
      });
      assert.equal(response.statusCode, 201, response.body);
      // The same password again, now refused as a duplicate: the failure path must not log it either.
      const duplicate = await t.app.inject({
        method: 'POST',
        url: `/api/users?${queryString(fields)}`,
        headers: { authorization: t.adminBasic, 'x-request-id': `${requestId}-dup` },
      });
      assert.equal(duplicate.statusCode, 409, duplicate.body);

      const lines = t.logs.join('').split('\n').filter(Boolean);
      const ofRequest = lines.filter((line) => line.includes(requestId));
      assert.ok(ofRequest.length >= 2, 'the requests were logged (so the check below means something)');
      assert.ok(
        ofRequest.some((line) => line.includes('/api/users')),
        'the logged path is there',
      );
      for (const line of lines) {
        assert.ok(!line.includes(fields.password), `a log line carries the password: ${line}`);
        assert.ok(!line.includes(encodeURIComponent(fields.password)), `a log line carries the encoded password: ${line}`);
      }
    });

    test('GET /api/login answers a wrong password and an unknown user with the same 401', async () => {
      const user = await t.createUser();
      const wrong = await t.app.inject({
        url: '/api/login',
        headers: { authorization: t.basic(user.username, 'not-the-password-at-all') },
      });
      const unknown = await t.app.inject({
        url: '/api/login',
        headers: { authorization: t.basic(uniqueName('ghost'), 'not-the-password-at-all') },
      });
      for (const response of [wrong, unknown]) {
        const body = expectProblem(response, 401, 'unauthorized');
        assert.equal(response.headers['www-authenticate'], 'Basic realm="gatehouse", Bearer realm="gatehouse"');
        assert.ok(!('last_login' in body));
      }
      const { request_id: _a, ...wrongBody } = wrong.json();
      const { request_id: _b, ...unknownBody } = unknown.json();
      assert.deepEqual(wrongBody, unknownBody);

      const stored = await t.app.inject({ url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
      assert.equal(stored.json().last_login_at, null, 'a failed sign-in sets no login time');
    });

    test('GET /api/login accepts only Basic: a valid Bearer token or no credentials is 401', async () => {
      const user = await t.createUser();
      const pair = await t.signIn(user.username, user.password);
      const withBearer = await t.app.inject({ url: '/api/login', headers: { authorization: bearer(pair.access_token) } });
      expectProblem(withBearer, 401, 'unauthorized');
      assert.ok(withBearer.headers['www-authenticate']);
      const anonymous = await t.app.inject({ url: '/api/login' });
      expectProblem(anonymous, 401, 'unauthorized');
      assert.ok(anonymous.headers['www-authenticate']);
    });

    test('PUT /api/users/{id} changes the email like PATCH /v1/users/{id} and answers in the origin shape', async () => {
      const user = await t.createUser();
      const email = `new-${user.email}`;
      const response = await t.app.inject({
        method: 'PUT',
        url: `/api/users/${user.id}`,
        headers: { authorization: t.adminBasic },
        payload: { email },
      });
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), { id: user.id, username: user.username, email, last_login: null });
      const stored = await t.app.inject({ url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
      assert.equal(stored.json().email, email);
    });

    test('PUT /api/users/{id} validates like PATCH: bad email, unknown field, taken email, unknown id', async () => {
      const user = await t.createUser();
      const other = await t.createUser();
      const put = (id: string, payload: Record<string, unknown>) =>
        t.app.inject({ method: 'PUT', url: `/api/users/${id}`, headers: { authorization: t.adminBasic }, payload });
      expectProblem(await put(user.id, { email: 'nope' }), 400, 'invalid_request');
      expectProblem(await put(user.id, { email: `x-${user.email}`, password: 'sneaky-new-password-1' }), 400, 'invalid_request');
      expectProblem(await put(user.id, { email: other.email }), 409, 'email_taken');
      expectProblem(await put('01900000-0000-7000-8000-000000000000', { email: `x-${user.email}` }), 404, 'not_found');
      const stored = await t.app.inject({ url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
      assert.equal(stored.json().email, user.email, 'nothing changed');
    });

    test('DELETE /api/users/{id} answers 204, then 404, and the user can no longer sign in', async () => {
      const user = await t.createUser();
      const deleted = await t.app.inject({ method: 'DELETE', url: `/api/users/${user.id}`, headers: { authorization: t.adminBasic } });
      assert.equal(deleted.statusCode, 204, deleted.body);
      assert.equal(deleted.body, '');
      const again = await t.app.inject({ method: 'DELETE', url: `/api/users/${user.id}`, headers: { authorization: t.adminBasic } });
      expectProblem(again, 404, 'not_found');
      const login = await t.app.inject({ url: '/api/login', headers: { authorization: t.basic(user.username, user.password) } });
      expectProblem(login, 401, 'unauthorized');
      const listed = await listUsers();
      assert.ok(!listed.some((one) => one.id === user.id));
    });
  });

  describe(`origin /api routes with open sign-up on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target, { openSignup: true });
    });
    after(async () => t?.close());

    test('lets an anonymous caller create a plain user, who is not an admin', async () => {
      const fields = originFields('open');
      const response = await t.app.inject({ method: 'POST', url: `/api/users?${queryString(fields)}` });
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json().username, fields.username);
      const login = await t.app.inject({ url: '/api/login', headers: { authorization: t.basic(fields.username, fields.password) } });
      assert.equal(login.statusCode, 200, login.body);
      const list = await t.app.inject({ url: '/api/users', headers: { authorization: t.basic(fields.username, fields.password) } });
      expectProblem(list, 403, 'forbidden');
    });

    test('still answers wrong credentials with 401 rather than treating the caller as anonymous', async () => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/users',
        headers: { authorization: t.basic('root', 'wrong-password-for-root') },
        payload: originFields('open'),
      });
      expectProblem(response, 401, 'unauthorized');
    });
  });
}
