// Idempotency-Key on POST /v1/users and POST /v1/imports, on every database target: a retry gets
// the first response again and creates nothing more, a reused key with another request is 422, keys
// are per caller, racing duplicates create one thing, failures are not stored, and keys expire.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, problem, type TestApp, uniqueName } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import { ndjson } from './helpers/imports.js';

function createUser(t: TestApp, body: Record<string, unknown>, key: string | undefined, authorization = t.adminBasic) {
  return t.app.inject({
    method: 'POST',
    url: '/v1/users',
    headers: { authorization, ...(key === undefined ? {} : { 'idempotency-key': key }) },
    payload: body,
  });
}

function newUser(password = 'a-long-enough-password-1') {
  const username = uniqueName('idem');
  return { username, email: `${username}@example.com`, password };
}

async function countUsers(t: TestApp, username: string): Promise<number> {
  const row = await t.services.database.db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('username', '=', username)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function countEvents(t: TestApp, type: string, subject: string): Promise<number> {
  const row = await t.services.database.db
    .selectFrom('outbox_events')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('type', '=', type)
    .where('subject', '=', subject)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

for (const { target, skip } of await targets()) {
  describe(`Idempotency-Key on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('a retry of POST /v1/users gets the first 201 again, marked as replayed, and creates nothing more', async () => {
      const key = randomUUID();
      const body = newUser();
      const first = await createUser(t, body, key);
      assert.equal(first.statusCode, 201, first.body);
      assert.equal(first.headers['idempotent-replayed'], undefined);
      const retry = await createUser(t, body, key);
      assert.equal(retry.statusCode, 201, retry.body);
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      assert.equal(retry.headers.location, first.headers.location);
      assert.match(String(retry.headers['content-type']), /^application\/json/);
      assert.deepEqual(retry.json(), first.json());
      assert.equal(await countUsers(t, body.username), 1);
      assert.equal(await countEvents(t, 'user.created', first.json().id), 1);
      // Without the key the same body is a new request, and the username is taken.
      assert.match(problem(await createUser(t, body, undefined)).code, /^(username|email)_taken$/);
    });

    test('the same key with a different body is 422 idempotency_key_reused, and nothing is created', async () => {
      const key = randomUUID();
      const body = newUser();
      assert.equal((await createUser(t, body, key)).statusCode, 201);
      const other = newUser();
      const response = await createUser(t, other, key);
      assert.equal(response.statusCode, 422, response.body);
      assert.equal(problem(response).code, 'idempotency_key_reused');
      assert.equal(await countUsers(t, other.username), 0);
    });

    test('an Idempotency-Key that is not 1-255 visible ASCII characters is a 400 on that header', async () => {
      for (const key of ['', 'x'.repeat(256), 'has space']) {
        const response = await createUser(t, newUser(), key);
        assert.equal(response.statusCode, 400, `${JSON.stringify(key)}: ${response.body}`);
        assert.equal(problem(response).errors?.[0]?.field, 'Idempotency-Key');
      }
    });

    test('keys belong to the caller: another admin using the same key creates its own user', async () => {
      const otherAdmin = await t.createUser({ roles: ['admin'] });
      const otherBasic = t.basic(otherAdmin.username, otherAdmin.password);
      const key = randomUUID();
      const mine = newUser();
      assert.equal((await createUser(t, mine, key)).statusCode, 201);
      const theirs = newUser();
      const response = await createUser(t, theirs, key, otherBasic);
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.headers['idempotent-replayed'], undefined);
      assert.equal(await countUsers(t, theirs.username), 1);
    });

    test('a failed request is not stored: after a 422 weak password, the corrected retry with the same key creates the user', async () => {
      const key = randomUUID();
      const body = newUser('password1234');
      const refused = await createUser(t, body, key);
      assert.equal(refused.statusCode, 422, refused.body);
      assert.equal(problem(refused).code, 'weak_password');
      // A different body under the same key is fine here: nothing was stored for the refused one.
      const fixed = { ...body, password: 'a-much-better-password-7' };
      const created = await createUser(t, fixed, key);
      assert.equal(created.statusCode, 201, created.body);
      assert.equal(await countUsers(t, body.username), 1);
    });

    test('identical requests racing with the same key create one user, and both get its 201', async () => {
      const key = randomUUID();
      const body = newUser();
      const responses = await Promise.all(Array.from({ length: 4 }, () => createUser(t, body, key)));
      for (const response of responses) assert.equal(response.statusCode, 201, response.body);
      const ids = new Set(responses.map((response) => response.json().id));
      assert.equal(ids.size, 1);
      assert.equal(await countUsers(t, body.username), 1);
      assert.equal(responses.filter((response) => response.headers['idempotent-replayed'] === 'true').length, 3);
    });

    test('two different requests racing with one key: one is created, the other is 422 and creates nothing', async () => {
      const key = randomUUID();
      const bodies = [newUser(), newUser()];
      const responses = await Promise.all(bodies.map((body) => createUser(t, body, key)));
      assert.deepEqual(responses.map((response) => response.statusCode).sort(), [201, 422], responses.map((r) => r.body).join('\n'));
      const refused = responses.find((response) => response.statusCode === 422);
      assert.equal(refused && problem(refused).code, 'idempotency_key_reused');
      const counts = await Promise.all(bodies.map((body) => countUsers(t, body.username)));
      assert.deepEqual(counts.sort(), [0, 1]);
    });

    test('an expired key is pruned and can be used again', async () => {
      const key = randomUUID();
      const body = newUser();
      assert.equal((await createUser(t, body, key)).statusCode, 201);
      await t.services.database.db
        .updateTable('idempotency_keys')
        .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
        .where('key', '=', key)
        .execute();
      // Expired: not replayed; the same body is now a new request (its username and email are taken).
      assert.match(problem(await createUser(t, body, key)).code, /^(username|email)_taken$/);
      assert.ok((await t.services.idempotency.deleteExpired()) >= 1);
      const left = await t.services.database.db.selectFrom('idempotency_keys').select('key').where('key', '=', key).execute();
      assert.equal(left.length, 0);
      const another = newUser();
      assert.equal((await createUser(t, another, key)).statusCode, 201);
    });

    test('a retried POST /v1/imports answers with the same job (its status now) and imports once', async () => {
      const key = randomUUID();
      const username = uniqueName('idemimp');
      const body = ndjson([{ username, email: `${username}@example.com`, password: 'imported-password-1' }]);
      const upload = (payload: string) =>
        t.app.inject({
          method: 'POST',
          url: '/v1/imports',
          headers: { authorization: t.adminBasic, 'content-type': 'application/x-ndjson', 'idempotency-key': key },
          payload,
        });
      const first = await upload(body);
      assert.equal(first.statusCode, 202, first.body);
      await t.services.importWorker.drain();
      const retry = await upload(body);
      assert.equal(retry.statusCode, 202, retry.body);
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      assert.equal(retry.headers.location, first.headers.location);
      assert.equal(retry.json().id, first.json().id);
      assert.equal(retry.json().status, 'completed');
      assert.equal(retry.json().created, 1);
      await t.services.importWorker.drain();
      assert.equal(await countUsers(t, username), 1);
      const jobs = await t.services.database.db.selectFrom('import_jobs').select('id').execute();
      assert.equal(jobs.filter((job) => job.id === first.json().id).length, 1);

      const changed = await upload(
        ndjson([{ username: `${username}b`, email: `${username}b@example.com`, password: 'imported-password-1' }]),
      );
      assert.equal(changed.statusCode, 422, changed.body);
      assert.equal(problem(changed).code, 'idempotency_key_reused');
    });
  });
}
