// gatehouse/client end to end: the generated, typed client against the real app over real HTTP, and
// the package's self-reference (`import 'gatehouse/client'` resolves through package.json exports).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createGatehouseClient, type GatehouseClient, problemOf } from 'gatehouse/client';
import { ADMIN, buildTestApp, type TestApp, uniqueName } from './helpers/app.js';
import { type Target, targets } from './helpers/databases.js';

/** A test app listening on a spare loopback port, closed (database dropped) afterwards. */
async function withListeningApp(target: Target, run: (baseUrl: string, t: TestApp) => Promise<void>): Promise<void> {
  const t = await buildTestApp(target);
  try {
    const baseUrl = await t.app.listen({ host: '127.0.0.1', port: 0 });
    await run(baseUrl, t);
  } finally {
    await t.close();
  }
}

async function signInAsAdmin(baseUrl: string): Promise<string> {
  const anonymous = createGatehouseClient({ baseUrl });
  const signIn = await anonymous.POST('/v1/sessions', { body: { username: ADMIN.username, password: ADMIN.password } });
  assert.equal(signIn.response.status, 201, JSON.stringify(signIn.error));
  assert.ok(signIn.data, 'a session');
  return signIn.data.access_token;
}

const LIST_DEFAULTS = { limit: 20, sort: 'created_at' } as const;

for (const { target, skip } of await targets()) {
  describe(`gatehouse/client on ${target}`, { skip }, () => {
    test('signs in, then creates, finds, changes and deletes a user, with typed problems for the failures', async () => {
      await withListeningApp(target, async (baseUrl) => {
        const client: GatehouseClient = createGatehouseClient({ baseUrl, accessToken: await signInAsAdmin(baseUrl) });
        const username = uniqueName('client');
        const email = `${username}@example.com`;

        const created = await client.POST('/v1/users', { body: { username, email, password: 'client-password-long-1' } });
        assert.equal(created.response.status, 201, JSON.stringify(created.error));
        const user = created.data;
        assert.ok(user);
        assert.deepEqual([user.username, user.email, user.roles, user.status], [username, email, ['user'], 'active']);

        const listed = await client.GET('/v1/users', { params: { query: { ...LIST_DEFAULTS, q: username } } });
        assert.deepEqual(
          listed.data?.items.map((item) => item.id),
          [user.id],
        );

        const fetched = await client.GET('/v1/users/{id}', { params: { path: { id: user.id } } });
        assert.equal(fetched.data?.email, email);

        const patched = await client.PATCH('/v1/users/{id}', { params: { path: { id: user.id } }, body: { display_name: 'Client Made' } });
        assert.equal(patched.data?.display_name, 'Client Made');
        assert.equal((await client.GET('/v1/users/{id}', { params: { path: { id: user.id } } })).data?.display_name, 'Client Made');

        const duplicate = await client.POST('/v1/users', {
          body: { username, email: `other.${email}`, password: 'client-password-long-1' },
        });
        assert.equal(duplicate.data, undefined);
        const taken = problemOf(duplicate);
        assert.equal(taken?.status, 409);
        assert.equal(taken?.code, 'username_taken');
        assert.ok(taken?.request_id, 'the problem carries the request id');

        const invalid = await client.POST('/v1/users', { body: { username: uniqueName('client'), email: 'not an email', password: 'x' } });
        const problem = problemOf(invalid);
        assert.equal(problem?.code, 'invalid_request');
        assert.equal(problem?.status, 400);
        assert.ok(
          problem?.errors?.some((error) => error.field === 'email'),
          JSON.stringify(problem),
        );

        const deleted = await client.DELETE('/v1/users/{id}', { params: { path: { id: user.id } } });
        assert.equal(deleted.response.status, 204);
        assert.equal(problemOf(deleted), undefined, 'a success has no problem');
        const gone = await client.GET('/v1/users/{id}', { params: { path: { id: user.id } } });
        assert.equal(problemOf(gone)?.code, 'not_found');
      });
    });

    test('asks a token function before every request, so a new token is used at once', async () => {
      await withListeningApp(target, async (baseUrl) => {
        let token: string | undefined;
        const client = createGatehouseClient({ baseUrl, accessToken: () => token });

        const anonymous = await client.GET('/v1/users/me');
        assert.equal(problemOf(anonymous)?.code, 'unauthorized');

        token = await signInAsAdmin(baseUrl);
        const me = await client.GET('/v1/users/me');
        assert.equal(me.data?.username, ADMIN.username);

        const basic = `Basic ${Buffer.from('nobody:wrong-password-here').toString('base64')}`;
        const explicit = await client.GET('/v1/users/me', { headers: { authorization: basic } });
        assert.equal(problemOf(explicit)?.code, 'unauthorized', 'a header given for the call wins over the token');
      });
    });
  });
}

describe('gatehouse/client, whatever the database', () => {
  test('is the package export: gatehouse/client resolves to src/client through package.json', async () => {
    const exported = await import('gatehouse/client');
    const source = await import('../src/client/index.js');
    assert.equal(exported.createGatehouseClient, source.createGatehouseClient);
    assert.equal(exported.problemOf, source.problemOf);
  });

  test('a response that is not a gatehouse problem (a proxy error page) becomes an unexpected_response problem', async () => {
    const requests: string[] = [];
    const client = createGatehouseClient({
      baseUrl: 'http://gatehouse.invalid',
      accessToken: 'token-1',
      fetch: async (request) => {
        requests.push(`${request.method} ${request.url} ${request.headers.get('authorization')}`);
        return new Response('<html>502 Bad Gateway</html>', {
          status: 502,
          statusText: 'Bad Gateway',
          headers: { 'content-type': 'text/html' },
        });
      },
    });
    const result = await client.GET('/v1/users/{id}', { params: { path: { id: 'abc' } } });
    assert.deepEqual(requests, ['GET http://gatehouse.invalid/v1/users/abc Bearer token-1']);
    const problem = problemOf(result);
    assert.equal(problem?.code, 'unexpected_response');
    assert.equal(problem?.status, 502);
    assert.match(problem?.detail ?? '', /502 Bad Gateway/);
  });
});
