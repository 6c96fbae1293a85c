// Sign-in, access and refresh tokens, logout, signing keys and login timestamps, through the HTTP API
// on every database target (API.md "Authentication" and "Sessions").
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import argon2 from 'argon2';
import type { LightMyRequestResponse } from 'fastify';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JSONWebKeySet, jwtVerify, SignJWT, UnsecuredJWT } from 'jose';
import { createPasswordHasher } from '../src/modules/sessions/passwords.js';
import { bearer, buildTestApp, problem, type TestApp, type TestUser } from './helpers/app.js';
import { targets } from './helpers/databases.js';

const WWW_AUTHENTICATE = 'Basic realm="gatehouse", Bearer realm="gatehouse"';

function assertUnauthorized(response: LightMyRequestResponse): void {
  assert.equal(response.statusCode, 401, response.body);
  assert.equal(problem(response).code, 'unauthorized');
  assert.equal(response.headers['www-authenticate'], WWW_AUTHENTICATE);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Re-reads until accept() holds or a few seconds pass; returns the last value read. */
async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const value = await read();
    if (accept(value) || Date.now() > deadline) return value;
    await sleep(10);
  }
}

function iso(value: string | Date | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

/** The algorithm and cost parameters of a PHC string, whatever order the parameters are written in. */
function phcParameters(hash: string): { algorithm: string; m: number; t: number; p: number } {
  const [, algorithm, , parameters] = hash.split('$');
  const values = Object.fromEntries((parameters ?? '').split(',').map((pair) => pair.split('=')));
  return { algorithm: algorithm ?? '', m: Number(values.m), t: Number(values.t), p: Number(values.p) };
}

function me(t: TestApp, authorization: string) {
  return t.app.inject({ url: '/v1/users/me', headers: { authorization } });
}

function refresh(t: TestApp, refreshToken: string) {
  return t.app.inject({ method: 'POST', url: '/v1/sessions/refresh', payload: { refresh_token: refreshToken } });
}

function signInResponse(t: TestApp, payload: unknown) {
  return t.app.inject({ method: 'POST', url: '/v1/sessions', payload: payload as Record<string, unknown> });
}

async function storedUser(t: TestApp, id: string) {
  const row = await t.services.usersRepository.findById(id);
  assert.ok(row, `user ${id} is stored`);
  return row;
}

async function logins(t: TestApp, userId: string) {
  const response = await t.app.inject({ url: `/v1/users/${userId}/logins?limit=100`, headers: { authorization: t.adminBasic } });
  assert.equal(response.statusCode, 200, response.body);
  return response.json().items as { at: string; success: boolean; method: string; ip: string | null; user_agent: string | null }[];
}

async function setStatus(t: TestApp, userId: string, status: 'active' | 'disabled'): Promise<void> {
  const response = await t.app.inject({
    method: 'PATCH',
    url: `/v1/users/${userId}`,
    headers: { authorization: t.adminBasic },
    payload: { status },
  });
  assert.equal(response.statusCode, 200, response.body);
}

/** Signs an access token with the app's own current private key, read from the database. */
async function signWithAppKey(t: TestApp, claims: { sub: string; sid: string; iat: number; exp: number }): Promise<string> {
  const row = await t.services.database.db
    .selectFrom('signing_keys')
    .selectAll()
    .where('retired_at', 'is', null)
    .orderBy('created_at', 'desc')
    .executeTakeFirstOrThrow();
  return new SignJWT({ sid: claims.sid })
    .setProtectedHeader({ alg: 'EdDSA', kid: row.kid, typ: 'at+jwt' })
    .setSubject(claims.sub)
    .setIssuer('gatehouse')
    .setAudience('gatehouse')
    .setIssuedAt(claims.iat)
    .setExpirationTime(claims.exp)
    .sign(createPrivateKey(row.private_key_pem));
}

for (const { target, skip } of await targets()) {
  describe(`sessions on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    describe('sign-in', () => {
      test('signs in with a JSON body and returns a Bearer token pair and the user', async () => {
        const user = await t.createUser();
        const response = await signInResponse(t, { username: user.username, password: user.password });
        assert.equal(response.statusCode, 201, response.body);
        const body = response.json();
        assert.equal(typeof body.access_token, 'string');
        assert.equal(body.token_type, 'Bearer');
        assert.equal(body.expires_in, 900);
        assert.equal(typeof body.refresh_token, 'string');
        assert.notEqual(body.refresh_token, body.access_token);
        assert.equal(body.user.id, user.id);
        assert.equal(body.user.username, user.username);
        assert.ok(body.user.last_login_at);
        assert.equal(JSON.stringify(body).includes('password'), false);
        assert.equal((await me(t, bearer(body.access_token))).statusCode, 200);
      });

      test('signs in with a Basic header and no body', async () => {
        const user = await t.createUser();
        const response = await t.app.inject({
          method: 'POST',
          url: '/v1/sessions',
          headers: { authorization: t.basic(user.username, user.password) },
        });
        assert.equal(response.statusCode, 201, response.body);
        const body = response.json();
        assert.equal(body.token_type, 'Bearer');
        assert.equal(body.user.id, user.id);
        const check = await me(t, bearer(body.access_token));
        assert.equal(check.statusCode, 200, check.body);
        assert.equal(check.json().id, user.id);
      });

      test('treats the username case-insensitively', async () => {
        const user = await t.createUser();
        const json = await signInResponse(t, { username: user.username.toUpperCase(), password: user.password });
        assert.equal(json.statusCode, 201, json.body);
        assert.equal(json.json().user.id, user.id);
        assert.equal(json.json().user.username, user.username);
        const basic = await t.app.inject({
          method: 'POST',
          url: '/v1/sessions',
          headers: { authorization: t.basic(user.username.toUpperCase(), user.password) },
        });
        assert.equal(basic.statusCode, 201, basic.body);
        assert.equal(basic.json().user.id, user.id);
      });

      test('answers unknown user, wrong password and disabled user with the same 401', async () => {
        const user = await t.createUser();
        const disabled = await t.createUser();
        await setStatus(t, disabled.id, 'disabled');
        const attempts = [
          signInResponse(t, { username: `nobody-${user.username}`, password: user.password }),
          signInResponse(t, { username: user.username, password: `${user.password}-wrong` }),
          signInResponse(t, { username: disabled.username, password: disabled.password }),
          t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: t.basic(user.username, 'wrong-password-123') } }),
        ];
        const responses = await Promise.all(attempts);
        const bodies = responses.map((response) => {
          assertUnauthorized(response);
          assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
          const { request_id, ...rest } = response.json();
          assert.equal(typeof request_id, 'string');
          return rest;
        });
        for (const body of bodies.slice(1)) assert.deepEqual(body, bodies[0]);
      });

      test('rejects a sign-in with missing fields as invalid_request', async () => {
        const user = await t.createUser();
        const noPassword = await signInResponse(t, { username: user.username });
        assert.equal(noPassword.statusCode, 400, noPassword.body);
        assert.equal(problem(noPassword).code, 'invalid_request');
        assert.ok(problem(noPassword).errors?.some((error) => error.field === 'password'));

        const noUsername = await signInResponse(t, { password: user.password });
        assert.equal(noUsername.statusCode, 400, noUsername.body);
        assert.ok(problem(noUsername).errors?.some((error) => error.field === 'username'));

        const nothing = await t.app.inject({ method: 'POST', url: '/v1/sessions' });
        assert.equal(nothing.statusCode, 400, nothing.body);
        assert.equal(problem(nothing).code, 'invalid_request');
      });
    });

    describe('access tokens', () => {
      test('issues an EdDSA JWT with the user, session, issuer and audience', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const header = decodeProtectedHeader(pair.access_token);
        assert.equal(header.alg, 'EdDSA');
        assert.equal(typeof header.kid, 'string');
        assert.ok(header.kid);
        const claims = decodeJwt(pair.access_token);
        assert.equal(claims.sub, user.id);
        assert.equal(typeof claims.sid, 'string');
        assert.equal(claims.iss, 'gatehouse');
        assert.equal(claims.aud, 'gatehouse');
        assert.equal(typeof claims.iat, 'number');
        assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 900);
      });

      test('publishes public keys in the JWKS that verify access tokens', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const response = await t.app.inject({ url: '/.well-known/jwks.json' });
        assert.equal(response.statusCode, 200, response.body);
        assert.match(String(response.headers['cache-control']), /\bpublic\b/);
        const jwks = response.json() as JSONWebKeySet;
        assert.ok(jwks.keys.length >= 1);
        for (const key of jwks.keys) {
          assert.equal('d' in key, false, 'a JWKS key carries a private part');
          assert.equal(key.kty, 'OKP');
          assert.equal(key.crv, 'Ed25519');
          assert.ok(key.kid);
        }
        assert.equal(response.body.includes('"d"'), false);
        const { payload, protectedHeader } = await jwtVerify(pair.access_token, createLocalJWKSet(jwks), {
          issuer: 'gatehouse',
          audience: 'gatehouse',
        });
        assert.equal(payload.sub, user.id);
        assert.ok(jwks.keys.some((key) => key.kid === protectedHeader.kid));
      });

      test('rejects a token whose signature was changed', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const [head, body, signature] = pair.access_token.split('.') as [string, string, string];
        // A character in the middle: the last one may only carry padding bits.
        const index = 10;
        const changed = signature[index] === 'A' ? 'B' : 'A';
        const tampered = `${head}.${body}.${signature.slice(0, index)}${changed}${signature.slice(index + 1)}`;
        assertUnauthorized(await me(t, bearer(tampered)));
        assert.equal((await me(t, bearer(pair.access_token))).statusCode, 200);
      });

      test('rejects a token whose claims were changed', async () => {
        const victim = await t.createUser();
        const attacker = await t.createUser();
        const pair = await t.signIn(attacker.username, attacker.password);
        const [head, , signature] = pair.access_token.split('.') as [string, string, string];
        const claims = { ...decodeJwt(pair.access_token), sub: victim.id };
        const forged = `${head}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
        assertUnauthorized(await me(t, bearer(forged)));
      });

      test('rejects a token signed with a key the service does not hold, even under its kid', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const real = decodeJwt(pair.access_token);
        const { kid } = decodeProtectedHeader(pair.access_token);
        const { privateKey } = generateKeyPairSync('ed25519');
        for (const headerKid of [kid, 'some-other-kid']) {
          const foreign = await new SignJWT({ sid: real.sid })
            .setProtectedHeader({ alg: 'EdDSA', kid: headerKid, typ: 'at+jwt' })
            .setSubject(user.id)
            .setIssuer('gatehouse')
            .setAudience('gatehouse')
            .setIssuedAt()
            .setExpirationTime('5m')
            .sign(privateKey);
          assertUnauthorized(await me(t, bearer(foreign)));
        }
      });

      test('rejects an unsigned (alg none) token', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const real = decodeJwt(pair.access_token);
        const unsigned = new UnsecuredJWT({ sid: real.sid })
          .setSubject(user.id)
          .setIssuer('gatehouse')
          .setAudience('gatehouse')
          .setIssuedAt()
          .setExpirationTime('5m')
          .encode();
        assertUnauthorized(await me(t, bearer(unsigned)));
      });

      test('rejects an expired token signed with its own key', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const sid = String(decodeJwt(pair.access_token).sid);
        const now = Math.floor(Date.now() / 1000);
        // The same construction with a future expiry is accepted, so only the expiry differs.
        const fresh = await signWithAppKey(t, { sub: user.id, sid, iat: now - 10, exp: now + 600 });
        assert.equal((await me(t, bearer(fresh))).statusCode, 200);
        const expired = await signWithAppKey(t, { sub: user.id, sid, iat: now - 3_600, exp: now - 1_800 });
        assertUnauthorized(await me(t, bearer(expired)));
      });

      test('ignores credentials in the query string', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const response = await t.app.inject({ url: `/v1/users/me?access_token=${encodeURIComponent(pair.access_token)}` });
        assertUnauthorized(response);
        const query = new URLSearchParams({ username: user.username, password: user.password });
        assertUnauthorized(await t.app.inject({ url: `/v1/users/me?${query}` }));
      });
    });

    describe('refresh', () => {
      test('exchanges a refresh token for a new working pair of the same session', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const response = await refresh(t, pair.refresh_token);
        assert.equal(response.statusCode, 200, response.body);
        const next = response.json();
        assert.equal(next.token_type, 'Bearer');
        assert.equal(next.expires_in, 900);
        assert.equal(next.user.id, user.id);
        assert.notEqual(next.refresh_token, pair.refresh_token);
        assert.equal(decodeJwt(next.access_token).sid, decodeJwt(pair.access_token).sid);
        assert.equal((await me(t, bearer(next.access_token))).statusCode, 200);
        const again = await refresh(t, next.refresh_token);
        assert.equal(again.statusCode, 200, again.body);
      });

      test('rejects a refresh token that was already rotated', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        assert.equal((await refresh(t, pair.refresh_token)).statusCode, 200);
        assertUnauthorized(await refresh(t, pair.refresh_token));
      });

      test('ends the whole session when a rotated refresh token is reused', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const other = await t.signIn(user.username, user.password);
        const second = (await refresh(t, pair.refresh_token)).json();
        const third = (await refresh(t, second.refresh_token)).json();
        assert.equal((await me(t, bearer(third.access_token))).statusCode, 200);

        assertUnauthorized(await refresh(t, pair.refresh_token));

        assertUnauthorized(await refresh(t, third.refresh_token));
        assertUnauthorized(await me(t, bearer(third.access_token)));
        assertUnauthorized(await me(t, bearer(pair.access_token)));
        // Another session of the same user is not affected.
        assert.equal((await me(t, bearer(other.access_token))).statusCode, 200);
        assert.equal((await refresh(t, other.refresh_token)).statusCode, 200);
      });

      test('rejects an unknown refresh token and a missing one', async () => {
        assertUnauthorized(await refresh(t, 'no-such-refresh-token'));
        const missing = await t.app.inject({ method: 'POST', url: '/v1/sessions/refresh', payload: {} });
        assert.equal(missing.statusCode, 400, missing.body);
        assert.equal(problem(missing).code, 'invalid_request');
      });

      test('does not refresh a session of a user who was disabled', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        await setStatus(t, user.id, 'disabled');
        assertUnauthorized(await refresh(t, pair.refresh_token));
      });
    });

    describe('sign-out and revocation', () => {
      test('signs out with the Bearer token: the access and refresh tokens stop working', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const other = await t.signIn(user.username, user.password);
        const response = await t.app.inject({
          method: 'DELETE',
          url: '/v1/sessions/current',
          headers: { authorization: bearer(pair.access_token) },
        });
        assert.equal(response.statusCode, 204, response.body);
        assert.equal(response.body, '');
        assertUnauthorized(await me(t, bearer(pair.access_token)));
        assertUnauthorized(await refresh(t, pair.refresh_token));
        const twice = await t.app.inject({
          method: 'DELETE',
          url: '/v1/sessions/current',
          headers: { authorization: bearer(pair.access_token) },
        });
        assertUnauthorized(twice);
        // Only that session ends.
        assert.equal((await me(t, bearer(other.access_token))).statusCode, 200);
      });

      test('refuses to sign out a Basic caller, who has no session', async () => {
        const user = await t.createUser();
        const response = await t.app.inject({
          method: 'DELETE',
          url: '/v1/sessions/current',
          headers: { authorization: t.basic(user.username, user.password) },
        });
        assert.equal(response.statusCode, 400, response.body);
        assert.equal(problem(response).code, 'invalid_request');
        assertUnauthorized(await t.app.inject({ method: 'DELETE', url: '/v1/sessions/current' }));
      });

      test('ends the sessions of a disabled user for good, even after re-enabling', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        await setStatus(t, user.id, 'disabled');
        assertUnauthorized(await me(t, bearer(pair.access_token)));
        assertUnauthorized(await me(t, t.basic(user.username, user.password)));
        await setStatus(t, user.id, 'active');
        assertUnauthorized(await me(t, bearer(pair.access_token)));
        assertUnauthorized(await refresh(t, pair.refresh_token));
        const again = await t.signIn(user.username, user.password);
        assert.equal((await me(t, bearer(again.access_token))).statusCode, 200);
      });

      test('ends the sessions of a deleted user', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const deleted = await t.app.inject({ method: 'DELETE', url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
        assert.equal(deleted.statusCode, 204, deleted.body);
        assertUnauthorized(await me(t, bearer(pair.access_token)));
        assertUnauthorized(await refresh(t, pair.refresh_token));
      });
    });

    describe('HTTP Basic on /v1', () => {
      test('accepts Basic credentials on every endpoint that needs a caller', async () => {
        const user = await t.createUser();
        const basic = t.basic(user.username, user.password);
        const self = await me(t, basic);
        assert.equal(self.statusCode, 200, self.body);
        assert.equal(self.json().id, user.id);

        const list = await t.app.inject({ url: '/v1/users', headers: { authorization: t.adminBasic } });
        assert.equal(list.statusCode, 200, list.body);
        assert.ok(Array.isArray(list.json().items));
        const notAdmin = await t.app.inject({ url: '/v1/users', headers: { authorization: basic } });
        assert.equal(notAdmin.statusCode, 403, notAdmin.body);

        const byId = await t.app.inject({ url: `/v1/users/${user.id}`, headers: { authorization: basic } });
        assert.equal(byId.statusCode, 200, byId.body);
        const patched = await t.app.inject({
          method: 'PATCH',
          url: `/v1/users/${user.id}`,
          headers: { authorization: basic },
          payload: { display_name: 'Basic Caller' },
        });
        assert.equal(patched.statusCode, 200, patched.body);
        assert.equal(patched.json().display_name, 'Basic Caller');
        const history = await t.app.inject({ url: `/v1/users/${user.id}/logins`, headers: { authorization: basic } });
        assert.equal(history.statusCode, 200, history.body);

        assertUnauthorized(await me(t, t.basic(user.username, `${user.password}-wrong`)));
      });

      test('a password change over Basic ends every session of the user', async () => {
        const user = await t.createUser();
        const pair = await t.signIn(user.username, user.password);
        const newPassword = `new-${user.username}-secret-pw`;
        const response = await t.app.inject({
          method: 'PUT',
          url: '/v1/users/me/password',
          headers: { authorization: t.basic(user.username, user.password) },
          payload: { current_password: user.password, new_password: newPassword },
        });
        assert.equal(response.statusCode, 204, response.body);
        assertUnauthorized(await me(t, bearer(pair.access_token)));
        assertUnauthorized(await refresh(t, pair.refresh_token));
        assertUnauthorized(await signInResponse(t, { username: user.username, password: user.password }));
        assert.equal((await signInResponse(t, { username: user.username, password: newPassword })).statusCode, 201);
      });
    });

    describe('login timestamps', () => {
      test('a sign-in sets last_login_at and records a password login event', async () => {
        const user = await t.createUser();
        assert.equal(user.last_login_at, null);
        const response = await t.app.inject({
          method: 'POST',
          url: '/v1/sessions',
          headers: { 'user-agent': 'sessions-test/1.0' },
          payload: { username: user.username, password: user.password },
        });
        assert.equal(response.statusCode, 201, response.body);
        const row = await storedUser(t, user.id);
        assert.ok(row.last_login_at);
        assert.equal(response.json().user.last_login_at, iso(row.last_login_at));
        const events = await logins(t, user.id);
        assert.equal(events.length, 1);
        assert.equal(events[0]?.success, true);
        assert.equal(events[0]?.method, 'password');
        assert.equal(events[0]?.at, iso(row.last_login_at));
        assert.equal(events[0]?.user_agent, 'sessions-test/1.0');
      });

      test('a sign-in with a Basic header records a basic login event', async () => {
        const user = await t.createUser();
        const response = await t.app.inject({
          method: 'POST',
          url: '/v1/sessions',
          headers: { authorization: t.basic(user.username, user.password) },
        });
        assert.equal(response.statusCode, 201, response.body);
        const events = await logins(t, user.id);
        assert.equal(events.length, 1);
        assert.equal(events[0]?.method, 'basic');
        assert.equal(events[0]?.success, true);
        assert.ok((await storedUser(t, user.id)).last_login_at);
      });

      test('a failed sign-in of a known user is recorded as unsuccessful and sets no login time', async () => {
        const user = await t.createUser();
        assertUnauthorized(await signInResponse(t, { username: user.username, password: `${user.password}-wrong` }));
        const events = await logins(t, user.id);
        assert.equal(events.length, 1);
        assert.equal(events[0]?.success, false);
        assert.equal((await storedUser(t, user.id)).last_login_at, null);
      });

      test('a Basic request sets last_seen_at but is not a sign-in', async () => {
        const user = await t.createUser();
        await t.signIn(user.username, user.password);
        const lastLogin = iso((await storedUser(t, user.id)).last_login_at);
        assert.ok(lastLogin);
        await sleep(5);
        const response = await me(t, t.basic(user.username, user.password));
        assert.equal(response.statusCode, 200, response.body);
        const row = await eventually(
          () => storedUser(t, user.id),
          (stored) => stored.last_seen_at !== null,
        );
        assert.ok(row.last_seen_at, 'last_seen_at is written');
        assert.ok((iso(row.last_seen_at) ?? '') > lastLogin);
        assert.equal(iso(row.last_login_at), lastLogin);
        assert.equal((await logins(t, user.id)).length, 1);
      });

      test('a Basic request of a user who never signed in leaves last_login_at empty', async () => {
        const user = await t.createUser();
        assert.equal((await me(t, t.basic(user.username, user.password))).statusCode, 200);
        const row = await eventually(
          () => storedUser(t, user.id),
          (stored) => stored.last_seen_at !== null,
        );
        assert.ok(row.last_seen_at);
        assert.equal(row.last_login_at, null);
        const view = await t.app.inject({ url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
        assert.equal(view.json().last_login_at, null);
        assert.equal(view.json().last_seen_at, iso(row.last_seen_at));
        assert.deepEqual(await logins(t, user.id), []);
      });

      test('writes last_seen_at at most once per interval', async () => {
        const user = await t.createUser();
        const basic = t.basic(user.username, user.password);
        assert.equal((await me(t, basic)).statusCode, 200);
        const first = await eventually(
          () => storedUser(t, user.id),
          (stored) => stored.last_seen_at !== null,
        );
        assert.ok(first.last_seen_at);
        await sleep(5);
        const pair = await t.signIn(user.username, user.password);
        assert.equal((await me(t, basic)).statusCode, 200);
        assert.equal((await me(t, bearer(pair.access_token))).statusCode, 200);
        // The write is asynchronous: give a wrong one time to land.
        await sleep(200);
        assert.equal(iso((await storedUser(t, user.id)).last_seen_at), iso(first.last_seen_at));
      });

      test('writes last_seen_at again once the interval has passed', async () => {
        const quick = await buildTestApp(target, { lastSeenIntervalSeconds: 1 });
        try {
          const user = await quick.createUser();
          const basic = quick.basic(user.username, user.password);
          assert.equal((await me(quick, basic)).statusCode, 200);
          const first = await eventually(
            () => storedUser(quick, user.id),
            (stored) => stored.last_seen_at !== null,
          );
          const firstSeen = iso(first.last_seen_at);
          assert.ok(firstSeen);
          await sleep(1_100);
          assert.equal((await me(quick, basic)).statusCode, 200);
          const second = await eventually(
            () => storedUser(quick, user.id),
            (stored) => iso(stored.last_seen_at) !== firstSeen,
          );
          assert.ok((iso(second.last_seen_at) ?? '') > firstSeen);
          assert.equal(second.last_login_at, null);
        } finally {
          await quick.close();
        }
      });

      test('GET /api/login sets last_login_at and records a basic login event', async () => {
        const user = await t.createUser();
        const response = await t.app.inject({ url: '/api/login', headers: { authorization: t.basic(user.username, user.password) } });
        assert.equal(response.statusCode, 200, response.body);
        const body = response.json();
        const row = await storedUser(t, user.id);
        assert.ok(row.last_login_at);
        assert.equal(body.last_login, iso(row.last_login_at));
        assert.match(body.message, new RegExp(`^Hello, ${user.username}! Login successful at `));
        const events = await logins(t, user.id);
        assert.equal(events.length, 1);
        assert.equal(events[0]?.method, 'basic');
        assert.equal(events[0]?.success, true);
        assert.equal(events[0]?.at, iso(row.last_login_at));
        assertUnauthorized(
          await t.app.inject({ url: '/api/login', headers: { authorization: t.basic(user.username, 'wrong-password-123') } }),
        );
      });

      test('20 parallel sign-ins all succeed and leave the latest login time', async () => {
        const user = await t.createUser();
        const responses = await Promise.all(
          Array.from({ length: 20 }, () => signInResponse(t, { username: user.username, password: user.password })),
        );
        for (const response of responses) assert.equal(response.statusCode, 201, response.body);
        assert.equal(new Set(responses.map((response) => response.json().refresh_token)).size, 20);
        const events = await logins(t, user.id);
        assert.equal(events.length, 20);
        assert.ok(events.every((event) => event.success && event.method === 'password'));
        const latest = events
          .map((event) => event.at)
          .sort()
          .at(-1);
        const view = await t.app.inject({ url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
        assert.equal(view.json().last_login_at, latest);
      });
    });

    describe('password hashes', () => {
      test('rehashes a stored hash made with other parameters on sign-in', async () => {
        const user = await t.createUser();
        const oldHash = await argon2.hash(user.password, { type: argon2.argon2id, memoryCost: 2048, timeCost: 1, parallelism: 1 });
        await t.services.usersRepository.update(user.id, { password_hash: oldHash });
        assert.equal((await signInResponse(t, { username: user.username, password: user.password })).statusCode, 201);
        const stored = (await storedUser(t, user.id)).password_hash;
        assert.notEqual(stored, oldHash);
        assert.deepEqual(phcParameters(stored), { algorithm: 'argon2id', m: 1024, t: 1, p: 1 });
        assert.equal(await argon2.verify(stored, user.password), true);
        assert.equal((await signInResponse(t, { username: user.username, password: user.password })).statusCode, 201);
      });

      test('keeps an old hash when the password is wrong', async () => {
        const user = await t.createUser();
        const oldHash = await argon2.hash(user.password, { type: argon2.argon2id, memoryCost: 2048, timeCost: 1, parallelism: 1 });
        await t.services.usersRepository.update(user.id, { password_hash: oldHash });
        assertUnauthorized(await signInResponse(t, { username: user.username, password: `${user.password}-wrong` }));
        assert.equal((await storedUser(t, user.id)).password_hash, oldHash);
      });
    });

    describe('signing keys', () => {
      test('a rotated-in key is published at once but signs only after the activation delay', async () => {
        const app = await buildTestApp(target);
        try {
          const user = await app.createUser();
          const earlier = await app.signIn(user.username, user.password);
          const oldKid = decodeProtectedHeader(earlier.access_token).kid;
          const newKid = await app.services.tokens.rotate();
          const jwks = (await app.app.inject({ url: '/.well-known/jwks.json' })).json() as JSONWebKeySet;
          assert.deepEqual(jwks.keys.map((key) => key.kid).sort(), [oldKid, newKid].sort());
          const later = await app.signIn(user.username, user.password);
          assert.equal(decodeProtectedHeader(later.access_token).kid, oldKid);
        } finally {
          await app.close();
        }
      });

      test('rotating keys publishes both, keeps old tokens valid and signs with the new key once active', async () => {
        const app = await buildTestApp(target, { signingKeyActivationSeconds: 0 });
        try {
          const user = await app.createUser();
          const earlier = await app.signIn(user.username, user.password);
          const oldKid = decodeProtectedHeader(earlier.access_token).kid;
          const newKid = await app.services.tokens.rotate();
          assert.notEqual(newKid, oldKid);

          const jwks = (await app.app.inject({ url: '/.well-known/jwks.json' })).json() as JSONWebKeySet;
          assert.deepEqual(jwks.keys.map((key) => key.kid).sort(), [oldKid, newKid].sort());
          assert.ok(jwks.keys.every((key) => !('d' in key)));

          assert.equal((await me(app, bearer(earlier.access_token))).statusCode, 200);
          const later = await app.signIn(user.username, user.password);
          assert.equal(decodeProtectedHeader(later.access_token).kid, newKid);
          assert.equal((await me(app, bearer(later.access_token))).statusCode, 200);
          const verified = await jwtVerify(later.access_token, createLocalJWKSet(jwks), { issuer: 'gatehouse', audience: 'gatehouse' });
          assert.equal(verified.payload.sub, user.id);
        } finally {
          await app.close();
        }
      });
    });

    describe('two instances on one database', () => {
      let a: TestApp;
      let b: TestApp;
      before(async () => {
        a = await buildTestApp(target);
        b = await buildTestApp(target, {}, { database: a.database, keepDatabase: true });
      });
      after(async () => {
        await b?.close();
        await a?.close();
      });

      test('a token signed by one instance works on the other', async () => {
        const user = await a.createUser();
        const fromA = await a.signIn(user.username, user.password);
        const onB = await me(b, bearer(fromA.access_token));
        assert.equal(onB.statusCode, 200, onB.body);
        assert.equal(onB.json().id, user.id);
        const fromB = await b.signIn(user.username, user.password);
        assert.equal((await me(a, bearer(fromB.access_token))).statusCode, 200);
        const refreshed = await refresh(b, fromA.refresh_token);
        assert.equal(refreshed.statusCode, 200, refreshed.body);
        assertUnauthorized(await refresh(a, fromA.refresh_token));
      });

      test('a sign-out on one instance ends the token on the other at once', async () => {
        const user = await a.createUser();
        const pair = await a.signIn(user.username, user.password);
        assert.equal((await me(b, bearer(pair.access_token))).statusCode, 200);
        const logout = await a.app.inject({
          method: 'DELETE',
          url: '/v1/sessions/current',
          headers: { authorization: bearer(pair.access_token) },
        });
        assert.equal(logout.statusCode, 204, logout.body);
        assertUnauthorized(await me(b, bearer(pair.access_token)));
        assertUnauthorized(await refresh(b, pair.refresh_token));
      });

      test('disabling a user on one instance ends its token on the other at once', async () => {
        const user = await a.createUser();
        const pair = await a.signIn(user.username, user.password);
        assert.equal((await me(a, bearer(pair.access_token))).statusCode, 200);
        await setStatus(b, user.id, 'disabled');
        assertUnauthorized(await me(a, bearer(pair.access_token)));
        assertUnauthorized(await refresh(a, pair.refresh_token));
      });

      test('a second instance does not write last_seen_at again within the interval', async () => {
        const user = await a.createUser();
        const basic = a.basic(user.username, user.password);
        assert.equal((await me(a, basic)).statusCode, 200);
        const first = await eventually(
          () => storedUser(a, user.id),
          (stored) => stored.last_seen_at !== null,
        );
        assert.ok(first.last_seen_at);
        await sleep(5);
        assert.equal((await me(b, basic)).statusCode, 200);
        await sleep(200);
        assert.equal(iso((await storedUser(b, user.id)).last_seen_at), iso(first.last_seen_at));
      });
    });

    describe('restart', () => {
      test('users, sessions and signing keys survive a restart', async () => {
        const first = await buildTestApp(target, {}, { keepDatabase: true });
        let firstClosed = false;
        let second: TestApp | null = null;
        try {
          const user: TestUser = await first.createUser();
          const pair = await first.signIn(user.username, user.password);
          const kids = ((await first.app.inject({ url: '/.well-known/jwks.json' })).json() as JSONWebKeySet).keys.map((key) => key.kid);
          await first.close();
          firstClosed = true;

          second = await buildTestApp(target, {}, { database: first.database });
          const restarted = second;
          const again = await signInResponse(restarted, { username: user.username, password: user.password });
          assert.equal(again.statusCode, 201, again.body);
          const old = await me(restarted, bearer(pair.access_token));
          assert.equal(old.statusCode, 200, old.body);
          assert.equal(old.json().id, user.id);
          const refreshed = await refresh(restarted, pair.refresh_token);
          assert.equal(refreshed.statusCode, 200, refreshed.body);
          const jwks = (await restarted.app.inject({ url: '/.well-known/jwks.json' })).json() as JSONWebKeySet;
          assert.deepEqual(
            jwks.keys.map((key) => key.kid),
            kids,
          );
        } finally {
          if (!firstClosed) await first.close();
          if (second) await second.close();
          else await first.database.drop();
        }
      });
    });
  });
}

describe('production password hashing', () => {
  test('hashes with argon2id at the OWASP parameters and verifies', async () => {
    const hasher = await createPasswordHasher('owasp');
    const hash = await hasher.hash('correct horse battery staple');
    assert.deepEqual(phcParameters(hash), { algorithm: 'argon2id', m: 19_456, t: 2, p: 1 });
    assert.deepEqual(await hasher.verify(hash, 'correct horse battery staple'), { ok: true, needsRehash: false });
    assert.equal((await hasher.verify(hash, 'correct horse battery stable')).ok, false);
  });
});
