// HTTP Basic over a keep-alive connection: the connection keeps the last credential that
// authenticated on it (src/http/auth.ts), so that the next request with the same header is neither
// decoded nor hashed again. These tests speak real HTTP over one connection (app.inject makes a new
// socket for every request, so it never reaches that path) and check that the shortcut changes
// nothing a client can see: another credential on the same connection, a password change, a
// disabled user, the end of the remembered verification, and the cache turned off.
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { Config } from '../src/config.js';
import { buildTestApp, type TestApp, withTestApp } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import { passwordVerifications } from './helpers/metrics.js';
import { sleep } from './helpers/sessions.js';

interface Answer {
  status: number;
  body: string;
  /** Whether the request went over a connection that an earlier request had used. */
  reused: boolean;
}

/** One keep-alive connection to `base`: requests go over it one at a time. */
function connection(base: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const send = (path: string, authorization: string): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const outgoing = httpRequest(`${base}${path}`, { agent, headers: { authorization } }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body, reused: outgoing.reusedSocket }));
      });
      outgoing.on('error', reject);
      outgoing.end();
    });
  return {
    /** GET /v1/users/me: the status and, on 200, the caller's username. */
    async me(authorization: string): Promise<{ status: number; username?: string; reused: boolean }> {
      const answer = await send('/v1/users/me', authorization);
      const username = answer.status === 200 ? (JSON.parse(answer.body) as { username: string }).username : undefined;
      return { status: answer.status, username, reused: answer.reused };
    },
    close: () => agent.destroy(),
  };
}

type Connection = ReturnType<typeof connection>;

/** Runs `use` with a connection of its own to `base`, closed afterwards. */
async function overConnection(base: string, use: (client: Connection) => Promise<void>): Promise<void> {
  const client = connection(base);
  try {
    await use(client);
  } finally {
    client.close();
  }
}

