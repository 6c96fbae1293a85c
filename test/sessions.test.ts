// Sign-in, access and refresh tokens, sign-out and HTTP Basic, through the HTTP API on every database
// target (API.md "Authentication" and "Sessions").
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JSONWebKeySet, jwtVerify, SignJWT, UnsecuredJWT } from 'jose';
import { sql } from 'kysely';
import { bearer, buildTestApp, problem, type TestApp } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import { assertUnauthorized, me, refresh, setStatus, signInResponse, signWithAppKey } from './helpers/sessions.js';

for (const { target, skip } of await targets()) {
  describe(`sessions on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    describe('sign-in', () => {
      test('writes all of a sign-in or none of it: session, refresh token, login event, outbox event, last_login_at', async () => {
        // On PostgreSQL these are one statement (sessions.repository recordSignIn), on SQLite one
        // transaction. An outbox that refuses the event must leave none of the rest behind.
        const { db } = t.services.database;
        const user = await t.createUser();
        const written = async () => ({
          sessions: (await db.selectFrom('sessions').select('id').where('user_id', '=', user.id).execute()).length,
          refreshTokens: (
            await db
              .selectFrom('refresh_tokens')
              .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
              .select('token_hash')
              .where('sessions.user_id', '=', user.id)
              .execute()
          ).length,
          logins: (await db.selectFrom('login_events').select('id').where('user_id', '=', user.id).where('success', '=', 1).execute())
            .length,
          events: (
            await db
              .selectFrom('outbox_events')
              .select('seq')
              .where('subject', '=', user.id)
              .where('type', '=', 'session.created')
              .execute()
          ).length,
          lastLogin: (await db.selectFrom('users').select('last_login_at').where('id', '=', user.id).executeTakeFirstOrThrow())
            .last_login_at,
        });
        if (target === 'postgres') {
          await sql`create function refuse_outbox() returns trigger language plpgsql as $$ begin raise exception 'outbox refused'; end $$`.execute(
            db,
          );
          await sql`create trigger refuse_outbox before insert on outbox_events for each row execute function refuse_outbox()`.execute(db);
        } else
          await sql`create trigger refuse_outbox before insert on outbox_events begin select raise(abort, 'outbox refused'); end`.execute(
            db,
          );
        try {
          const refused = await signInResponse(t, { username: user.username, password: user.password });
          assert.ok(refused.statusCode >= 500, `${refused.statusCode} ${refused.body}`);
          assert.deepEqual(await written(), { sessions: 0, refreshTokens: 0, logins: 0, events: 0, lastLogin: null });
        } finally {
          await sql`drop trigger refuse_outbox${target === 'postgres' ? sql` on outbox_events` : sql``}`.execute(db);
          if (target === 'postgres') await sql`drop function refuse_outbox()`.execute(db);
        }
        const response = await signInResponse(t, { username: user.username, password: user.password });
        assert.equal(response.statusCode, 201, response.body);
        const after = await written();
        assert.deepEqual({ ...after, lastLogin: null }, { sessions: 1, refreshTokens: 1, logins: 1, events: 1, lastLogin: null });
        assert.ok(after.lastLogin, 'last_login_at is set');
        assert.equal(new Date(after.lastLogin as string).toISOString(), response.json().user.last_login_at);
      });

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
        assert.equal(header.typ, 'at+jwt');
        assert.equal(typeof header.kid, 'string');
        assert.ok(header.kid);
        const claims = decodeJwt(pair.access_token);
        assert.equal(claims.sub, user.id);
        assert.equal(typeof claims.sid, 'string');
        assert.equal(claims.iss, 'gatehouse');
        assert.equal(claims.aud, 'gatehouse');
        assert.equal(typeof claims.iat, 'number');
        assert.ok(Math.abs((claims.iat ?? 0) - Date.now() / 1000) < 5, 'issued now, in whole seconds');
        assert.ok(Number.isInteger(claims.iat));
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
  });
}
