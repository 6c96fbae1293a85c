// The /v1/users part of the contract (API.md "Users"), as a client sees it: statuses, problem codes,
// field errors, headers and bodies. Every suite runs on SQLite and on PostgreSQL.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import { ADMIN, bearer, buildTestApp, problem, type TestApp, type TestUser, uniqueName } from './helpers/app.js';
import { targets } from './helpers/databases.js';

interface UserBody {
  id: string;
  username: string;
  email: string;
  display_name: string | null;
  roles: string[];
  status: string;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
  last_seen_at: string | null;
}

interface LoginBody {
  at: string;
  success: boolean;
  method: string;
  ip: string | null;
  user_agent: string | null;
}

const USER_FIELDS = [
  'created_at',
  'display_name',
  'email',
  'id',
  'last_login_at',
  'last_seen_at',
  'roles',
  'status',
  'updated_at',
  'username',
];
const WWW_AUTHENTICATE = 'Basic realm="gatehouse", Bearer realm="gatehouse"';
const RFC3339_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const SORTS = ['created_at', '-created_at', 'username', '-username', 'last_login_at', '-last_login_at'] as const;

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

function call(t: TestApp, method: Method, url: string, authorization?: string, payload?: Record<string, unknown>) {
  return t.app.inject({ method, url, headers: authorization ? { authorization } : {}, ...(payload === undefined ? {} : { payload }) });
}

/** Asserts a problem+json response with the status and code (and an error on `field`); returns its body. */
function assertProblem(response: LightMyRequestResponse, status: number, code: string, field?: string) {
  assert.equal(response.statusCode, status, response.body);
  const body = problem(response);
  assert.match(body.contentType, /^application\/problem\+json/);
  assert.equal(body.code, code, response.body);
  if (field !== undefined) {
    assert.ok(
      body.errors?.some((error) => error.field === field),
      `expected an error on ${field}: ${response.body}`,
    );
  }
  return body;
}

function assertUnauthorized(response: LightMyRequestResponse) {
  assertProblem(response, 401, 'unauthorized');
  assert.equal(response.headers['www-authenticate'], WWW_AUTHENTICATE);
}

function assertUserRepresentation(body: Record<string, unknown>) {
  assert.deepEqual(Object.keys(body).sort(), USER_FIELDS);
}

async function readUser(t: TestApp, id: string): Promise<UserBody> {
  const response = await call(t, 'GET', `/v1/users/${id}`, t.adminBasic);
  assert.equal(response.statusCode, 200, response.body);
  return response.json();
}

async function listUsers(t: TestApp, query: Record<string, string>): Promise<{ items: UserBody[]; next_cursor: string | null }> {
  const response = await call(t, 'GET', `/v1/users?${new URLSearchParams(query)}`, t.adminBasic);
  assert.equal(response.statusCode, 200, response.body);
  return response.json();
}

async function idsMatching(t: TestApp, query: Record<string, string>): Promise<string[]> {
  return (await listUsers(t, { limit: '100', ...query })).items.map((user) => user.id);
}

/** Follows next_cursor to the end: every page but the last is full, and next_cursor is null only on the last. */
async function walk(t: TestApp, query: Record<string, string>, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 50; page++) {
    const body = await listUsers(t, { ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
    assert.ok(body.items.length <= limit, `a page holds at most ${limit} users`);
    if (cursor !== null) assert.ok(body.items.length > 0, 'a next_cursor leads to more users');
    ids.push(...body.items.map((user) => user.id));
    if (body.next_cursor === null) return ids;
    assert.equal(body.items.length, limit, 'only the last page may be short');
    cursor = body.next_cursor;
  }
  assert.fail('pagination did not reach a page with next_cursor null');
}

/** The contract's order: by the sort column (NULL last_login_at is the oldest), ties by id, one direction. */
function compareFor(sort: (typeof SORTS)[number]) {
  const descending = sort.startsWith('-');
  const column = sort.replace('-', '') as 'created_at' | 'username' | 'last_login_at';
  return (a: UserBody, b: UserBody) => {
    const left = a[column];
    const right = b[column];
    let order = 0;
    if (left !== right) order = left === null ? -1 : right === null ? 1 : left < right ? -1 : 1;
    if (order === 0) order = a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    return descending ? -order : order;
  };
}

async function signInWith(t: TestApp, username: string, password: string, userAgent: string) {
  return t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { 'user-agent': userAgent }, payload: { username, password } });
}

async function logins(
  t: TestApp,
  id: string,
  authorization = t.adminBasic,
  query = '',
): Promise<{ items: LoginBody[]; next_cursor: string | null }> {
  const response = await call(t, 'GET', `/v1/users/${id}/logins${query}`, authorization);
  assert.equal(response.statusCode, 200, response.body);
  return response.json();
}

/** The same instant as an RFC 3339 time at UTC+05:30. */
function withOffset(iso: string): string {
  return new Date(Date.parse(iso) + 330 * 60_000).toISOString().replace('Z', '+05:30');
}

function withoutRequestId(body: Record<string, unknown>) {
  const copy = { ...body };
  delete copy.request_id;
  return copy;
}

function newUserBody(fields: Record<string, unknown> = {}) {
  const username = uniqueName('new');
  return { username, email: `${username}@example.com`, password: `pw-${username}-long-enough`, ...fields };
}

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
