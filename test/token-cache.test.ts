// The per-instance memory of verified access tokens (tokens.ts) must not keep a token alive that
// a fresh verification would refuse: one that has expired, or one whose signing key was retired.
// And the user view's fast path for stored timestamps must print what toIso prints.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toIso } from '../src/lib/time.js';
import { toUserView } from '../src/modules/users/users.view.js';
import { bearer, buildTestApp } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import { assertUnauthorized, me, sleep } from './helpers/sessions.js';

for (const { target, skip } of await targets()) {
  describe(`verified access tokens on ${target}`, { skip }, () => {
    test('a token accepted before is refused once it expires', async () => {
      // `exp` is whole seconds after a sign-in at some fraction of a second: 3 s leaves at least 2 of validity.
      const app = await buildTestApp(target, { accessTokenTtlSeconds: 3 });
      try {
        const user = await app.createUser();
        const { access_token } = await app.signIn(user.username, user.password);
        assert.equal(app.services.tokens.verifiedClaims(access_token), undefined, 'not verified here yet');
        assert.equal((await me(app, bearer(access_token))).statusCode, 200);
        assert.equal(app.services.tokens.verifiedClaims(access_token)?.userId, user.id, 'remembered once verified');
        assert.equal((await me(app, bearer(access_token))).statusCode, 200, 'a second use is accepted too');
        await sleep(3_100);
        assert.equal(app.services.tokens.verifiedClaims(access_token), null, 'known, and expired');
        assertUnauthorized(await me(app, bearer(access_token)));
      } finally {
        await app.close();
      }
    });

    test('a token accepted before is refused once rotation retires its key', async () => {
      const app = await buildTestApp(target, { signingKeyActivationSeconds: 0 });
      try {
        const user = await app.createUser();
        const { access_token } = await app.signIn(user.username, user.password);
        assert.equal((await me(app, bearer(access_token))).statusCode, 200);
        // Rotation keeps the new key and the previous one: after two, the first is retired.
        await app.services.tokens.rotate();
        assert.equal((await me(app, bearer(access_token))).statusCode, 200, 'still valid under the previous key');
        await app.services.tokens.rotate();
        assertUnauthorized(await me(app, bearer(access_token)));
      } finally {
        await app.close();
      }
    });
  });
}

describe('user view timestamps', () => {
  const row = (at: string | Date) => ({
    id: 'u1',
    username: 'someone',
    email: 'someone@example.com',
    display_name: null,
    roles: 'user',
    status: 'active' as const,
    password_hash: 'x',
    created_at: at,
    updated_at: at,
    last_login_at: null,
    last_seen_at: at,
  });
  for (const at of [
    '2026-11-28T08:00:00.123Z',
    '2024-02-29T23:59:59.999Z',
    '2026-01-31T00:00:00.000Z',
    '2026-03-05 10:11:12',
    '2026-03-05T10:11:12Z',
    '2026-03-05T10:11:12.5+02:00',
    new Date('2026-03-05T10:11:12.345Z'),
  ]) {
    test(`prints ${String(at)} as toIso does`, () => {
      const view = toUserView(row(at) as Parameters<typeof toUserView>[0]);
      assert.equal(view.created_at, toIso(at));
      assert.equal(view.last_seen_at, toIso(at));
      assert.equal(view.last_login_at, null);
    });
  }
});