for (const { target, skip } of await targets()) {
  describe(`Basic credentials kept by a connection on ${target}`, { skip }, () => {
    let t: TestApp;
    let base: string;
    before(async () => {
      t = await buildTestApp(target);
      base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    });
    after(async () => t?.close());

    const withOwn = (overrides: Partial<Config>, run: (own: TestApp, base: string) => Promise<void>) =>
      withTestApp(target, overrides, async (own) => run(own, await own.app.listen({ port: 0, host: '127.0.0.1' })));

    test('a grant answers only while its verification lasts and for the hash it was verified against', async () => {
      // The user row stays in the authentication cache for its longest (1 s): the checks below run
      // right after the request that read it.
      await withOwn({ authCacheMilliseconds: 1000 }, async (own, ownBase) => {
        const user = await own.createUser();
        await overConnection(ownBase, async (client) => {
          // Verified, then the user read into the authentication cache.
          for (let i = 0; i < 2; i += 1) assert.equal((await client.me(own.basic(user.username, user.password))).status, 200);
          const sessions = own.services.sessions;
          const grant = sessions.basicGrant(user.username, user.password);
          assert.ok(grant, 'a remembered verification');
          assert.equal(sessions.basicFromGrant(grant)?.user.id, user.id);
          assert.equal(sessions.basicFromGrant({ ...grant, expiresAt: Date.now() - 1 }), undefined, 'expired');
          assert.equal(sessions.basicFromGrant({ ...grant, passwordHash: `${grant.passwordHash}x` }), undefined, 'another hash');
          assert.equal(sessions.basicGrant(user.username, `${user.password}-wrong`), null, 'no grant for a wrong password');
        });
      });
    });

    /** Counts the hook's full lookups (decode, keyed hash, cache) of Basic credentials. */
    function countLookups(own: TestApp): { readonly count: number; restore(): void } {
      const sessions = own.services.sessions;
      const original = sessions.basicFromCache;
      let count = 0;
      sessions.basicFromCache = (username, password) => {
        count += 1;
        return original(username, password);
      };
      return {
        get count() {
          return count;
        },
        restore: () => {
          sessions.basicFromCache = original;
        },
      };
    }

    test('the same credential again on the same connection is not looked up again', async () => {
      // The user row stays in the authentication cache for its longest (1 s), so that the counted
      // requests need no read that would take the long way.
      await withOwn({ authCacheMilliseconds: 1000 }, async (own, ownBase) => {
        const user = await own.createUser();
        const authorization = own.basic(user.username, user.password);
        await overConnection(ownBase, async (client) => {
          // The first request verifies the password; the second reads the user into the cache.
          for (let i = 0; i < 2; i += 1) assert.equal((await client.me(authorization)).status, 200);
          const lookups = countLookups(own);
          const answers = [];
          try {
            for (let i = 0; i < 10; i += 1) answers.push(await client.me(authorization));
          } finally {
            lookups.restore();
          }
          for (const answer of answers) assert.deepEqual([answer.status, answer.username, answer.reused], [200, user.username, true]);
          // Each request would look the credential up (10) without the connection's grant; one is
          // allowed for the user's cache entry running out on a slow machine.
          assert.ok(lookups.count <= 1, `${lookups.count} lookups for 10 requests`);
        });
      });
    });

    test("another client's credential on the same connection (a proxy's) gets its own caller, and a wrong one 401", async () => {
      const first = await t.createUser();
      const second = await t.createUser();
      await overConnection(base, async (client) => {
        // Twice: the first verifies the password, the second reads the user into the authentication
        // cache, so that the connection's grant for `first` could answer on its own.
        for (let i = 0; i < 2; i += 1) assert.equal((await client.me(t.basic(first.username, first.password))).username, first.username);
        const other = await client.me(t.basic(second.username, second.password));
        assert.deepEqual([other.status, other.username, other.reused], [200, second.username, true]);
        const wrong = await client.me(t.basic(first.username, `${first.password}-wrong`));
        assert.deepEqual([wrong.status, wrong.reused], [401, true]);
        assert.equal((await client.me(t.basic(first.username, first.password))).username, first.username);
        // The same user name with a different case is a different header: looked up, and the same user.
        assert.equal((await client.me(t.basic(first.username.toUpperCase(), first.password))).username, first.username);
      });
    });

    test('a password change and a disabled user take effect at once on a connection that kept the credential', async () => {
      const user = await t.createUser();
      await overConnection(base, async (client) => {
        const old = t.basic(user.username, user.password);
        assert.equal((await client.me(old)).status, 200);
        assert.equal((await client.me(old)).status, 200);
        const renewed = `${user.password}-renewed`;
        const change = await t.app.inject({
          method: 'PUT',
          url: '/v1/users/me/password',
          headers: { authorization: old, 'content-type': 'application/json' },
          payload: { current_password: user.password, new_password: renewed },
        });
        assert.equal(change.statusCode, 204, change.body);
        // Another connection signs in with the new password, so that the user's new row is in the
        // authentication cache: the kept grant must be refused for its hash, not for a missing row.
        await overConnection(base, async (elsewhere) => {
          assert.equal((await elsewhere.me(t.basic(user.username, renewed))).status, 200);
          assert.equal((await elsewhere.me(t.basic(user.username, renewed))).status, 200);
        });
        const afterChange = await client.me(old);
        assert.deepEqual([afterChange.status, afterChange.reused], [401, true]);
        assert.equal((await client.me(t.basic(user.username, renewed))).status, 200);
        assert.equal((await client.me(t.basic(user.username, renewed))).status, 200);
        const disable = await t.app.inject({
          method: 'PATCH',
          url: `/v1/users/${user.id}`,
          headers: { authorization: t.adminBasic, 'content-type': 'application/json' },
          payload: { status: 'disabled' },
        });
        assert.equal(disable.statusCode, 200, disable.body);
        assert.equal((await client.me(t.basic(user.username, renewed))).status, 401);
      });
    });

    test('the kept credential ends with its remembered verification: then the password is verified again', async () => {
      await withOwn({ basicAuthCacheSeconds: 1 }, async (own, ownBase) => {
        const user = await own.createUser();
        await overConnection(ownBase, async (client) => {
          const verified = await passwordVerifications(own.app);
          assert.equal((await client.me(own.basic(user.username, user.password))).status, 200);
          assert.equal((await client.me(own.basic(user.username, user.password))).status, 200);
          assert.equal(await passwordVerifications(own.app), verified + 1);
          await sleep(1100);
          const later = await client.me(own.basic(user.username, user.password));
          assert.deepEqual([later.status, later.reused], [200, true]);
          assert.equal(await passwordVerifications(own.app), verified + 2, 'verified again once the second had passed');
        });
      });
    });

    test('with the Basic cache off a connection keeps nothing: every request verifies the password', async () => {
      await withOwn({ basicAuthCacheSeconds: 0 }, async (own, ownBase) => {
        const user = await own.createUser();
        await overConnection(ownBase, async (client) => {
          const verified = await passwordVerifications(own.app);
          for (let i = 0; i < 3; i += 1) assert.equal((await client.me(own.basic(user.username, user.password))).status, 200);
          assert.equal(await passwordVerifications(own.app), verified + 3);
        });
      });
    });
  });
}
